import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import { type Clock, encodeClock, Hlc, type Origin } from "../../core/hlc.ts";
import {
  applyLocal,
  applyRemote,
  canonical,
  type Change,
  type Conflict,
  conflictBetween,
  joinStates,
  MAX_PENDING,
  type RecordState,
  stateOf,
  type SyncRecord,
  visible,
} from "../../sync/merge.ts";

const HOUR = 3_600_000;
const BASE = 1_764_500_000_000;

// ---------------------------------------------------------------------------------------------
// The algebra of states

const clockPool = [1, 2, 3, 4].flatMap((wall) =>
  (["vessel", "shore"] as const).map((origin) => encodeClock({ wall, counter: 0, origin }))
);
const register = fc.record({
  value: fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 2 }), fc.constantFrom("x", "y")),
  clock: fc.constantFrom(...clockPool),
});
const recordState: fc.Arbitrary<RecordState> = fc.record({
  fields: fc.dictionary(fc.constantFrom("a", "b", "c"), register, { maxKeys: 3 }),
  deleted: fc.option(fc.constantFrom(...clockPool), { nil: null }),
});
const same = (a: RecordState, b: RecordState) => assert.equal(canonical(a), canonical(b));

Deno.test("the join of states is commutative", () => {
  fc.assert(
    fc.property(recordState, recordState, (a, b) => same(joinStates(a, b), joinStates(b, a))),
  );
});

Deno.test("the join of states is associative", () => {
  fc.assert(
    fc.property(
      recordState,
      recordState,
      recordState,
      (a, b, c) => same(joinStates(joinStates(a, b), c), joinStates(a, joinStates(b, c))),
    ),
  );
});

Deno.test("the join of states is idempotent", () => {
  fc.assert(fc.property(recordState, recordState, (a, b) => {
    same(joinStates(a, a), a);
    same(joinStates(joinStates(a, b), b), joinStates(a, b));
  }));
});

// ---------------------------------------------------------------------------------------------
// Two replicas over random concurrent histories

const RECORDS = ["r0", "r1", "r2"];
const FIELDS = ["a", "b", "c"];

type Step =
  | { kind: "write"; side: 0 | 1; record: number; del: boolean; fields: Record<string, unknown> }
  | { kind: "deliver"; to: 0 | 1; count: number }
  | { kind: "redeliver"; to: 0 | 1; pick: number }
  | { kind: "time"; ms: number }
  | { kind: "skew"; side: 0 | 1; ms: number };

const fieldValues = fc.dictionary(
  fc.constantFrom(...FIELDS),
  fc.oneof(fc.constant(null), fc.integer({ min: 0, max: 2 })),
  { minKeys: 1, maxKeys: 3 },
);
const side = fc.constantFrom<0 | 1>(0, 1);
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      side,
      record: fc.integer({ min: 0, max: RECORDS.length - 1 }),
      del: fc.integer({ min: 0, max: 9 }).map((n) => n < 3),
      fields: fieldValues,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("deliver" as const),
      to: side,
      count: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("redeliver" as const), to: side, pick: fc.nat() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("time" as const),
      ms: fc.integer({ min: 0, max: 5 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("skew" as const),
      side,
      ms: fc.integer({ min: -6 * HOUR, max: 6 * HOUR }),
    }),
  },
);
const skews = fc.tuple(
  fc.integer({ min: -6 * HOUR, max: 6 * HOUR }),
  fc.integer({ min: -6 * HOUR, max: 6 * HOUR }),
);

interface Written {
  change: Change;
  /** Ground truth: the clocks of the other side's changes applied before this was written. */
  saw: Set<Clock>;
}

class Replica {
  records = new Map<string, SyncRecord>();
  conflicts: Conflict[] = [];
  outbox: Written[] = [];
  applied = new Set<Clock>();
  hlc: Hlc;
  constructor(readonly origin: Origin, public skew: number, time: () => number) {
    this.hlc = new Hlc({ origin, now: () => time() + this.skew });
  }

  write(recordId: string, del: boolean, fields: Record<string, unknown>): void {
    const current = this.records.get(recordId);
    const shown = current && visible(current.state);
    if (current && !shown) return; // deleted here: the API answers 404
    const op = !current ? "create" : del ? "delete" : "update";
    const { record, change } = applyLocal(current, { entity: "e", recordId, op, fields }, this.hlc);
    this.records.set(recordId, record);
    this.outbox.push({ change, saw: new Set(this.applied) });
  }

