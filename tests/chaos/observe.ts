/**
 * What a chaos run watches while it runs: how long the vessel takes to recover after each
 * fault, and how many messages the shore received (from its counters, across its restarts).
 */
import postgres from "postgres";
import type { GatewayProcess } from "./process.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Recovery after a fault: the time from the fault's end until every change committed on board
 * before that end is acknowledged by shore. The clock does not stop for the next fault: a fault
 * that begins before the previous one has recovered lengthens the previous one's recovery.
 */
export interface RecoveryTracker {
  /** Records a fault's end: notes the newest change committed on board by then. */
  markEnd(label: string): Promise<void>;
  /** Waits for the last mark to be recovered, up to `timeoutMs`. */
  settle(timeoutMs: number): Promise<boolean>;
  /** The longest recovery in seconds (marks not yet recovered count up to now). */
  maxSeconds(): number;
  close(): Promise<void>;
}

/** Called as each fault's mark is recovered: its label, seconds, and what recovered it. */
export type OnRecovered = (label: string, seconds: number, how: string) => void;

/** Starts polling the vessel's database for recoveries. */
export function trackRecovery(vesselUrl: string, onRecovered?: OnRecovered): RecoveryTracker {
  const sql = postgres(vesselUrl, { max: 1, connect_timeout: 2, onnotice: () => {} });
  const open: { endedAt: number; upTo: number; label: string }[] = [];
  let longest = 0;
  let stopped = false;

  // The vessel's database may be down for a fault's length: retried, but not for ever (a
  // database that never comes back fails the run saying so instead of hanging it).
  const query = async <T>(run: () => Promise<T>, deadlineMs = 300_000): Promise<T> => {
    const deadline = Date.now() + deadlineMs;
    while (true) {
      try {
        return await run();
      } catch (err) {
        if (stopped || Date.now() > deadline) {
          throw new Error(`The vessel's database did not answer for ${deadlineMs} ms`, {
            cause: err,
          });
        }
        await sleep(250);
      }
    }
  };

  const poll = async () => {
    while (!stopped) {
      if (open.length) {
        try {
          const [row] = await sql<{ first: number | null }[]>`
            select min(id)::int8 as first from changes c, vessel_state s
            where c.seq is null or (c.epoch = s.epoch and c.seq > s.acked_seq)`;
          const first = row?.first === null || row?.first === undefined
            ? Infinity
            : Number(row.first);
          const now = Date.now();
          while (open.length && open[0]!.upTo < first) {
            const m = open.shift()!;
            longest = Math.max(longest, now - m.endedAt);
            onRecovered?.(m.label, (now - m.endedAt) / 1000, `changes up to id ${m.upTo} acked`);
          }
        } catch {
          // the vessel's database is down: try again
        }
      }
      await sleep(250);
    }
  };
  const polling = poll();

  return {
    async markEnd(label) {
      const endedAt = Date.now();
      const [row] = await query(() =>
        sql<{ last: number | null }[]>`select max(id)::int8 as last from changes`
      );
      // Kept in upTo order, so that the poll releases marks from the front.
      const mark = { endedAt, upTo: Number(row?.last ?? 0), label };
      const at = open.findIndex((m) => m.upTo > mark.upTo);
      open.splice(at === -1 ? open.length : at, 0, mark);
    },
    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (open.length && Date.now() < deadline) await sleep(250);
      return open.length === 0;
    },
    maxSeconds() {
      const now = Date.now();
      const pending = open.map((m) => now - m.endedAt);
      return Math.max(longest, ...pending) / 1000;
    },
    async close() {
      stopped = true;
      await polling;
      await sql.end({ timeout: 1 });
    },
  };
}

/**
 * The same recovery clock for a vessel whose database the run cannot read while it runs (the
 * embedded PGlite belongs to the gateway): from the vessel's own `/health`. At a fault's end
 * the newest committed change will get seq lastPublishedSeq + queuedMessages (seqs are handed
 * out in claim order; a change of a higher priority may overtake, which can only end the clock
 * early by the few changes that overtook); it is recovered once lastAckedSeq reaches that, or
 * the epoch changed. The end-of-run verdict, not this clock, checks /health against the data.
 */
export function trackRecoveryByHealth(
  vessel: GatewayProcess,
  onRecovered?: OnRecovered,
): RecoveryTracker {
  const open: { endedAt: number; epoch: unknown; upTo: number; label: string }[] = [];
  let longest = 0;
  let stopped = false;

  const poll = async () => {
    while (!stopped) {
      if (open.length) {
        const h = await vessel.health();
        if (h && typeof h.lastAckedSeq === "number") {
          const now = Date.now();
          for (let i = open.length - 1; i >= 0; i--) {
            const m = open[i]!;
            if (m.epoch !== h.epoch || h.lastAckedSeq >= m.upTo) {
              longest = Math.max(longest, now - m.endedAt);
              open.splice(i, 1);
              onRecovered?.(
                m.label,
                (now - m.endedAt) / 1000,
                m.epoch !== h.epoch
                  ? `epoch changed (${m.epoch} -> ${h.epoch})`
                  : `lastAckedSeq ${h.lastAckedSeq} >= ${m.upTo}`,
              );
            }
          }
        }
      }
      await sleep(250);
    }
  };
  const polling = poll();

  return {
    async markEnd(label) {
      const endedAt = Date.now();
      // The vessel may be down under another fault: ask until it answers.
      while (!stopped) {
        const h = await vessel.health();
        const published = h?.lastPublishedSeq, queued = h?.queuedMessages;
        if (typeof published === "number" && typeof queued === "number") {
          open.push({ endedAt, epoch: h!.epoch, upTo: published + queued, label });
          return;
        }
        await sleep(250);
      }
    },
    async settle(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (open.length && Date.now() < deadline) await sleep(250);
      return open.length === 0;
    },
    maxSeconds() {
      const now = Date.now();
      return Math.max(longest, ...open.map((m) => now - m.endedAt)) / 1000;
    },
    async close() {
      stopped = true;
      await polling;
    },
  };
}

/** Sums every sample of `name` in a Prometheus text exposition. */
export function sumSeries(text: string, name: string): number {
  let total = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== " " && rest[0] !== "{") continue;
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (Number.isFinite(value)) total += value;
  }
  return total;
}

/**
 * Counters of a process that gets killed: scraped every `everyMs`, a drop means a restart and
 * the new value counts from zero. What the process counted after the last scrape before a
 * kill is missed, so the totals are a lower bound.
 */
export interface CounterWatch {
  totals(): Record<string, number>;
  /** One last scrape, then stop. */
  close(): Promise<void>;
}

/** Watches counters `names` on `process`'s /metrics. */
export function watchCounters(
  process: GatewayProcess,
  names: readonly string[],
  everyMs = 1_000,
): CounterWatch {
  const last = new Map<string, number>();
  const total = new Map<string, number>(names.map((n) => [n, 0]));
  let stopped = false;
  const scrape = async () => {
    const text = await process.metrics();
    if (text === undefined) return;
    for (const name of names) {
      const v = sumSeries(text, name);
      const prev = last.get(name) ?? 0;
      total.set(name, total.get(name)! + (v >= prev ? v - prev : v));
      last.set(name, v);
    }
  };
  const loop = (async () => {
    while (!stopped) {
      await scrape();
      await sleep(everyMs);
    }
  })();
  return {
    totals: () => Object.fromEntries(total),
    async close() {
      stopped = true;
      await loop;
      await scrape();
    },
  };
}
