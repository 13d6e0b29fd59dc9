/**
 * `GET /`: the status page for the engineer on watch, rendered from a report object (pure:
 * no database, no clock of its own). One glance says whether the link is up, since when it is
 * down, how much waits on board and for how long, when shore last acknowledged, what went
 * wrong lately, and what to do. No record data, no script, no build step; it reloads itself.
 */
import type { RecentEvent } from "../core/recent-events.ts";

/** A vessel as the shore's fleet table shows it. */
export interface FleetRow {
  vesselId: string;
  status: string;
  lastSeq: number;
  lastSeenAt: string | null;
  gaps: number;
  /** Seqs received past the applied one, waiting on a gap. */
  lag?: number;
  /** Not tracked yet: shown as "—". */
  deadLetters?: number;
  /** Changes made ashore the vessel has not acknowledged yet ("—" where unknown). */
  downBacklog?: number;
}

/** Everything the page shows. */
export interface StatusReport {
  role: "vessel" | "shore";
  vesselId: string;
  version: string;
  broker: string;
  /** The moment the report was taken (ages are computed against it). */
  now: Date;
  /** `connected`, `disconnected` or `disabled` (LOCAL_MODE=false), as `/health` says. */
  status: string;
  disconnectedSince: string | null;
  /** False when the database did not answer: the figures below are then unknown. */
  databaseUp: boolean;
  queued?: number;
  unacked?: number;
  oldestUnackedAgeSeconds?: number | null;
  lastAckAt: string | null;
  recent: RecentEvent[];
  fleet?: FleetRow[];
  /** Seconds between reloads. */
  refreshSeconds?: number;
}

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** "3 d 4 h", "12 min", "40 s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** "2026-11-30 10:12 UTC (3 h ago)". */
function when(iso: string | null, now: Date): string {
  if (!iso) return "never";
  const t = new Date(iso);
  const stamp = t.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  return `${stamp} (${duration((now.getTime() - t.getTime()) / 1000)} ago)`;
}

// Past this, a silent shore or a down link is worth someone's attention (the alert rules'
// thresholds: link down > 15 min, oldest unacknowledged > 1 h).
const LINK_DOWN_ATTENTION_S = 15 * 60;
const UNACKED_ATTENTION_S = 3600;

/** The headline, its tone, and the one sentence that says what to do. */
function verdict(r: StatusReport): { headline: string; tone: string; advice: string } {
  if (!r.databaseUp) {
    return {
      headline: "Database not answering",
      tone: "bad",
      advice: r.role === "vessel"
        ? "New records are refused until the database answers again: restart the bosun service, and call IT if this stays."
        : "Vessels' changes wait on board until the shore database answers again: call IT.",
    };
  }
  if (r.status === "disabled") {
    return {
      headline: "Sync switched off",
      tone: "warn",
      advice:
        "LOCAL_MODE=false: records are kept on board and nothing is sent ashore; set LOCAL_MODE=true to sync.",
    };
  }
  if (r.status !== "connected") {
    const since = r.disconnectedSince ? new Date(r.disconnectedSince) : r.now;
    const downS = (r.now.getTime() - since.getTime()) / 1000;
    const headline = `Link down since ${when(r.disconnectedSince, r.now)}`;
    if (r.role === "shore") {
      return {
        headline,
        tone: "bad",
        advice:
          "The shore cannot reach the broker: vessels keep their changes on board until it returns; check the broker and the network ashore.",
      };
    }
    return downS < LINK_DOWN_ATTENTION_S
      ? {
        headline,
        tone: "warn",
        advice: "Nothing to do yet: records are kept on board and sent when the link returns.",
      }
      : {
        headline,
        tone: "bad",
        advice:
          "Check the satellite link and the broker address; nothing is lost, records are kept on board and sent when the link returns.",
      };
  }
  if ((r.oldestUnackedAgeSeconds ?? 0) > UNACKED_ATTENTION_S) {
    return {
      headline: "Link up, shore not confirming",
      tone: "warn",
      advice:
        "The link is up but shore has not confirmed the oldest change for over an hour: tell the shore office; nothing is lost.",
    };
  }
  return {
    headline: "Link up",
    tone: "ok",
    advice: r.role === "vessel"
      ? "Nothing to do: changes are reaching shore."
      : "Nothing to do: the fleet's changes are arriving.",
  };
}

const dash = (n: number | undefined) => n === undefined ? "—" : String(n);