  receive(change: Change): boolean {
    this.hlc.receive(change.clock);
    const { record, conflicts, duplicate } = applyRemote(
      this.records.get(change.recordId),
      change,
      this.origin,
    );
    this.records.set(change.recordId, record);
    this.conflicts.push(...conflicts);
    if (!duplicate) this.applied.add(change.clock);
    return duplicate;
  }
}

const key = (c: Conflict) => `${c.recordId}/${c.vesselClock}/${c.shoreClock}`;

function run(steps: Step[], [skewV, skewS]: [number, number]) {
  let time = BASE;
  const sides = [
    new Replica("vessel", skewV, () => time),
    new Replica("shore", skewS, () => time),
  ] as const;
  const delivered = [0, 0]; // per receiving side: how much of the other's outbox it applied
  const deliver = (to: 0 | 1) => {
    const from = sides[1 - to]!;
    const next = from.outbox[delivered[to]!];
    if (!next) return;
    const sentBefore = sides[to].outbox.length;
    assert.equal(sides[to].receive(next.change), false, "an in-order change is not a duplicate");
    assert.equal(sides[to].outbox.length, sentBefore, "applying a remote change sends nothing");
    delivered[to]!++;
  };
  for (const s of steps) {
    if (s.kind === "write") {
      sides[s.side].write(RECORDS[s.record]!, s.del, s.fields);
    } else if (s.kind === "deliver") {
      for (let i = 0; i < s.count; i++) deliver(s.to);
    } else if (s.kind === "redeliver") {
      if (delivered[s.to] === 0) continue;
      const again = sides[1 - s.to]!.outbox[s.pick % delivered[s.to]!]!;
      const before = sides[s.to].conflicts.length;
      assert.equal(sides[s.to].receive(again.change), true, "a re-delivery is a duplicate");
      assert.equal(sides[s.to].conflicts.length, before, "a re-delivery records no conflict");
    } else if (s.kind === "time") {
      time += s.ms;
    } else {
      sides[s.side].skew = s.ms;
    }
  }
  while (delivered[0]! < sides[1].outbox.length || delivered[1]! < sides[0].outbox.length) {
    deliver(0);
    deliver(1);
  }
  return sides;
}

Deno.test("two replicas converge over random concurrent histories, whatever the skew", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), skews, (steps, skew) => {
      const [vessel, shore] = run(steps, skew);
      for (const id of RECORDS) {
        const v = vessel.records.get(id);
        const s = shore.records.get(id);
        assert.equal(v === undefined, s === undefined);
        if (v && s) assert.equal(canonical(visible(v.state)), canonical(visible(s.state)));
      }
    }),
    { numRuns: 500 },
  );
});

Deno.test("final values are each field's latest write, and any delete wins", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), skews, (steps, skew) => {
      const [vessel, shore] = run(steps, skew);
      const all = [...vessel.outbox, ...shore.outbox];
      for (const id of RECORDS) {
        const changes = all.map((w) => w.change).filter((c) => c.recordId === id);
        const record = vessel.records.get(id);
        if (changes.length === 0) continue;
        if (changes.some((c) => c.op === "delete")) {
          assert.equal(visible(record!.state), null);
          continue;
        }
        const expected: Record<string, unknown> = {};
        for (const f of FIELDS) {
          const last = changes.filter((c) => Object.hasOwn(c.fields, f))
            .sort((a, b) => a.clock < b.clock ? -1 : 1).at(-1);
          if (last) expected[f] = last.fields[f];
        }
        assert.equal(canonical(visible(record!.state)), canonical(expected));
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("every concurrent contested pair is one conflict on each side, the same on both", () => {
  let seenConflicts = 0;
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), skews, (steps, skew) => {
      const [vessel, shore] = run(steps, skew);
      // The oracle: pairs neither of whose writers had applied the other when writing.
      const expected = new Map<string, Conflict>();
      for (const x of vessel.outbox) {
        for (const y of shore.outbox) {
          if (x.change.recordId !== y.change.recordId) continue;
          if (x.saw.has(y.change.clock) || y.saw.has(x.change.clock)) continue;
          const c = conflictBetween(x.change, y.change);
          if (c) expected.set(key(c), c);
        }
      }
      for (const side of [vessel, shore]) {
        const keys = side.conflicts.map(key);
        assert.equal(new Set(keys).size, keys.length, `${side.origin} recorded a conflict twice`);
        assert.deepEqual(new Set(keys), new Set(expected.keys()));
      }
      const byKey = (cs: Conflict[]) => canonical([...cs].sort((a, b) => key(a) < key(b) ? -1 : 1));
      assert.equal(byKey(vessel.conflicts), byKey(shore.conflicts));
      seenConflicts += expected.size;
    }),
    { numRuns: 500 },
  );
  assert.ok(seenConflicts > 0, "the histories produced conflicts to check");
});

