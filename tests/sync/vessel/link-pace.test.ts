import assert from "node:assert/strict";
import { LinkPace, type Sent } from "../../../sync/vessel/link-pace.ts";

/**
 * A FIFO link (what TCP makes of one): `bytesPerSecond` each way, `rttMs` round trip, and a
 * publish's PUBACK once its last byte crossed and the answer came back. A publisher keeps what
 * is in flight within the pace's byte budget, in publishes of a quarter of it, as
 * sync/vessel/publisher.ts does. Returns what the link carried in the last `measureMs`.
 */
function simulate(
  pace: LinkPace,
  clock: { now: number },
  link: { bytesPerSecond: number; rttMs: number; stallAtMs?: number; stallMs?: number },
  untilMs: number,
  measureMs = 5_000,
): number {
  const inFlight: { sent: Sent; ackAt: number }[] = [];
  let linkFreeAt = clock.now;
  let bytesInFlight = 0;
  let carried = 0;
  for (; clock.now < untilMs; clock.now += 1) {
    // PUBACKs due now, oldest first.
    while (inFlight.length && inFlight[0]!.ackAt <= clock.now) {
      const { sent } = inFlight.shift()!;
      bytesInFlight -= sent.bytes;
      pace.acked(sent);
    }
    const budget = pace.byteBudget();
    // A budget that is not a finite number of bytes would spin this loop for ever.
    assert.ok(Number.isFinite(budget) && budget < 1e9, `byte budget ${budget}`);
    while (bytesInFlight < budget) {
      const bytes = Math.max(100, Math.floor(budget / 4));
      const sent = pace.sent(bytes, bytes / 30);
      linkFreeAt = Math.max(linkFreeAt, clock.now) + bytes * 1_000 / link.bytesPerSecond;
      let ackAt = linkFreeAt + link.rttMs;
      // A lost segment: this publish and every one behind it arrive late (in order).
      const { stallAtMs = Infinity, stallMs = 0 } = link;
      if (clock.now >= stallAtMs && clock.now < stallAtMs + 1) ackAt += stallMs;
      ackAt = Math.max(ackAt, inFlight.at(-1)?.ackAt ?? 0);
      inFlight.push({ sent, ackAt });
      bytesInFlight += bytes;
      if (linkFreeAt > untilMs - measureMs && linkFreeAt <= untilMs) carried += bytes;
    }
  }
  return carried * 1_000 / measureMs;
}

Deno.test("the link's rate: starts at the floor and climbs to a slow link's while its budget limits what is in flight", () => {
  const clock = { now: 0 };
  const pace = new LinkPace({ horizonMs: 1_000, floorBytes: 16_384, now: () => clock.now });
  assert.equal(pace.rate, 16_384, "nothing measured: the floor");
  assert.equal(pace.rowBudget(), Math.floor(16_384 / 200));

  // The satellite hop: 432 kbit/s, 600 ms round trip. Before, the estimate stayed at
  // the floor (16 KiB/s) on this link: a budget-limited delivery rate measures the budget.
  const link = { bytesPerSecond: 54_000, rttMs: 600 };
  const carried = simulate(pace, clock, link, 30_000);
  assert.ok(pace.rate >= 0.95 * 54_000, `rate ${pace.rate} of a 54,000 B/s link`);
  assert.ok(pace.rate <= 1.05 * 54_000, `rate ${pace.rate}: not above the link`);
  assert.ok(carried >= 0.95 * 54_000, `the link carried ${carried} B/s of 54,000`);
  const rtt = pace.roundTripMs;
  assert.ok(rtt >= 600 && rtt < 900, `round trip ${rtt} ms (600 ms and a publish's bytes)`);
  // What may be in flight: the round trip and half the horizon's worth of the link's bytes,
  // so about half a second queues ahead of an alert claimed now.
  const budget = pace.byteBudget();
  assert.ok(budget >= 54_000 * 1.1 && budget <= 54_000 * 1.5, `budget ${budget} B`);
});

Deno.test("the link's rate: PUBACKs released together after a lost segment do not inflate it, and the link stays nearly full through the stall", () => {
  const clock = { now: 0 };
  const pace = new LinkPace({ horizonMs: 1_000, floorBytes: 16_384, now: () => clock.now });
  const link = { bytesPerSecond: 54_000, rttMs: 600 };
  simulate(pace, clock, link, 20_000);
  // A publish held 800 ms (one RTT plus the minimum RTO): the ones behind it come together.
  const before = pace.byteBudget();
  const carried = simulate(
    pace,
    clock,
    { ...link, stallAtMs: 21_000, stallMs: 800 },
    26_000,
    6_000,
  );
  assert.ok(pace.rate <= 1.05 * 54_000, `rate ${pace.rate} after the stall`);
  // The round trip's bytes plus half the horizon's: the link carries the queued half second
  // while the 800 ms stall holds the PUBACKs, then idles about 0.2 s.
  assert.ok(carried >= 0.9 * 54_000, `the link carried ${carried} B/s through the stall`);
  assert.ok(pace.byteBudget() <= before * 1.1, "the budget is back to the link's once it ends");
});

Deno.test("the link's rate: a slower link than the one measured seconds ago, and never below the floor", () => {
  let now = 0;
  const pace = new LinkPace({ horizonMs: 1_000, floorBytes: 16_384, now: () => now });
  // Two publishes back to back, 8 KiB each, PUBACKed 100 and 200 ms later.
  const a = pace.sent(8_192, 100);
  const b = pace.sent(8_192, 100);
  now = 100;
  pace.acked(a);
  now = 200;
  pace.acked(b);
  assert.equal(pace.rate, 16_384 * 1_000 / 200, "16 KiB delivered in 200 ms");
  assert.ok(pace.rowBudget() > Math.floor(16_384 / 200), "the budget grew");

  // Seconds later, a slower link: the old, higher samples are gone.
  now = 20_000;
  const c = pace.sent(30_000, 100);
  now = 21_000;
  pace.acked(c);
  assert.equal(pace.rate, 30_000);

  // Below the floor the floor holds.
  now = 40_000;
  const d = pace.sent(100, 1);
  now = 41_000;
  pace.acked(d);
  assert.equal(pace.rate, 16_384);
});