function fleetTable(rows: FleetRow[], now: Date): string {
  if (rows.length === 0) return "<p>No vessel has been heard from yet.</p>";
  const body = rows.map((v) =>
    `<tr><td>${escape(v.vesselId)}</td><td class="${
      v.status === "online" ? "ok" : v.status === "offline" ? "bad" : "warn"
    }">${escape(v.status)}</td><td>${v.lastSeq}</td><td>${dash(v.lag)}</td><td>${
      escape(when(v.lastSeenAt, now))
    }</td><td>${v.gaps}</td><td>${dash(v.deadLetters)}</td><td>${dash(v.downBacklog)}</td></tr>`
  ).join("\n");
  return `<div class="scroll"><table>
<thead><tr><th>Vessel</th><th>Status</th><th>Applied seq</th><th>Lag</th><th>Last seen</th><th>Gaps</th><th>Dead letters</th><th>Down backlog</th></tr></thead>
<tbody>
${body}
</tbody></table></div>`;
}

/** The whole page. */
export function renderStatusPage(r: StatusReport): string {
  const v = verdict(r);
  const refresh = r.refreshSeconds ?? 10;
  const facts: [string, string][] = [];
  if (r.role === "vessel" && r.databaseUp) {
    facts.push(["Waiting to be sent", String(r.queued ?? 0)]);
    facts.push(["Sent, not yet confirmed by shore", String(r.unacked ?? 0)]);
    facts.push([
      "Oldest unconfirmed change",
      r.oldestUnackedAgeSeconds == null ? "none" : duration(r.oldestUnackedAgeSeconds),
    ]);
  }
  facts.push([
    r.role === "vessel" ? "Last confirmation from shore" : "Last acknowledgement sent",
    when(r.lastAckAt, r.now),
  ]);
  facts.push(["Broker", r.broker]);
  const recent = r.recent.length === 0
    ? "<p>No warnings or errors since start.</p>"
    : `<ul class="events">${
      r.recent.map((e) =>
        `<li><span class="${e.level === "error" ? "bad" : "warn"}">${e.level}</span> ${
          escape(when(e.t, r.now))
        }: ${escape(e.msg)}${e.error ? ` — ${escape(e.error)}` : ""}</li>`
      ).join("\n")
    }</ul>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${refresh}">
<title>bosun ${escape(r.vesselId)}: ${escape(v.headline)}</title>
<style>
body { font: 16px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 52rem; padding: 1rem; color: #111; background: #fafafa; }
h1 { font-size: 1.6rem; margin: 0.2rem 0; }
.banner { border-radius: 0.5rem; padding: 1rem; margin-bottom: 1rem; color: #fff; }
.banner.ok { background: #1b7f3b; } .banner.warn { background: #a66300; } .banner.bad { background: #b3261e; }
.advice { font-size: 1.1rem; margin: 0.4rem 0 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 0.3rem 1rem; margin: 0 0 1rem; }
dt { color: #555; } dd { margin: 0; font-weight: 600; overflow-wrap: anywhere; }
@media (max-width: 36rem) { dl { display: block; } dt { margin-top: 0.5rem; } }
.events li { overflow-wrap: anywhere; margin-bottom: 0.3rem; }
td.ok, span.ok { color: #1b7f3b; } td.warn, span.warn { color: #a66300; } td.bad, span.bad { color: #b3261e; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 0.3rem 0.5rem; border-bottom: 1px solid #ddd; white-space: nowrap; }
.scroll { overflow-x: auto; } .events { padding-left: 1.2rem; } footer { color: #777; font-size: 0.85rem; margin-top: 1.5rem; }
</style>
</head>
<body>
<div class="banner ${v.tone}" id="verdict">
<div>${escape(r.role === "vessel" ? `Vessel ${r.vesselId}` : `Shore ${r.vesselId}`)}</div>
<h1>${escape(v.headline)}</h1>
<p class="advice">${escape(v.advice)}</p>
</div>
<dl>
${facts.map(([k, x]) => `<dt>${escape(k)}</dt><dd>${escape(x)}</dd>`).join("\n")}
</dl>
${r.fleet ? `<h2>Fleet</h2>\n${fleetTable(r.fleet, r.now)}` : ""}
<h2>Recent warnings and errors</h2>
${recent}
<footer>bosun ${escape(r.version)} · ${
    escape(when(r.now.toISOString(), r.now).split(" (")[0]!)
  } · reloads every ${refresh} s</footer>
</body>
</html>
`;
}