Deno.test("an edit made after seeing another wins over it, with clocks hours apart", () => {
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), skews, (steps, skew) => {
      const [vessel, shore] = run(steps, skew);
      const all = [...vessel.outbox, ...shore.outbox];
      const byClock = new Map(all.map((w) => [w.change.clock, w.change]));
      for (const later of all) {
        for (const clock of later.saw) {
          const earlier = byClock.get(clock)!;
          if (earlier.recordId === later.change.recordId) assert.ok(later.change.clock > clock);
        }
      }
      // A side's own successive writes of a record are ordered too.
      for (const side of [vessel, shore]) {
        for (const id of RECORDS) {
          const clocks = side.outbox.filter((w) => w.change.recordId === id).map((w) =>
            w.change.clock
          );
          assert.deepEqual(clocks, [...clocks].sort());
        }
      }
    }),
    { numRuns: 300 },
  );
});

Deno.test("states converge in any delivery order, with duplicates", () => {
  fc.assert(
    fc.property(
      fc.array(step, { maxLength: 40 }),
      skews,
      fc.array(fc.nat(), { maxLength: 80 }),
      (steps, skew, order) => {
        const [vessel, shore] = run(steps, skew);
        const changes = [...vessel.outbox, ...shore.outbox].map((w) => w.change);
        if (changes.length === 0) return;
        const inOrder = new Map<string, RecordState>();
        const shuffled = new Map<string, RecordState>();
        const fold = (into: Map<string, RecordState>, c: Change) =>
          into.set(
            c.recordId,
            joinStates(into.get(c.recordId) ?? { fields: {}, deleted: null }, stateOf(c)),
          );
        for (const c of changes) fold(inOrder, c);
        const picks = [...order.map((i) => changes[i % changes.length]!), ...changes.reverse()];
        for (const c of picks) fold(shuffled, c);
        for (const [id, state] of inOrder) same(shuffled.get(id)!, state);
        for (const id of RECORDS) {
          const v = vessel.records.get(id);
          if (v) same(v.state, inOrder.get(id)!);
        }
      },
    ),
    { numRuns: 300 },
  );
});

// ---------------------------------------------------------------------------------------------
// Examples

function pair(skew: { vessel?: number; shore?: number } = {}) {
  let time = BASE;
  const vessel = new Replica("vessel", skew.vessel ?? 0, () => time);
  const shore = new Replica("shore", skew.shore ?? 0, () => time);
  return {
    vessel,
    shore,
    tick: (ms = 1) => time += ms,
    send: (from: Replica, to: Replica, index = from.outbox.length - 1) =>
      to.receive(from.outbox[index]!.change),
  };
}
const values = (r: Replica, id = "r0") => visible(r.records.get(id)!.state);

Deno.test("concurrent edits of different fields both survive without a conflict", () => {
  const { vessel, shore, tick, send } = pair();
  vessel.write("r0", false, { status: "open", priority: 3 });
  send(vessel, shore);
  tick();
  vessel.write("r0", false, { status: "completed" });
  shore.write("r0", false, { priority: 1 });
  send(vessel, shore);
  send(shore, vessel);
  assert.deepEqual(values(vessel), { priority: 1, status: "completed" });
  assert.deepEqual(values(shore), values(vessel));
  assert.deepEqual([vessel.conflicts, shore.conflicts], [[], []]);
});

