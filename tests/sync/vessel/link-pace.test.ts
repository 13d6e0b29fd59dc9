import assert from "node:assert/strict";
import { LinkPace, type Sent } from "../../../sync/vessel/link-pace.ts";
import { createRng } from "../../chaos/prng.ts";

interface Link {
  bytesPerSecond: number;
  rttMs: number;
  /** The first publish sent from this time on (and every one behind it) arrives `stallMs` late. */
  stallAtMs?: number;
  stallMs?: number;
  /** Probability that a 1,460-byte segment (either way) is lost: held a round trip + 200 ms. */
  loss?: number;
  seed?: number;
}

/** What {@linkcode Simulation.run} saw. */
interface Run {
  /** Bytes a second the link carried in the last `measureMs`. */
  carried: number;
  /** The byte budget just after the last PUBACK (between PUBACKs it grows, see link-pace.ts). */
  budgetAtAck: number;
  /** Every 500 ms a publish was marked as an alert's: ms from the mark to its arrival. */
  alertDelays: number[];
}

const SEGMENT = 1_460;

/**
 * A FIFO link (what TCP makes of one): `bytesPerSecond` each way, `rttMs` round trip, and a
 * publish's PUBACK once its last byte crossed and the answer came back; a lost segment holds
 * back everything behind it in its direction, as tests/support/proxy.ts emulates it. A
 * publisher keeps what is in flight within the pace's byte budget as sync/vessel/publisher.ts
 * does: it sends once an eighth of the budget is free, in publishes of at most a quarter of it,
 * at most 16 at once. The clock runs in 1 ms steps; a run continues where the last one ended.
 */
class Simulation {
  #inFlight: { sent: Sent; ackAt: number }[] = [];
  #bytesInFlight = 0;
  #linkFreeAt = 0;
  #lastArrival = 0;
  #lastAck = 0;
  #stalled = false;
  /** Bytes the link finished carrying, by the millisecond. */
  #carried: number[] = [];
  #rng;
  /** False: nothing more is sent (what is in flight is still PUBACKed). */
  sending = true;

  constructor(readonly pace: LinkPace, readonly clock: { now: number }, public link: Link) {
    this.#rng = createRng(link.seed ?? 1);
  }

