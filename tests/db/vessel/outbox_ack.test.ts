import assert from "node:assert/strict";
import { freshDatabase, type TestDatabase } from "../../support/pg.ts";
import { createRecordStore } from "../../../db/vessel/records.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import {
  advancePublished,
  applyAck,
  claimChanges,
  countPending,
  outboxStats,
  pendingAfter,
  pruneAcked,
} from "../../../db/vessel/outbox.ts";
import { migrate, MIGRATIONS } from "../../../db/migrations.ts";

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

const seqsLeft = async (sql: TestDatabase["sql"]) =>
  (await sql<{ seq: number }[]>`select seq::int from changes order by id`).map((r) => r.seq);

Deno.test("shore's ack is a watermark: one update, whatever it covers", async (t) => {
  await using db = await freshDatabase();
  const records = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 5; i++) await records.create("crew", { name: `c${i}` });
  const claimed = await claimChanges(db.sql, 10, "vessel-1");
  const epoch = claimed[0]!.epoch;
  await advancePublished(db.sql, { epoch, seq: 5 });

  await t.step("an ack releases up to its seq, and only what it newly covers", async () => {
    assert.deepEqual(await applyAck(db.sql, { epoch, seq: 2 }), { kind: "acked", released: 2 });
    assert.deepEqual(await applyAck(db.sql, { epoch, seq: 2 }), { kind: "acked", released: 0 });
    assert.deepEqual(await applyAck(db.sql, { epoch, seq: 1 }), { kind: "acked", released: 0 });
    const stats = await outboxStats(db.sql);
    assert.equal(stats.lastAckedSeq, 2);
    assert.equal(stats.unacked, 3);
    assert.equal(stats.queued, 0);
    assert.ok(stats.lastAckAt instanceof Date);
    assert.equal(await countPending(db.sql), 3);
  });

  await t.step("the unacknowledged rows are those above it", async () => {
    const rows = await pendingAfter(db.sql, { epoch, afterSeq: 0, limit: 10, vesselId: "v" });
    assert.deepEqual(rows.map((r) => r.seq), [3, 4, 5]);
  });

  await t.step("another epoch's ack changes nothing", async () => {
    const other = crypto.randomUUID();
    assert.deepEqual(await applyAck(db.sql, { epoch: other, seq: 5 }), { kind: "ignored" });
    assert.equal((await outboxStats(db.sql)).lastAckedSeq, 2);
  });
});

Deno.test("an ack past the last seq (a restored backup) starts an epoch and acknowledges the old one", async () => {
  await using db = await freshDatabase();
  const records = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 4; i++) await records.create("crew", { name: `c${i}` });
  const claimed = await claimChanges(db.sql, 10, "vessel-1");
  const old = claimed[0]!.epoch;
  await applyAck(db.sql, { epoch: old, seq: 1 });

  const outcome = await applyAck(db.sql, { epoch: old, seq: 40 });
  assert.equal(outcome.kind, "new_epoch");
  assert.equal((outcome as { released: number }).released, 3);
  const stats = await outboxStats(db.sql);
  assert.notEqual(stats.epoch, old);
  assert.deepEqual([stats.queued, stats.unacked, stats.lastAckedSeq], [0, 0, 0]);
  assert.equal(await countPending(db.sql), 0);
  // Nothing of the old epoch is re-read, and the new one starts at seq 1.
  const stale = await pendingAfter(db.sql, { epoch: old, afterSeq: 0, limit: 9, vesselId: "v" });
  assert.equal(stale.length, 0);
  await records.create("crew", { name: "after restore" });
  const next = await claimChanges(db.sql, 10, "vessel-1");
  assert.deepEqual(next.map((r) => [r.epoch, r.seq]), [[stats.epoch, 1]]);
  assert.equal(await countPending(db.sql), 1);
});