Deno.test("same-field edits: the later clock wins on both sides, one conflict each", () => {
  const { vessel, shore, tick, send } = pair();
  shore.write("r0", false, { status: "open" });
  send(shore, vessel);
  tick();
  vessel.write("r0", false, { status: "in_progress" });
  tick();
  shore.write("r0", false, { status: "cancelled" });
  send(vessel, shore);
  send(shore, vessel);
  assert.deepEqual(values(vessel), { status: "cancelled" });
  assert.deepEqual(values(shore), { status: "cancelled" });
  assert.equal(vessel.conflicts.length, 1);
  assert.deepEqual(vessel.conflicts, shore.conflicts);
  const { fields, vessel: v, shore: s, resolved } = vessel.conflicts[0]!;
  assert.deepEqual({ fields, v, s, resolved }, {
    fields: ["status"],
    v: { status: "in_progress" },
    s: { status: "cancelled" },
    resolved: { status: "cancelled" },
  });
});

Deno.test("on a tie of wall time and counter the vessel's edit wins", () => {
  const { vessel, shore, send } = pair();
  vessel.write("r0", false, { title: "from the ship" });
  shore.write("r0", false, { title: "from the office" });
  assert.equal(
    vessel.outbox[0]!.change.clock.slice(0, -1),
    shore.outbox[0]!.change.clock.slice(0, -1),
  );
  send(vessel, shore);
  send(shore, vessel);
  assert.deepEqual(values(vessel), { title: "from the ship" });
  assert.deepEqual(values(shore), { title: "from the ship" });
});

Deno.test("a delete wins over a concurrent update, recorded as a conflict on both sides", () => {
  const { vessel, shore, tick, send } = pair({ shore: 2 * HOUR });
  vessel.write("r0", false, { status: "open", title: "Overhaul" });
  send(vessel, shore);
  tick();
  vessel.write("r0", true, {});
  shore.write("r0", false, { status: "in_progress" }); // later clock: still loses to the delete
  send(vessel, shore);
  send(shore, vessel);
  assert.equal(values(vessel), null);
  assert.equal(values(shore), null);
  assert.equal(vessel.conflicts.length, 1);
  assert.deepEqual(vessel.conflicts, shore.conflicts);
  const c = vessel.conflicts[0]!;
  assert.deepEqual([c.fields, c.vessel, c.shore, c.resolved], [
    ["status"],
    null,
    { status: "in_progress" },
    null,
  ]);
});

Deno.test("an edit made after seeing a 3-hour-fast edit wins over it", () => {
  const { vessel, shore, tick, send } = pair({ shore: 3 * HOUR });
  shore.write("r0", false, { assignedTo: "chief engineer" });
  send(shore, vessel);
  tick(60_000);
  vessel.write("r0", false, { assignedTo: "second engineer" });
  send(vessel, shore);
  assert.deepEqual(values(vessel), { assignedTo: "second engineer" });
  assert.deepEqual(values(shore), { assignedTo: "second engineer" });
  assert.deepEqual([vessel.conflicts, shore.conflicts], [[], []]);
});

Deno.test("a re-delivered change is recognised and changes nothing", () => {
  const { vessel, shore, tick, send } = pair();
  vessel.write("r0", false, { a: 1 });
  send(vessel, shore);
  tick();
  vessel.write("r0", false, { a: 2 });
  shore.write("r0", false, { a: 3 });
  send(vessel, shore);
  const before = structuredClone(shore.records.get("r0"));
  assert.equal(send(vessel, shore, 0), true);
  assert.equal(send(vessel, shore, 1), true);
  assert.deepEqual(shore.records.get("r0"), before);
  assert.equal(shore.conflicts.length, 1);
});

Deno.test("a change is never applied on the side that wrote it", () => {
  const { vessel } = pair();
  vessel.write("r0", false, { a: 1 });
  assert.throws(() => applyRemote(vessel.records.get("r0"), vessel.outbox[0]!.change, "vessel"));
});

Deno.test("a record edited by one side alone remembers at most MAX_PENDING of its edits", () => {
  const hlc = new Hlc({ origin: "vessel" });
  let { record } = applyLocal(undefined, {
    entity: "e",
    recordId: "r",
    op: "create",
    fields: { n: 0 },
  }, hlc);
  for (let i = 1; i <= 3 * MAX_PENDING; i++) {
    record = applyLocal(record, { entity: "e", recordId: "r", op: "update", fields: { n: i } }, hlc)
      .record;
  }
  assert.equal(record.pending.length, MAX_PENDING);
  assert.equal(record.state.fields.n?.value, 3 * MAX_PENDING);
});
