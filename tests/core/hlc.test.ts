import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import {
  compareClocks,
  decodeClock,
  encodeClock,
  Hlc,
  isClock,
  successor,
  type Timestamp,
} from "../../core/hlc.ts";

const HOUR = 3_600_000;
const timestamp = fc.record({
  wall: fc.integer({ min: 0, max: 2 ** 44 }),
  counter: fc.integer({ min: 0, max: 16 ** 6 - 1 }),
  origin: fc.constantFrom<Timestamp["origin"]>("vessel", "shore"),
});
const tupleOrder = (a: Timestamp, b: Timestamp) =>
  a.wall - b.wall || a.counter - b.counter ||
  (a.origin === b.origin ? 0 : a.origin === "vessel" ? 1 : -1);

Deno.test("a clock's string order is the order of (wall, counter, origin)", () => {
  fc.assert(fc.property(timestamp, timestamp, (a, b) => {
    const [ea, eb] = [encodeClock(a), encodeClock(b)];
    assert.ok(isClock(ea));
    assert.deepEqual(decodeClock(ea), { ...a });
    assert.equal(compareClocks(ea, eb), Math.sign(tupleOrder(a, b)));
  }));
});

Deno.test("on equal wall and counter the vessel's clock sorts after the shore's", () => {
  const t = { wall: 1_764_500_000_000, counter: 7 };
  assert.ok(encodeClock({ ...t, origin: "vessel" }) > encodeClock({ ...t, origin: "shore" }));
});

Deno.test("now() only goes forward, even when the machine's time steps back by hours", () => {
  let pt = 10 * HOUR;
  const hlc = new Hlc({ origin: "vessel", now: () => pt });
  const first = hlc.now();
  pt -= 3 * HOUR;
  const second = hlc.now();
  assert.ok(second > first);
  assert.equal(decodeClock(second).wall, 10 * HOUR);
  pt = 11 * HOUR;
  assert.deepEqual(decodeClock(hlc.now()), { wall: 11 * HOUR, counter: 0, origin: "vessel" });
});

Deno.test("receive() follows a remote clock within the drift bound", () => {
  const pt = 10 * HOUR;
  const hlc = new Hlc({ origin: "shore", now: () => pt, maxDriftMs: 60_000 });
  const remote = encodeClock({ wall: pt + 30_000, counter: 4, origin: "vessel" });
  const { clock, aheadMs } = hlc.receive(remote);
  assert.equal(aheadMs, 0);
  assert.deepEqual(decodeClock(clock), { wall: pt + 30_000, counter: 5, origin: "shore" });
  assert.ok(hlc.now() > remote);
});

Deno.test("receive() clamps a remote clock hours ahead and reports by how much", () => {
  const pt = 10 * HOUR;
  const hlc = new Hlc({ origin: "shore", now: () => pt, maxDriftMs: 60_000 });
  const remote = encodeClock({ wall: pt + 3 * HOUR, counter: 0, origin: "vessel" });
  const { clock, aheadMs } = hlc.receive(remote);
  assert.equal(aheadMs, 3 * HOUR - 60_000);
  assert.equal(decodeClock(clock).wall, pt + 60_000);
  assert.equal(decodeClock(hlc.now()).wall, pt + 60_000);
});

Deno.test("after() is later than a record's clock however far ahead that clock is", () => {
  const pt = 10 * HOUR;
  const hlc = new Hlc({ origin: "shore", now: () => pt, maxDriftMs: 60_000 });
  const far = encodeClock({ wall: pt + 5 * HOUR, counter: 9, origin: "vessel" });
  const stamp = hlc.after(far);
  assert.ok(stamp > far);
  assert.equal(stamp, successor(far, "shore"));
  // The far clock moved this side's own clock no further than the drift bound.
  assert.equal(decodeClock(hlc.now()).wall, pt + 60_000);
  const near = encodeClock({ wall: pt + 1_000, counter: 2, origin: "vessel" });
  assert.ok(hlc.after(near) > near);
});

Deno.test("after() of any clock sorts after it, for both origins and any skew", () => {
  fc.assert(fc.property(
    timestamp,
    fc.integer({ min: 0, max: 2 ** 44 }),
    fc.constantFrom<Timestamp["origin"]>("vessel", "shore"),
    (t, pt, origin) => {
      const hlc = new Hlc({ origin, now: () => pt });
      const latest = encodeClock(t);
      const a = hlc.after(latest);
      assert.ok(a > latest);
      assert.ok(hlc.after(latest) > a || hlc.after(a) > a);
    },
  ));
});

Deno.test("a full counter borrows the next millisecond instead of overflowing", () => {
  const max = encodeClock({ wall: 5, counter: 16 ** 6 - 1, origin: "vessel" });
  assert.deepEqual(decodeClock(successor(max, "shore")), { wall: 6, counter: 0, origin: "shore" });
  const hlc = new Hlc({ origin: "vessel", now: () => 5 });
  hlc.receive(encodeClock({ wall: 5, counter: 16 ** 6 - 2, origin: "shore" }));
  assert.deepEqual(decodeClock(hlc.now()), { wall: 6, counter: 0, origin: "vessel" });
});

Deno.test("malformed clocks are refused", () => {
  for (const bad of ["", "zz", "0000000000000000000x", "00000000000a000000v "]) {
    assert.equal(isClock(bad), false);
    assert.throws(() => decodeClock(bad), RangeError);
  }
  assert.throws(() => encodeClock({ wall: -1, counter: 0, origin: "vessel" }), RangeError);
});
