/**
 * The inbox's fast path (db/shore/inbox.ts): a batch that continues the position is applied
 * from memory and its rows written applied, without their envelopes; everything else takes the
 * general path. These are its edges, driven through `ingest` directly.
 */
import assert from "node:assert/strict";
import { ingest } from "../../../db/shore/inbox.ts";
import type { Sql } from "../../../db/connection.ts";
import { freshDatabase } from "../../support/pg.ts";
import { SimulatedVessel } from "../../support/fleet.ts";
import { refusePoison } from "../../support/poison.ts";

interface InboxRow {
  seq: number;
  applied: boolean;
  envelope: boolean;
  changed: boolean;
}

/** The vessel's inbox rows: applied or waiting, with an envelope or not, with a change time. */
const inbox = async (sql: Sql, v: SimulatedVessel) => [
  ...await sql<InboxRow[]>`
    select seq::int, applied_at is not null as applied, envelope is not null as envelope,
      changed_at is not null as changed
    from shore_inbox where vessel_id = ${v.vesselId} and epoch = ${v.epoch} order by seq`,
];

const position = async (sql: Sql, v: SimulatedVessel) => {
  const [row] = await sql<{ last_seq: number; applied_count: number }[]>`
    select last_seq::int, applied_count::int from shore_positions
    where vessel_id = ${v.vesselId} and epoch = ${v.epoch}`;
  return row;
};

/** Record versions held ashore, by id. */
const versions = async (sql: Sql, v: SimulatedVessel) =>
  new Map(
    (await sql<{ id: string; version: number }[]>`
      select id::text, version from shore_records where vessel_id = ${v.vesselId}`)
      .map((r) => [r.id, r.version]),
  );

const seqs = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test("a frame that overlaps the position applies only what is new, once", async () => {
  await using db = await freshDatabase();
  const v = new SimulatedVessel("vessel-overlap");
  const changes = seqs(1, 8).map(() => v.create());

  const first = await ingest(db.sql, v.vesselId, v.epoch, changes.slice(0, 5));
  assert.deepEqual([first.applied, first.duplicates, first.lastSeq], [5, 0, 5]);
  const second = await ingest(db.sql, v.vesselId, v.epoch, changes.slice(2, 8));
  assert.deepEqual([second.applied, second.duplicates, second.lastSeq], [3, 3, 8]);
  assert.equal(second.waiting, false);
  assert.deepEqual(second.forgeries, []);

  assert.deepEqual(await position(db.sql, v), { last_seq: 8, applied_count: 8 });
  assert.deepEqual(
    await inbox(db.sql, v),
    seqs(1, 8).map((seq) => ({ seq, applied: true, envelope: false, changed: true })),
  );
  assert.equal((await versions(db.sql, v)).size, 8);
});

Deno.test("a frame past a gap waits with its envelopes, and the frame filling the gap applies both", async (t) => {
  await using db = await freshDatabase();
  const v = new SimulatedVessel("vessel-gap");
  const create = v.create();
  const key = `work_orders/${create.data.id}`;
  const changes = [create, ...seqs(2, 8).map(() => v.update(key))];

  await t.step("seqs 1-3 continue the position", async () => {
    const r = await ingest(db.sql, v.vesselId, v.epoch, changes.slice(0, 3));
    assert.deepEqual([r.applied, r.lastSeq, r.waiting], [3, 3, false]);
  });

  await t.step("seqs 6-8 wait past the gap, envelopes kept", async () => {
    const r = await ingest(db.sql, v.vesselId, v.epoch, changes.slice(5, 8));
    assert.deepEqual([r.applied, r.lastSeq, r.waiting], [0, 3, true]);
    const waiting = (await inbox(db.sql, v)).filter((row) => !row.applied);
    assert.deepEqual(
      waiting,
      seqs(6, 8).map((seq) => ({ seq, applied: false, envelope: true, changed: true })),
    );
    assert.equal((await versions(db.sql, v)).get(String(create.data.id)), 3);
  });

  await t.step(
    "seqs 4-5 fill it: applied from memory, then 6-8 from the inbox, in order",
    async () => {
      const r = await ingest(db.sql, v.vesselId, v.epoch, changes.slice(3, 5));
      assert.deepEqual([r.applied, r.duplicates, r.lastSeq, r.waiting], [5, 0, 8, false]);
      assert.deepEqual(await position(db.sql, v), { last_seq: 8, applied_count: 8 });
      const rows = await inbox(db.sql, v);
      assert.ok(rows.every((row) => row.applied), "every row is applied");
      assert.deepEqual(rows.filter((row) => row.envelope).map((row) => row.seq), [6, 7, 8]);
      assert.equal((await versions(db.sql, v)).get(String(create.data.id)), 8);
    },
  );
});

