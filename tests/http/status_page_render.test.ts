/**
 * The status page's words for each state (http/status-page.ts renders from a report object,
 * so every state is reached without a broker or a database).
 */
import assert from "node:assert/strict";
import { duration, renderStatusPage, type StatusReport } from "../../http/status-page.ts";

const now = new Date("2026-11-30T12:00:00Z");
const base: StatusReport = {
  role: "vessel",
  vesselId: "mv-aurora",
  version: "0.1.0",
  broker: "mqtts://broker.example:8883",
  now,
  status: "connected",
  disconnectedSince: null,
  databaseUp: true,
  queued: 0,
  unacked: 0,
  oldestUnackedAgeSeconds: null,
  lastAckAt: "2026-11-30T11:59:00Z",
  recent: [],
};
const headline = (html: string) => /<h1>(.*?)<\/h1>/.exec(html)?.[1];

Deno.test("each link state has its headline and one sentence of what to do", async (t) => {
  await t.step("up", () => {
    const html = renderStatusPage(base);
    assert.equal(headline(html), "Link up");
    assert.match(html, /Nothing to do: changes are reaching shore/);
    assert.match(html, /2026-11-30 11:59 UTC \(1 min ago\)/);
    assert.match(html, /<meta http-equiv="refresh" content="10">/);
  });
  await t.step("down for days", () => {
    const html = renderStatusPage({
      ...base,
      status: "disconnected",
      disconnectedSince: "2026-11-27T08:30:00Z",
      queued: 1234,
      oldestUnackedAgeSeconds: 3 * 86_400,
    });
    assert.equal(headline(html), "Link down since 2026-11-27 08:30 UTC (3 d 3 h ago)");
    assert.match(html, /Check the satellite link/);
    assert.match(html, /<dd>1234<\/dd>/);
  });
  await t.step("up but shore silent for over an hour", () => {
    const html = renderStatusPage({ ...base, oldestUnackedAgeSeconds: 7200 });
    assert.equal(headline(html), "Link up, shore not confirming");
  });
  await t.step("sync disabled, database down", () => {
    assert.equal(headline(renderStatusPage({ ...base, status: "disabled" })), "Sync switched off");
    assert.equal(
      headline(renderStatusPage({ ...base, databaseUp: false })),
      "Database not answering",
    );
  });
});

Deno.test("the shore's fleet table shows each vessel, and a dash where nothing is tracked", () => {
  const html = renderStatusPage({
    ...base,
    role: "shore",
    vesselId: "shore-1",
    fleet: [
      {
        vesselId: "mv-aurora",
        status: "offline",
        lastSeq: 41,
        lastSeenAt: "2026-11-30T10:00:00Z",
        gaps: 2,
        lag: 5,
        deadLetters: 1,
      },
    ],
  });
  assert.match(html, /Shore shore-1/);
  const row = /<tr><td>mv-aurora<\/td>.*<\/tr>/.exec(html)?.[0] ?? "";
  assert.match(row, /<td class="bad">offline<\/td><td>41<\/td><td>5<\/td>/);
  assert.match(row, /2 h 0 min ago\)<\/td><td>2<\/td><td>1<\/td><td>—<\/td><\/tr>$/);
});

Deno.test("logged text is escaped", () => {
  const html = renderStatusPage({
    ...base,
    recent: [{ t: now.toISOString(), level: "error", msg: "<script>x</script>", error: "a&b" }],
  });
  assert.ok(!html.includes("<script>"));
  assert.match(html, /&#60;script&#62;x&#60;\/script&#62; — a&#38;b/);
});

Deno.test("durations read in the largest units that matter", () => {
  assert.equal(duration(42), "42 s");
  assert.equal(duration(125), "2 min");
  assert.equal(duration(3 * 3600 + 120), "3 h 2 min");
  assert.equal(duration(2 * 86_400 + 5 * 3600), "2 d 5 h");
});