  #retransmitted(): number {
    const { loss, rttMs } = this.link;
    return loss !== undefined && this.#rng.chance(loss) ? rttMs + 200 : 0;
  }

  run(untilMs: number, measureMs = 5_000): Run {
    // Simulated time ends: a run to a time that never comes would spin for ever.
    assert.ok(Number.isFinite(untilMs), `a simulation runs to a finite time, not ${untilMs}`);
    const { pace, clock, link } = this;
    const oneWay = link.rttMs / 2;
    let budgetAtAck = pace.byteBudget();
    let alertAt = clock.now + 500;
    let alertWaiting: number | null = null;
    const alertDelays: number[] = [];
    for (; clock.now < untilMs; clock.now += 1) {
      // PUBACKs due now, oldest first.
      let acked = false;
      while (this.#inFlight.length && this.#inFlight[0]!.ackAt <= clock.now) {
        const { sent } = this.#inFlight.shift()!;
        this.#bytesInFlight -= sent.bytes;
        pace.acked(sent);
        acked = true;
      }
      if (acked) budgetAtAck = pace.byteBudget();
      if (clock.now >= alertAt) {
        alertWaiting = clock.now;
        alertAt += 500;
      }
      const budget = pace.byteBudget();
      // A budget that is not a finite number of bytes would spin this loop for ever.
      assert.ok(Number.isFinite(budget) && budget < 1e9, `byte budget ${budget}`);
      while (this.sending && this.#inFlight.length < 16) {
        const room = budget - this.#bytesInFlight;
        if (room < Math.max(100, budget / 8)) break;
        const bytes = Math.floor(Math.min(room, budget / 4));
        const sent = pace.sent(bytes, bytes / 26);
        let arriveAt = 0;
        for (let off = 0; off < bytes; off += SEGMENT) {
          const size = Math.min(SEGMENT, bytes - off);
          this.#linkFreeAt = Math.max(this.#linkFreeAt, clock.now) +
            size * 1_000 / link.bytesPerSecond;
          const ms = Math.ceil(this.#linkFreeAt);
          this.#carried[ms] = (this.#carried[ms] ?? 0) + size;
          arriveAt = this.#linkFreeAt + oneWay + this.#retransmitted();
          arriveAt = this.#lastArrival = Math.max(arriveAt, this.#lastArrival);
        }
        const { stallAtMs, stallMs = 0 } = link;
        if (stallAtMs !== undefined && clock.now >= stallAtMs && !this.#stalled) {
          arriveAt = this.#lastArrival = arriveAt + stallMs;
          this.#stalled = true;
        }
        const ackAt = Math.max(arriveAt + oneWay + this.#retransmitted(), this.#lastAck);
        this.#lastAck = ackAt;
        this.#inFlight.push({ sent, ackAt });
        this.#bytesInFlight += bytes;
        if (alertWaiting !== null) {
          alertDelays.push(arriveAt - alertWaiting);
          alertWaiting = null;
        }
      }
    }
    let carried = 0;
    for (let ms = untilMs - measureMs + 1; ms <= untilMs; ms++) carried += this.#carried[ms] ?? 0;
    return {
      carried: carried * 1_000 / measureMs,
      budgetAtAck,
      alertDelays: alertDelays.sort((a, b) => a - b),
    };
  }
}

/** A pace on a simulated clock at 0 ms, and the simulation of `link` that drives it. */
function simulation(link: Link): Simulation {
  const clock = { now: 0 };
  const pace = new LinkPace({ horizonMs: 1_000, floorBytes: 16_384, now: () => clock.now });
  return new Simulation(pace, clock, link);
}

/** The satellite hop: 432 kbit/s each way, 600 ms round trip. */
const SATELLITE = { bytesPerSecond: 54_000, rttMs: 600 };

Deno.test("the link's rate: starts at the floor and climbs to a slow link's while its budget limits what is in flight", () => {
  const sim = simulation(SATELLITE);
  const { pace } = sim;
  assert.equal(pace.rate, 16_384, "nothing measured: the floor");
  assert.equal(pace.rowBudget(), Math.floor(16_384 / 200));

  // Before, the estimate stayed at the floor (16 KiB/s) on this link: a budget-limited delivery
  // rate measures the budget.
  const run = sim.run(30_000);
  assert.ok(pace.rate >= 0.95 * 54_000, `rate ${pace.rate} of a 54,000 B/s link`);
  assert.ok(pace.rate <= 1.05 * 54_000, `rate ${pace.rate}: not above the link`);
  assert.ok(run.carried >= 0.95 * 54_000, `the link carried ${run.carried} B/s of 54,000`);
  const rtt = pace.roundTripMs;
  assert.ok(rtt >= 600 && rtt < 900, `round trip ${rtt} ms (600 ms and a publish's bytes)`);
  // What may be in flight: a horizon (a second) of the link's bytes, at least the round trip
  // and a third of the horizon, so about a third of a second queues ahead of an alert.
  const budget = run.budgetAtAck;
  assert.ok(budget >= 54_000 * 0.99 && budget <= 54_000 * 1.2, `budget ${budget} B`);
  assert.equal(pace.startingUp, false, "start-up ended once the link was full");
});

Deno.test("the link's rate: start-up grows the budget by half or more each round trip from the floor, fills the link within a few round trips, and ends there", () => {
  const sim = simulation(SATELLITE);
  const { pace } = sim;
  assert.equal(pace.startingUp, true);
  // Round trip by round trip (0.6 s and a publish's bytes: 0.8 s here, the first PUBACK after
  // 0.7 s), the rate measured while the budget limits what is in flight: two round trips' worth
  // of it in flight, so each sample is up to twice the last (less the time the publishes take
  // to cross).
  const rates: number[] = [];
  for (let t = 1_000; t <= 2_600; t += 800) {
    sim.run(t);
    rates.push(pace.rate);
  }
  for (let i = 1; i < rates.length && rates[i - 1]! < 0.6 * 54_000; i++) {
    const growth = rates[i]! / rates[i - 1]!;
    assert.ok(growth >= 1.5, `round trip ${i}: the rate grew ${growth.toFixed(2)}× (${rates})`);
  }
  sim.run(3_000);
  assert.ok(pace.rate >= 0.9 * 54_000, `after 3 s: ${pace.rate} (${rates})`);
  // Then the link is full, and stays so. The estimator before took 7-10 s here (its first
  // claims counted 200 bytes a change where publishes carried 26, and it grew by half a
  // horizon, not by a round trip, each round trip).
  const run = sim.run(10_000, 7_000);
  assert.ok(run.carried >= 0.97 * 54_000, `the link carried ${run.carried} B/s in 3-10 s`);
  assert.equal(pace.startingUp, false, "start-up ended once the link was full");
  // Start-up's overshoot (up to a round trip's worth of queue) is gone: what queues ahead of
  // an alert is back to about a third of a second.
  const late = sim.run(15_000);
  assert.ok(late.alertDelays.at(-1)! <= 1_000, `alert delays ${late.alertDelays} ms`);
});

Deno.test("the link's rate: start-up begins again once nothing above the floor is remembered", () => {
  const sim = simulation(SATELLITE);
  const { pace, clock } = sim;
  sim.run(15_000);
  assert.equal(pace.startingUp, false);
  sim.sending = false;
  sim.run(20_000); // what was in flight is PUBACKed
  clock.now += 30_000; // idle: the samples age out
  const sent = pace.sent(1_000, 40);
  assert.equal(pace.startingUp, true, "probing up again from the floor");
  pace.acked(sent);
});

Deno.test("the link's rate: bytes per change are learned from the first publish, and a lone alert's frame barely moves them", () => {
  const pace = new LinkPace({ floorBytes: 16_384, now: () => 0 });
  assert.equal(pace.bytesPerRow, 200, "a guess until something was sent");
  pace.sent(13_000, 500);
  assert.equal(pace.bytesPerRow, 26, "the first publish's own");
  assert.equal(pace.rowBudget(), Math.floor(16_384 / 26));
  pace.sent(188, 1); // an alert alone: 188 bytes for one change
  assert.ok(pace.bytesPerRow < 26.5, `bytes per change ${pace.bytesPerRow}`);
});

Deno.test("the link's rate: while PUBACKs are overdue the budget grows by what the link carries, up to a bound", () => {
  let now = 0;
  const pace = new LinkPace({ horizonMs: 1_000, floorBytes: 16_384, now: () => now });
  // Two publishes, 32 KB apart PUBACKed 600 ms and 1,200 ms after their sends: 32 KB/s and a
  // 600 ms round trip.
  const a = pace.sent(32_000, 1_000);
  now = 600;
  pace.acked(a);
  const b = pace.sent(32_000, 1_000);
  now = 1_200;
  pace.acked(b);
  const c = pace.sent(32_000, 1_000);
  const rate = pace.rate;
  assert.ok(rate >= 32_000 * 1_000 / 600 * 0.99, `rate ${rate}`);
  // In start-up: two round trips of the rate (after it, a horizon).
  const atAck = pace.byteBudget();
  assert.ok(Math.abs(atAck - rate * 1.2) < 1, `at a PUBACK: ${atAck}`);

  // 400 ms without a PUBACK: the link carried 400 ms of its rate meanwhile.
  now = 1_600;
  assert.ok(Math.abs(pace.byteBudget() - rate * 1.6) < 1, `budget ${pace.byteBudget()}`);
  assert.ok(Math.abs(pace.msUntilRoom(rate / 10) - 100) < 0.01, "100 ms more for a tenth");
  // Never more than the round trip and half the horizon of it: PUBACKs that stopped for good
  // (a dead link) stop the sending too.
  now = 10_000;
  assert.ok(Math.abs(pace.byteBudget() - rate * 2.3) < 1, `budget ${pace.byteBudget()}`);
  assert.equal(pace.msUntilRoom(1), Infinity);
  pace.acked(c);
  assert.ok(pace.byteBudget() <= rate * 1.2 + 1, "a PUBACK resets it");
});

Deno.test("the link's rate: PUBACKs released together after a lost segment do not inflate it, and the link stays full through the stall", () => {
  const sim = simulation(SATELLITE);
  const { pace } = sim;
  const before = sim.run(20_000).budgetAtAck;
  // A publish held 800 ms (one RTT plus the minimum RTO): the ones behind it come together.
  sim.link = { ...SATELLITE, stallAtMs: 21_000, stallMs: 800 };
  const run = sim.run(26_000, 6_000);
  assert.ok(pace.rate <= 1.05 * 54_000, `rate ${pace.rate} after the stall`);
  // The budget grows while PUBACKs are overdue, by what the link carried meanwhile, so the
  // link carries on through the 800 ms. (Counting PUBACKs alone, it carried what was queued
  // and idled for the rest of it.)
  assert.ok(run.carried >= 0.97 * 54_000, `the link carried ${run.carried} B/s through the stall`);
  assert.ok(run.budgetAtAck <= before * 1.1, "the budget is back to the link's once it ends");
});

Deno.test("the link's rate: at 1 % loss each way the link stays full and an alert queues behind a third of a second", () => {
  for (const seed of [1, 2, 3]) {
    const sim = simulation({ ...SATELLITE, loss: 0.01, seed });
    const run = sim.run(60_000, 55_000);
    assert.ok(run.carried >= 0.95 * 54_000, `seed ${seed}: the link carried ${run.carried} B/s`);
    assert.ok(sim.pace.rate <= 1.1 * 54_000, `seed ${seed}: rate ${sim.pace.rate}`);
    // Most alerts wait for about a third of a second queued, their own publish's bytes and one
    // way (300 ms); the worst also wait out a lost segment's retransmission (800 ms), which
    // nothing sent before the loss can overtake.
    const median = run.alertDelays[Math.floor(run.alertDelays.length / 2)]!;
    assert.ok(median <= 950, `seed ${seed}: alert delay median ${median} ms`);
    assert.ok(run.alertDelays.at(-1)! <= 2_000, `seed ${seed}: worst ${run.alertDelays.at(-1)}`);
  }
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