Deno.test("a frame whose head reaches a waiting seq takes the general path and applies it once", async () => {
  await using db = await freshDatabase();
  const v = new SimulatedVessel("vessel-head");
  const changes = seqs(1, 4).map(() => v.create());
  await ingest(db.sql, v.vesselId, v.epoch, [changes[0]!]);
  const parked = await ingest(db.sql, v.vesselId, v.epoch, [changes[2]!]);
  assert.equal(parked.waiting, true);

  // Seqs 2-4: seq 3 is held waiting under the same messageId, a re-delivery.
  const r = await ingest(db.sql, v.vesselId, v.epoch, changes.slice(1));
  assert.deepEqual([r.applied, r.duplicates, r.lastSeq, r.waiting], [3, 1, 4, false]);
  assert.deepEqual(r.forgeries, []);
  assert.deepEqual(await position(db.sql, v), { last_seq: 4, applied_count: 4 });
  assert.equal((await versions(db.sql, v)).size, 4);
});

Deno.test("two concurrent ingests of one frame apply it once", async () => {
  await using db = await freshDatabase();
  const v = new SimulatedVessel("vessel-twice");
  const frame = seqs(1, 200).map(() => v.create());
  const overlapping = [...frame.slice(150), ...seqs(201, 250).map(() => v.create())];

  const results = await Promise.all([
    ingest(db.sql, v.vesselId, v.epoch, frame),
    ingest(db.sql, v.vesselId, v.epoch, frame),
    ingest(db.sql, v.vesselId, v.epoch, overlapping),
  ]);
  const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((n, r) => n + f(r), 0);
  assert.equal(sum((r) => r.applied), 250);
  assert.equal(sum((r) => r.applied + r.duplicates), 200 + 200 + 100);
  assert.equal(sum((r) => r.forgeries.length), 0);
  assert.deepEqual(await position(db.sql, v), { last_seq: 250, applied_count: 250 });
  assert.equal((await inbox(db.sql, v)).length, 250);
  assert.equal((await versions(db.sql, v)).size, 250);
});

Deno.test("a forged re-send of a seq applied by the fast path is refused by its messageId", async () => {
  await using db = await freshDatabase();
  const v = new SimulatedVessel("vessel-forged");
  const changes = seqs(1, 3).map(() => v.create());
  await ingest(db.sql, v.vesselId, v.epoch, changes);

  const forged = { ...changes[1]!, messageId: crypto.randomUUID(), data: { ...changes[1]!.data } };
  const r = await ingest(db.sql, v.vesselId, v.epoch, [forged]);
  assert.deepEqual(r.forgeries, [
    { seq: 2, kept: changes[1]!.messageId, refused: forged.messageId },
  ]);
  assert.equal(r.duplicates, 0);
  assert.equal(r.applied, 0);
});

Deno.test("a poison change in a frame that continues the position is dead-lettered alone", async () => {
  await using db = await freshDatabase();
  await refusePoison(db.sql);
  const v = new SimulatedVessel("vessel-poison-head");
  const changes = seqs(1, 5).map(() => v.create());
  changes[2]!.data = { ...changes[2]!.data, title: "poison" };

  const r = await ingest(db.sql, v.vesselId, v.epoch, changes);
  assert.deepEqual([r.applied, r.lastSeq, r.waiting], [4, 5, false]);
  assert.deepEqual(r.deadLettered.map((d) => d.seq), [3]);
  assert.deepEqual(await position(db.sql, v), { last_seq: 5, applied_count: 4 });
  const held = await versions(db.sql, v);
  assert.equal(held.size, 4);
  assert.equal(held.has(String(changes[2]!.data.id)), false);

  // The next frame continues past the dead letter on the fast path.
  const next = await ingest(db.sql, v.vesselId, v.epoch, [v.create(), v.create()]);
  assert.deepEqual([next.applied, next.lastSeq], [2, 7]);
  assert.deepEqual((await inbox(db.sql, v)).filter((row) => row.seq > 5), [
    { seq: 6, applied: true, envelope: false, changed: true },
    { seq: 7, applied: true, envelope: false, changed: true },
  ]);
});
