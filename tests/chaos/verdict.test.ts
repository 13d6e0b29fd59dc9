import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { createRecordStore } from "../../db/vessel/records.ts";
import { OutboxGate } from "../../core/outbox-gate.ts";
import { claimChanges } from "../../db/vessel/outbox.ts";
import { ingest } from "../../db/shore/inbox.ts";
import { computeVerdict, openVesselDb, type VesselReports } from "./verdict.ts";
import type { AckedWrite } from "./writers.ts";

// The verdict is what the chaos suite's figures rest on: it must see each kind of failure.
Deno.test("the chaos verdict counts lost, double-applied and diverged changes", async (t) => {
  await using vessel = await freshDatabase();
  await using shore = await freshDatabase();
  const vesselId = "verdict-1";
  const records = createRecordStore({ sql: vessel.sql, gate: new OutboxGate(100) });
  const acked: AckedWrite[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await records.create("crew", { name: `c${i}` });
    acked.push({ entity: "crew", id: r.id, op: "create", version: r.version });
  }
  const updated = await records.update("crew", acked[0]!.id, { rank: "AB" });
  acked.push({ entity: "crew", id: updated.id, op: "update", version: updated.version });
  await records.remove("crew", acked[1]!.id);
  acked.push({ entity: "crew", id: acked[1]!.id, op: "delete" });
  const rows = await claimChanges(vessel.sql, 10, vesselId);
  const envelopes = rows.map((r) => JSON.parse(r.json));
  await ingest(shore.sql, vesselId, rows[0]!.epoch!, envelopes);
  const vesselDb = await openVesselDb({ url: vessel.url });
  const verdict = (reports?: VesselReports) =>
    computeVerdict({ vessel: vesselDb, shoreUrl: shore.url, vesselId, acked, reports });

  await t.step("everything applied once and identical: all zero", async () => {
    const v = await verdict();
    assert.deepEqual([v.changes, v.lost, v.doubleApplied, v.diverged], [5, 0, 0, 0]);
  });

  await t.step("a 2xx without its change row on board is lost", async () => {
    acked.push({ entity: "crew", id: crypto.randomUUID(), op: "create", version: 1 });
    const v = await verdict();
    assert.deepEqual([v.lost, v.lostOnBoard], [1, 1]);
    acked.pop();
  });

  await t.step("a change shore never applied is lost", async () => {
    await shore.sql`update shore_inbox set applied_at = null where seq = 5`;
    const v = await verdict();
    assert.deepEqual([v.lost, v.lostOnBoard], [1, 0]);
    await shore.sql`update shore_inbox set applied_at = now() where seq = 5`;
  });

  await t.step("an apply counted twice is a double apply", async () => {
    await shore.sql`update shore_positions set applied_count = applied_count + 1`;
    assert.equal((await verdict()).doubleApplied, 1);
    await shore.sql`update shore_positions set applied_count = applied_count - 1`;
  });

  await t.step("a record whose version or tombstone differs ashore has diverged", async () => {
    await shore.sql`update shore_records set version = version + 1 where id = ${acked[0]!.id}`;
    await shore.sql`update shore_records set deleted_at = null where id = ${acked[1]!.id}`;
    assert.equal((await verdict()).diverged, 2);
  });

  await t.step("/health and /metrics are held to the vessel's database", async () => {
    const { epoch } = rows[0]!;
    const health = {
      epoch,
      queuedMessages: 0,
      unackedMessages: 0,
      lastPublishedSeq: 5,
      lastAckedSeq: 5,
    };
    const metrics = "bosun_queue_depth 0\nbosun_unacked_changes 0\nbosun_last_acked_seq 5\n";
    assert.equal((await verdict({ health, metrics })).reportsUntrue, 0);
    // The stuck watermark of issue 15: published stopped early, so changes count as queued.
    const stuck = { ...health, lastPublishedSeq: 3, queuedMessages: 2 };
    const v = await verdict({ health: stuck, metrics: metrics.replace("depth 0", "depth 2") });
    assert.equal(v.reportsUntrue, 3, v.examples.join("; "));
    assert.equal((await verdict({ health: undefined, metrics })).reportsUntrue, 1);
  });
  await vesselDb.close();
});
