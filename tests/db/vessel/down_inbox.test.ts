import assert from "node:assert/strict";
import type { Sql } from "../../../db/connection.ts";
import { Hlc } from "../../../core/hlc.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import { createRecordStore } from "../../../db/vessel/records.ts";
import { createShoreWrites } from "../../../db/shore/writes.ts";
import { claimDownChanges, type DownRow, pendingDownAfter } from "../../../db/shore/down-outbox.ts";
import {
  downAckPosition,
  type DownChange,
  ingestDown,
  pruneDownInbox,
} from "../../../db/vessel/down-inbox.ts";
import {
  conflictPayload,
  conflictSchema,
  envelopeSchema,
  toEnvelope,
} from "../../../sync/protocol.ts";
import {
  listConflicts,
  markConflictsPublished,
  unpublishedConflicts,
} from "../../../db/conflicts.ts";
import { freshDatabase } from "../../support/pg.ts";

const VESSEL = "ship-1";

// The envelope the down stream will carry, built and checked as the up stream's are.
const toDown = (r: DownRow): DownChange => {
  const envelope = envelopeSchema.parse(toEnvelope(r, r.vesselId));
  assert.ok(envelope.sync, "a down change carries its clock");
  return { ...envelope, sync: envelope.sync };
};

async function changeCount(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int8 as n from changes`;
  return row!.n;
}

Deno.test("the vessel applies the shore's changes exactly once, in order, through the merge", async (t) => {
  await using shoreDb = await freshDatabase();
  await using vesselDb = await freshDatabase();
  // The shore's clock runs two hours fast: nothing below may depend on clocks agreeing.
  const shoreHlc = new Hlc({ origin: "shore", now: () => Date.now() + 2 * 3_600_000 });
  const vesselHlc = new Hlc({ origin: "vessel" });
  const shore = createShoreWrites({ sql: shoreDb.sql, hlc: shoreHlc });
  const vessel = createRecordStore({
    sql: vesselDb.sql,
    gate: new OutboxGate(1_000),
    hlc: vesselHlc,
  });
  let epoch = "";
  const deliver = async (rows?: DownRow[]) => {
    rows ??= await claimDownChanges(shoreDb.sql, VESSEL, 1_000);
    if (rows[0]) epoch = rows[0].epoch;
    return await ingestDown(vesselDb.sql, {
      vesselId: VESSEL,
      epoch,
      changes: rows.map(toDown),
      hlc: vesselHlc,
    });
  };

  await t.step("a record created ashore appears on board once, without an echo", async () => {
    const rec = await shore.create(VESSEL, "work_orders", { title: "Overhaul", equipmentId: "p" });
    const rows = await claimDownChanges(shoreDb.sql, VESSEL, 10);
    const before = await changeCount(vesselDb.sql);
    const first = await deliver(rows);
    assert.deepEqual({ ...first }, {
      duplicates: 0,
      applied: 1,
      lastSeq: 1,
      waiting: false,
      conflicts: 0,
      clockAhead: 1, // two hours fast: counted, and this side's clock not dragged along
    });
    const again = await deliver(rows);
    assert.equal(again.duplicates, 1);
    assert.equal(again.applied, 0);
    const { vesselId: _, ...expected } = rec;
    assert.deepEqual(await vessel.get("work_orders", rec.id), expected);
    assert.equal(await changeCount(vesselDb.sql), before, "applying wrote no change to send back");
  });

  await t.step("changes past a gap wait until it is filled", async () => {
    const rec = await shore.create(VESSEL, "crew", { name: "Ada" });
    await shore.update(VESSEL, "crew", rec.id, { rank: "Bosun" });
    const [create, update] = await claimDownChanges(shoreDb.sql, VESSEL, 10);
    const early = await deliver([update!]);
    assert.deepEqual([early.applied, early.waiting], [0, true]);
    assert.equal(await vessel.get("crew", rec.id), undefined);
    const filled = await deliver([create!]);
    assert.deepEqual([filled.applied, filled.waiting, filled.lastSeq], [2, false, 3]);
    assert.deepEqual(await downAckPosition(vesselDb.sql), { epoch, seq: 3 });
    assert.equal((await vessel.get("crew", rec.id))?.rank, "Bosun");
  });

  await t.step(
    "an edit on board of a record created ashore is sent with a later clock than it saw",
    async () => {
      const rec = await shore.create(VESSEL, "equipment", { name: "Pump", runningHours: 1 });
      await deliver();
      const edited = await vessel.update("equipment", rec.id, { runningHours: 2 });
      assert.equal(edited.runningHours, 2);
      assert.equal(edited.version, 2);
      const [change] = await vesselDb.sql`select sync from changes
      where record_id = ${rec.id} order by id desc limit 1`;
      assert.deepEqual(change!.sync.fields, ["runningHours"]);
      assert.ok(change!.sync.clock > change!.sync.seen, "a causal edit takes a later clock");
    },
  );

  await t.step("concurrent edits of different fields both survive", async () => {
    const rec = await shore.create(VESSEL, "work_orders", { title: "t", equipmentId: "e" });
    await deliver();
    await vessel.update("work_orders", rec.id, { status: "completed" });
    await shore.update(VESSEL, "work_orders", rec.id, { priority: 1 });
    const result = await deliver();
    assert.equal(result.conflicts, 0);
    const held = await vessel.get("work_orders", rec.id);
    assert.deepEqual([held?.status, held?.priority], ["completed", 1]);
  });

  await t.step("same-field edits: the later clock wins, one conflict on record", async () => {
    const rec = await shore.create(VESSEL, "work_orders", { title: "t", equipmentId: "e" });
    await deliver();
    await vessel.update("work_orders", rec.id, { assignedTo: "chief" });
    await shore.update(VESSEL, "work_orders", rec.id, { assignedTo: "second" });
    const result = await deliver();
    assert.equal(result.conflicts, 1);
    // The shore's clock is two hours fast, so its concurrent edit is the later one.
    assert.equal((await vessel.get("work_orders", rec.id))?.assignedTo, "second");
    const { items } = await listConflicts(vesselDb.sql, { limit: 10 });
    assert.equal(items.length, 1);
    const c = items[0]!;
    assert.deepEqual(
      [c.entity, c.recordId, c.vesselId, c.fields, c.vessel, c.shore, c.resolved],
      ["work_orders", rec.id, VESSEL, ["assignedTo"], { assignedTo: "chief" }, {
        assignedTo: "second",
      }, { assignedTo: "second" }],
    );
  });

  await t.step("delete on board against an update ashore: deleted, one conflict", async () => {
    const rec = await shore.create(VESSEL, "alerts", {
      equipmentId: "e",
      severity: "warning",
      message: "oil",
    });
    await deliver();
    await vessel.remove("alerts", rec.id);
    await shore.update(VESSEL, "alerts", rec.id, { acknowledged: true });
    const result = await deliver();
    assert.equal(result.conflicts, 1);
    assert.equal(await vessel.get("alerts", rec.id), undefined);
    const { items } = await listConflicts(vesselDb.sql, { entity: "alerts", limit: 10 });
    assert.deepEqual(
      [items[0]?.fields, items[0]?.vessel, items[0]?.shore, items[0]?.resolved],
      [["acknowledged"], null, { acknowledged: true }, null],
    );
  });

  await t.step(
    "after the inbox is pruned, a re-delivered old change is still a duplicate",
    async () => {
      await vesselDb.sql`update down_inbox set applied_at = applied_at - interval '40 days'`;
      assert.ok(await pruneDownInbox(vesselDb.sql, 30) > 0);
      const [left] = await vesselDb.sql`select count(*)::int as n from down_inbox`;
      assert.equal(left!.n, 0);
      const old = await pendingDownAfter(shoreDb.sql, {
        vesselId: VESSEL,
        epoch,
        afterSeq: 0,
        limit: 1,
      });
      const before = await vesselDb.sql`select data from work_orders order by id`;
      const again = await deliver(old);
      assert.deepEqual([again.applied, again.duplicates], [0, 1]);
      assert.deepEqual(await vesselDb.sql`select data from work_orders order by id`, before);
    },
  );

  await t.step("conflicts page newest first", async () => {
    const page1 = await listConflicts(vesselDb.sql, { limit: 1 });
    assert.equal(page1.items[0]?.entity, "alerts");
    const page2 = await listConflicts(vesselDb.sql, { limit: 1, cursor: page1.nextCursor! });
    assert.equal(page2.items[0]?.entity, "work_orders");
    assert.equal(page2.nextCursor, null);
  });

  await t.step("each conflict is published once, as a message its schema accepts", async () => {
    const waiting = await unpublishedConflicts(vesselDb.sql, 10);
    assert.deepEqual(waiting.map((c) => c.entity), ["work_orders", "alerts"]);
    for (const c of waiting) {
      assert.deepEqual(conflictSchema.parse(JSON.parse(conflictPayload(c))), c);
    }
    assert.equal(await markConflictsPublished(vesselDb.sql, waiting.map((c) => c.id)), 2);
    assert.equal(await markConflictsPublished(vesselDb.sql, waiting.map((c) => c.id)), 0);
    assert.deepEqual(await unpublishedConflicts(vesselDb.sql, 10), []);
  });
});
