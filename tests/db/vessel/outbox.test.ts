import assert from "node:assert/strict";
import { freshDatabase } from "../../support/pg.ts";
import { createAwkwardRecords } from "../../support/awkward.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import { createRecordStore } from "../../../db/vessel/records.ts";
import {
  changesSince,
  claimChanges,
  pendingAfter,
  vesselState,
} from "../../../db/vessel/outbox.ts";
import { migrate, MIGRATIONS } from "../../../db/migrations.ts";
import { type ChangeRow, envelopeSchema, toEnvelope } from "../../../sync/protocol.ts";
import { deriveMessageId } from "../../../sync/message-id.ts";
import { decodeFrame, encodeFrame } from "../../../sync/frame.ts";

Deno.test("the envelope PostgreSQL builds for a claimed or re-read row parses to toEnvelope's, key for key", async () => {
  await using db = await freshDatabase();
  const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  await createAwkwardRecords(store);
  for (let i = 0; i < 40; i++) await store.create("crew", { name: `c${i}` });
  // Sub-millisecond parts (a JS Date truncates them), the epoch, and years before 2000.
  await db.sql`update changes set changed_at = case
    when id % 3 = 0 then timestamptz '1970-01-01 00:00:00.000999+00' + id * interval '1.000999 s'
    when id % 3 = 1 then timestamptz '1999-12-31 23:59:59.999999+00'
    else changed_at + interval '0.000123 s' end`;

  const claimed = await claimChanges(db.sql, 100, "vessel-1");
  assert.equal(claimed.length, 42);
  const { epoch } = await vesselState(db.sql);
  const reread = await pendingAfter(db.sql, {
    epoch,
    afterSeq: 0,
    limit: 100,
    vesselId: "vessel-1",
  });
  const rows = await db.sql<ChangeRow[]>`
    select entity, operation, data, changed_at, message_id, epoch::text as epoch, seq, sync
    from changes order by seq`;
  const expected = rows.map((r) =>
    toEnvelope(
      { ...r, message_id: r.message_id ?? deriveMessageId("vessel-1", epoch, r.seq!) },
      "vessel-1",
    )
  );
  for (const built of [claimed, reread]) {
    const parsed = built.map((r) => JSON.parse(r.json));
    assert.deepEqual(parsed, expected);
    assert.deepEqual(parsed.map((e) => Object.keys(e)), expected.map((e) => Object.keys(e)));
    for (const e of parsed) assert.equal(envelopeSchema.safeParse(e).success, true);
  }
  assert.deepEqual(claimed.map((r) => [r.seq, r.epoch]), rows.map((r) => [r.seq, epoch]));
});

Deno.test("a claimed change gets the messageId deriveMessageId gives, so frames need not carry it", async () => {
  await using db = await freshDatabase();
  const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 5; i++) await store.create("crew", { name: `c${i}` });
  const vesselId = "mv-ü_1"; // non-ASCII: both sides hash UTF-8
  const claimed = await claimChanges(db.sql, 100, vesselId);
  const { epoch } = await vesselState(db.sql);
  assert.equal(claimed.length, 5);
  for (const row of claimed) {
    assert.equal(JSON.parse(row.json).messageId, deriveMessageId(vesselId, epoch, row.seq));
  }
});

Deno.test("a change keeps its messageId across the upgrade that stopped storing it, in every read", async () => {
  await using db = await freshDatabase({ migrated: false });
  const vesselId = "vessel-1";
  await migrate(db.sql, MIGRATIONS.filter((m) => m.version < 13));
  const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  for (let i = 0; i < 4; i++) await store.create("crew", { name: `c${i}` });
  // Claimed by older versions: seq 1 before messageIds were derived (random, stored), seq 2
  // after (derived, stored); ids 3 and 4 not yet claimed.
  const random = crypto.randomUUID();
  const [state] = await db.sql<{ epoch: string }[]>`select epoch::text from vessel_state`;
  const epoch = state!.epoch;
  const derived2 = deriveMessageId(vesselId, epoch, 2);
  await db.sql`update changes set epoch = ${epoch}, seq = id,
    message_id = case id when 1 then ${random}::uuid else ${derived2}::uuid end where id <= 2`;
  await db.sql`update vessel_state set last_seq = 2`;
  await migrate(db.sql);

  const claimed = await claimChanges(db.sql, 10, vesselId);
  assert.deepEqual(claimed.map((r) => r.seq), [3, 4]);
  const want = [
    random,
    derived2,
    deriveMessageId(vesselId, epoch, 3),
    deriveMessageId(vesselId, epoch, 4),
  ];
  const ids = (rows: { json: string }[]) => rows.map((r) => JSON.parse(r.json).messageId);
  assert.deepEqual(ids(claimed), want.slice(2));
  const reread = await pendingAfter(db.sql, { epoch, afterSeq: 0, limit: 10, vesselId });
  assert.deepEqual(ids(reread), want);
  const caughtUp = await changesSince(db.sql, { since: 0, limit: 10, vesselId });
  assert.deepEqual(caughtUp.map((r) => r.message_id), want);

  // Read for frames, a derived id is left out (computed by neither side of the vessel), a stored
  // one travels, and shore decodes every one as messages mode would send it.
  const forFrames = await pendingAfter(db.sql, {
    epoch,
    afterSeq: 0,
    limit: 10,
    vesselId,
    forFrames: true,
  });
  assert.deepEqual(ids(forFrames), [random, derived2, undefined, undefined]);
  const decoded = decodeFrame(encodeFrame(forFrames.map((r) => JSON.parse(r.json))));
  assert.ok(decoded.ok);
  assert.deepEqual(decoded.envelopes, reread.map((r) => JSON.parse(r.json)));
});