Deno.test("ACK_MODE=broker: the published watermark's advance acknowledges, contiguously", async () => {
  await using db = await freshDatabase();
  const records = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 5; i++) await records.create("crew", { name: `c${i}` });
  const epoch = (await claimChanges(db.sql, 10, "vessel-1"))[0]!.epoch;
  assert.equal(await advancePublished(db.sql, { epoch, seq: 3, acked: true }), 3);
  assert.equal(await advancePublished(db.sql, { epoch, seq: 2, acked: true }), 0);
  assert.equal(
    await advancePublished(db.sql, { epoch: crypto.randomUUID(), seq: 5, acked: true }),
    0,
  );
  const stats = await outboxStats(db.sql);
  assert.deepEqual([stats.lastPublishedSeq, stats.lastAckedSeq, stats.unacked, stats.queued], [
    3,
    3,
    0,
    2,
  ]);
  const rows = await pendingAfter(db.sql, { epoch, afterSeq: 0, limit: 10, vesselId: "v" });
  assert.deepEqual(rows.map((r) => r.seq), [4, 5]);
});

Deno.test("retention keeps changes acknowledged less than CATCHUP_RETENTION_DAYS ago, of every epoch", async () => {
  await using db = await freshDatabase();
  const records = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 6; i++) await records.create("crew", { name: `c${i}` });
  const old = (await claimChanges(db.sql, 10, "vessel-1"))[0]!.epoch;
  // Seqs 1-2 acknowledged 40 days ago, 3-4 25 days ago, then a restore ended the epoch (5-6
  // acknowledged with it) 5 days ago.
  const ackedAgo = async (seq: number, days: number) => {
    await applyAck(db.sql, { epoch: old, seq });
    await db.sql`update vessel_acks set at = at - make_interval(days => ${days}),
      minute = minute - make_interval(days => ${days}) where at > now() - interval '1 day'`;
  };
  await ackedAgo(2, 40);
  await ackedAgo(4, 25);
  await ackedAgo(99, 5);
  // The new epoch: seqs 1-3 claimed, 1-2 acknowledged now, 3 not at all.
  for (let i = 0; i < 3; i++) await records.create("crew", { name: `n${i}` });
  const now = (await claimChanges(db.sql, 10, "vessel-1"))[0]!.epoch;
  await applyAck(db.sql, { epoch: now, seq: 2 });

  assert.equal(await pruneAcked(db.sql, 30, 1), 2);
  assert.deepEqual(await seqsLeft(db.sql), [3, 4, 5, 6, 1, 2, 3]);
  assert.equal(await pruneAcked(db.sql, 20, 1), 2);
  assert.deepEqual(await seqsLeft(db.sql), [5, 6, 1, 2, 3]);
  assert.equal(await pruneAcked(db.sql, 10, 100), 0);
  const [log] = await db.sql`select count(*)::int as n from vessel_acks`;
  assert.equal(log!.n, 2);
  // Past the limit, all acknowledged rows go; a change not yet acknowledged never does.
  await db.sql`update vessel_acks set at = at - interval '2 days'`;
  assert.equal(await pruneAcked(db.sql, 1, 100), 4);
  assert.deepEqual(await seqsLeft(db.sql), [3]);
});

Deno.test("the upgrade to the watermark keeps what was acknowledged, and re-sends what was not", async () => {
  await using db = await freshDatabase({ migrated: false });
  await migrate(db.sql, MIGRATIONS.filter((m) => m.version < 13));
  const records = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 5; i++) await records.create("crew", { name: `c${i}` });
  // ACK_MODE=broker marked rows one by one: seqs 1, 2 and 4 acknowledged (4 ten days ago), 3
  // and 5 not.
  await db.sql`update changes set epoch = (select epoch from vessel_state), seq = id,
    acked_at = case when id in (1, 2) then now() when id = 4 then now() - interval '10 days' end`;
  await db.sql`update vessel_state set last_seq = 5, published_seq = 5`;
  await migrate(db.sql);

  const stats = await outboxStats(db.sql);
  assert.deepEqual([stats.lastAckedSeq, stats.unacked, stats.queued], [2, 3, 0]);
  assert.ok(stats.lastAckAt instanceof Date);
  const rows = await pendingAfter(db.sql, {
    epoch: stats.epoch,
    afterSeq: 0,
    limit: 10,
    vesselId: "v",
  });
  assert.deepEqual(rows.map((r) => r.seq), [3, 4, 5]);
  // Retention: nothing acknowledged is older than 30 days.
  assert.equal(await pruneAcked(db.sql, 30, 100), 0);
  assert.equal(await pruneAcked(db.sql, 0, 100), 2);
});
