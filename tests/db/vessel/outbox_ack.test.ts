import assert from "node:assert/strict";
import { freshDatabase } from "../../support/pg.ts";
import { createRecordStore } from "../../../db/vessel/records.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import { applyAck, claimChanges, outboxStats } from "../../../db/vessel/outbox.ts";

// Found by the chaos suite (vessel PostgreSQL stopped while PUBACKs were being recorded): the
// rows were published and acknowledged by shore, yet stayed "queued" in /health forever.
Deno.test("an ack marks as published the changes whose PUBACK was never recorded", async () => {
  await using db = await freshDatabase();
  const records = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 3; i++) await records.create("crew", { name: `c${i}` });
  const claimed = await claimChanges(db.sql, 10, "vessel-1");
  assert.equal(claimed.length, 3);

  // Published on the wire, but the published watermark was never advanced (the database went
  // away before the flush): the ack alone releases them.
  const outcome = await applyAck(db.sql, { epoch: claimed[0]!.epoch!, seq: 3 });
  assert.deepEqual(outcome, { kind: "acked", released: 3 });

  const stats = await outboxStats(db.sql);
  assert.equal(stats.queued, 0);
  assert.equal(stats.unacked, 0);
  assert.equal(stats.lastAckedSeq, 3);
  // …and raises the published watermark to it: left at 0 it stuck for the rest of the epoch
  // (chaos seeds 31 and 33: lastPublishedSeq 13 against 316, 39 against 1,120).
  assert.equal(stats.lastPublishedSeq, 3);
});
