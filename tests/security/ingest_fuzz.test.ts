/**
 * Shore-side ingest fuzzing (fast-check): several hostile vessel identities at once send
 * type-valid but database-hostile values and abuse the sequence (far seqs, 2^53 - 1, random
 * epochs, reused seqs under new messageIds, gaps never filled, poison the database refuses),
 * while an innocent vessel writes its changes in the same stream.
 *
 * Properties: every change of the innocent vessel is applied (its position reaches its last
 * seq, every record is there), nothing of it is dead-lettered, refused, counted as a forgery
 * or left waiting; and the shore is still taking changes after it all.
 *
 * `FUZZ_RUNS` (default 600) sets the number of hostile messages; `FUZZ_SEED` (printed at every
 * run) regenerates the same ones.
 */
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import { startShoreRig } from "../support/shore-rig.ts";
import { publishAll, SimulatedVessel, topicOf, valueOf } from "../support/fleet.ts";
import { waitUntil } from "../support/wait.ts";
import { listVessels } from "../../db/shore/fleet.ts";
import type { Envelope } from "../../sync/protocol.ts";
import { refusePoison } from "../support/poison.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 600);
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const HOSTILE = ["fuzz-h1", "fuzz-h2", "fuzz-h3"];
const INNOCENT = 200;

/** Values of the right JSON type that PostgreSQL refuses or that sit at its limits. */
const hostileTime = fc.constantFrom(
  "2026-01-01T00:00:00+23:59",
  "0000-01-01T00:00:00Z",
  "0001-01-01T00:00:00+15:00",
  "9999-12-31T23:59:59.9999999-15:00",
  "2026-01-01T00:00:00.123456789Z",
);
const hostileText = fc.constantFrom(
  "a\u0000b",
  "\ud800",
  "x\udfffy",
  "x".repeat(10_001),
  "",
);
const hostileNumber = fc.constantFrom(2 ** 31, -1, 0, 1e308, Number.MAX_SAFE_INTEGER, 0.5);

/**
 * A mutation of a fresh envelope. Only `inStream` ones take the hostile vessel's next seq:
 * the others (refused at the edge, or given a seq of their own) are made from a shadow of it,
 * so its real stream stays contiguous and its poison reaches the database.
 */
type Mutation = ((e: Envelope) => Envelope) & { inStream?: true };
const inStream = (m: (e: Envelope) => Envelope): Mutation =>
  Object.assign(m, { inStream: true as const });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  hostileTime.map((t): Mutation => (e) => ({ ...e, data: { ...e.data, createdAt: t } })),
  hostileTime.map((t): Mutation => (e) => ({ ...e, timestamp: t })),
  hostileText.map((s): Mutation => (e) => ({ ...e, data: { ...e.data, title: s } })),
  hostileNumber.map((n): Mutation => (e) => ({ ...e, data: { ...e.data, version: n } })),
  hostileNumber.map((n): Mutation => (e) => ({ ...e, data: { ...e.data, priority: n } })),
  fc.integer({ min: 1, max: 12 }).map((d): Mutation => (e) => {
    let deep: unknown = "x";
    for (let i = 0; i < d * 100; i++) deep = [deep];
    return { ...e, data: { ...e.data, description: deep } };
  }),
  // Sequence abuse.
  fc.constant<Mutation>((e) => ({ ...e, seq: Number.MAX_SAFE_INTEGER })),
  fc.integer({ min: 100_001, max: 2 ** 40 }).map((s): Mutation => (e) => ({ ...e, seq: s })),
  fc.integer({ min: 2, max: 99_999 }).map((s): Mutation => (e) => ({ ...e, seq: s })),
  fc.constant<Mutation>((e) => ({ ...e, epoch: crypto.randomUUID() })),
  fc.constant<Mutation>((e) => ({ ...e, messageId: crypto.randomUUID(), seq: 1 })),
  // Passes validation, refused by the database (stand-in: tests/sync/shore/dead_letters.test.ts).
  fc.constant(inStream((e) => ({ ...e, data: { ...e.data, title: "poison" } }))),
  fc.constant(inStream((e) => e)),
  fc.integer({ min: 2, max: 5 }).map((d): Mutation => (e) => ({ ...e, seq: e.seq + d })),
);

Deno.test(`an innocent vessel's changes are all applied while ${HOSTILE.length} vessels attack the shore (seed ${SEED})`, async () => {
  console.log(`FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);
  await using rig = await startShoreRig({ concurrency: 4 });
  const { db, shore, pub } = rig;
  await refusePoison(db.sql);
  const hostile = HOSTILE.map((id) => new SimulatedVessel(id));
  const shadows = hostile.map((v) => new SimulatedVessel(v.vesselId, v.epoch));
  const plan = fc.sample(
    fc.tuple(fc.integer({ min: 0, max: HOSTILE.length - 1 }), mutation),
    { numRuns: RUNS, seed: SEED },
  );
  const attack = plan.map(([i, mutate]) =>
    mutate(mutate.inStream ? hostile[i]!.create() : shadows[i]!.create())
  );

  const innocent = new SimulatedVessel("fuzz-innocent");
  const own = Array.from(
    { length: INNOCENT },
    (_, i) => i % 4 === 3 ? innocent.mixed() : innocent.create(),
  );
  // Interleaved: every hostile message has innocent ones around it on the same connection.
  const every = Math.max(1, Math.floor(attack.length / own.length));
  const stream: Envelope[] = [];
  for (let i = 0, j = 0; i < attack.length || j < own.length; i += every, j++) {
    stream.push(...attack.slice(i, i + every));
    if (j < own.length) stream.push(own[j]!);
  }
  await Promise.all(stream.map((e) => pub.publishAsync(topicOf(e), JSON.stringify(e), { qos: 1 })));

  const position = async () => {
    const [row] = await db.sql<{ last_seq: number }[]>`
      select last_seq from shore_positions
      where vessel_id = ${innocent.vesselId} and epoch = ${innocent.epoch}`;
    return Number(row?.last_seq ?? 0);
  };
  await waitUntil(
    async () => await position() === INNOCENT,
    `the innocent vessel's ${INNOCENT} changes are applied`,
    120_000,
  );
  const [view] = (await listVessels(db.sql)).filter((v) => v.vesselId === innocent.vesselId);
  assert.equal(view!.deadLetters, 0);
  assert.equal(view!.forgeries, 0);
  assert.equal(view!.gaps, 0);
  const held = await db.sql<{ entity: string; id: string; version: number; deleted: boolean }[]>`
    select entity, id::text, version, deleted_at is not null as deleted from shore_records
    where vessel_id = ${innocent.vesselId} and deleted_at is null`;
  const live = [...innocent.records.values()];
  assert.equal(held.length, live.length);
  for (const { entity, record } of live) {
    const row = held.find((r) => r.entity === entity && r.id === record.id);
    assert.equal(row?.version, record.version, `${entity}/${record.id}`);
  }
  const refusedByShore = await db.sql`
    select 1 from shore_dead_letters where vessel_id = ${innocent.vesselId}`;
  assert.equal(refusedByShore.length, 0);

  // And the shore still takes changes after the attack.
  const after = innocent.create();
  await publishAll(pub, [after]);
  await waitUntil(async () => await position() === INNOCENT + 1, "a change after the attack");
  console.log(
    `hostile ${attack.length}, counted by the time the innocent vessel was done: dead letters ${await valueOf(
      shore.metrics.shore.deadLetters,
      {
        reason: "22023",
      },
    )}, ` +
      `forgeries ${await valueOf(shore.metrics.shore.forgeries)}, ` +
      `refused seq_window ${await valueOf(shore.metrics.shore.refused, {
        reason: "seq_window",
      })} ` +
      `epoch_limit ${await valueOf(shore.metrics.shore.refused, { reason: "epoch_limit" })}`,
  );
});
