/**
 * Two-way sync at the data layer, both databases real: the vessel's record store and outbox,
 * the shore's writes and down outbox, each side's inbox applying the other's changes through
 * the merge. The MQTT transport between them is replaced by handing the claimed rows over.
 */
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import type { Sql } from "../../db/connection.ts";
import { Hlc } from "../../core/hlc.ts";
import { ENTITIES } from "../../core/entities.ts";
import { OutboxGate } from "../../core/outbox-gate.ts";
import type { Envelope } from "../../core/change.ts";
import { createRecordStore, type RecordStore } from "../../db/vessel/records.ts";
import { claimChanges } from "../../db/vessel/outbox.ts";
import { ingest } from "../../db/shore/inbox.ts";
import { createShoreWrites, type ShoreWriteStore } from "../../db/shore/writes.ts";
import { claimDownChanges } from "../../db/shore/down-outbox.ts";
import { ingestDown } from "../../db/vessel/down-inbox.ts";
import { canonical } from "../../sync/merge.ts";
import { toEnvelope } from "../../sync/protocol.ts";
import { freshDatabase } from "../support/pg.ts";

const HOUR = 3_600_000;

interface Sides {
  vesselId: string;
  /** Conflicts the shore's ingest reported (what its metrics count). */
  shoreConflicts: number;
  vessel: RecordStore;
  shore: ShoreWriteStore;
  vesselSql: Sql;
  shoreSql: Sql;
  vesselHlc: Hlc;
}

/** Hands up to `limit` of the vessel's unsent changes to the shore's inbox. */
async function up(s: Sides, limit = 1_000): Promise<number> {
  const rows = await claimChanges(s.vesselSql, limit, s.vesselId);
  if (rows.length === 0) return 0;
  const envelopes = rows.map((r) => JSON.parse(r.json) as Envelope);
  const result = await ingest(s.shoreSql, s.vesselId, rows[0]!.epoch, envelopes);
  s.shoreConflicts += result.conflicts;
  return rows.length;
}

/** Hands up to `limit` of the shore's unsent changes for the vessel to the vessel's inbox. */
async function down(s: Sides, limit = 1_000): Promise<number> {
  const rows = await claimDownChanges(s.shoreSql, s.vesselId, limit);
  if (rows.length === 0) return 0;
  await ingestDown(s.vesselSql, {
    vesselId: s.vesselId,
    epoch: rows[0]!.epoch,
    hlc: s.vesselHlc,
    changes: rows.map((r) => ({ ...toEnvelope(r, s.vesselId), sync: r.sync })),
  });
  return rows.length;
}

/** The records `ids` on one side, by entity and id, with their tombstones. */
async function snapshot(s: Sides, side: "vessel" | "shore", ids: string[]): Promise<string> {
  const out: Record<string, unknown> = {};
  for (const e of ENTITIES) {
    const rows = side === "vessel"
      ? await s.vesselSql`select id::text, data, deleted_at is not null as deleted
          from ${s.vesselSql(e)} where id = any(${ids}::uuid[])`
      : await s.shoreSql`select id::text, data, deleted_at is not null as deleted
          from shore_records
          where entity = ${e} and vessel_id = ${s.vesselId} and id = any(${ids}::uuid[])`;
    for (const r of rows) out[`${e}/${r.id}`] = { data: r.data, deleted: r.deleted };
  }
  return canonical(out);
}

async function conflictsOf(sql: Sql, vesselId: string): Promise<string[]> {
  const rows = await sql`select entity, record_id::text as "recordId", vessel_id as "vesselId",
    fields, vessel, shore, resolved, vessel_clock, shore_clock from conflicts
    where vessel_id = ${vesselId}`;
  return rows.map((r) => canonical(r)).sort();
}

/** Both databases, migrated; `sides` builds a fresh vessel on them for each history. */
async function databases() {
  const vesselDb = await freshDatabase();
  const shoreDb = await freshDatabase();
  return {
    vesselSql: vesselDb.sql,
    shoreSql: shoreDb.sql,
    async [Symbol.asyncDispose]() {
      await vesselDb[Symbol.asyncDispose]();
      await shoreDb[Symbol.asyncDispose]();
    },
  };
}

/**
 * A vessel id new to the shore, and a new epoch on board (so its seqs start at 1 again); each
 * side's clock with its own skew.
 */
async function sides(
  { vesselSql, shoreSql }: { vesselSql: Sql; shoreSql: Sql },
  skew: { vessel: number; shore: number },
): Promise<Sides> {
  await vesselSql`update vessel_state set epoch = gen_random_uuid(), last_seq = 0,
    published_seq = 0`;
  const vesselHlc = new Hlc({ origin: "vessel", now: () => Date.now() + skew.vessel });
  return {
    vesselId: `ship-${crypto.randomUUID().slice(0, 8)}`,
    shoreConflicts: 0,
    vesselSql,
    shoreSql,
    vesselHlc,
    vessel: createRecordStore({ sql: vesselSql, gate: new OutboxGate(1e6), hlc: vesselHlc }),
    shore: createShoreWrites({
      sql: shoreSql,
      hlc: new Hlc({ origin: "shore", now: () => Date.now() + skew.shore }),
    }),
  };
}

Deno.test("a same-field edit on both sides converges, with one identical conflict on each", async () => {
  await using dbs = await databases();
  const s = await sides(dbs, { vessel: 0, shore: 0 });
  const rec = await s.vessel.create("work_orders", { title: "Overhaul", equipmentId: "pump" });
  await up(s);
  await s.vessel.update("work_orders", rec.id, { status: "in_progress", priority: 2 });
  await s.shore.update(s.vesselId, "work_orders", rec.id, { status: "cancelled", assignedTo: "x" });
  await up(s);
  await down(s);
  assert.equal(await snapshot(s, "vessel", [rec.id]), await snapshot(s, "shore", [rec.id]));
  const [onBoard, ashore] = [
    await conflictsOf(s.vesselSql, s.vesselId),
    await conflictsOf(s.shoreSql, s.vesselId),
  ];
  assert.equal(onBoard.length, 1);
  assert.deepEqual(onBoard, ashore);
  assert.equal(s.shoreConflicts, 1, "the shore's ingest reports what it recorded");
  const held = await s.vessel.get("work_orders", rec.id);
  // Different fields both survive; the same field goes to the later (shore's) edit.
  assert.deepEqual([held?.status, held?.priority, held?.assignedTo], ["cancelled", 2, "x"]);
  assert.equal(held?.version, 3, "each side took in the same three changes");
  const [upRows] = await s.vesselSql`select count(*)::int as n from changes`;
  assert.equal(upRows!.n, 2, "the shore's change made no change on board to send back");
});

Deno.test("the same id created on both sides at once converges, creation time included", async () => {
  await using dbs = await databases();
  const s = await sides(dbs, { vessel: 0, shore: 0 });
  const id = crypto.randomUUID();
  await s.vessel.create("crew", { id, name: "Ada", rank: "Bosun" });
  // Later by a few milliseconds at least, so the two creation times differ.
  await new Promise((r) => setTimeout(r, 5));
  await s.shore.create(s.vesselId, "crew", { id, name: "Ada", role: "deck" });
  await up(s);
  await down(s);
  assert.equal(await snapshot(s, "vessel", [id]), await snapshot(s, "shore", [id]));
  const held = await s.vessel.get("crew", id);
  assert.deepEqual([held?.name, held?.rank, held?.role], ["Ada", undefined, "deck"]);
  const [row] = await s.vesselSql`select created_at from crew where id = ${id}`;
  assert.equal(row!.created_at.toISOString(), held?.createdAt);
  const onBoard = await conflictsOf(s.vesselSql, s.vesselId);
  assert.equal(onBoard.length, 1, "rank and role differ: one conflict of the two creates");
  assert.deepEqual(onBoard, await conflictsOf(s.shoreSql, s.vesselId));
});

type Op = {
  side: "vessel" | "shore";
  kind: "create" | "update" | "delete";
  pick: number;
  value: number;
} | {
  side: "up" | "down";
  count: number;
};

Deno.test("random two-way histories converge at the data layer, conflicts alike on both sides", async () => {
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({
      side: fc.constantFrom("vessel" as const, "shore" as const),
      kind: fc.constantFrom(
        "create" as const,
        "update" as const,
        "update" as const,
        "delete" as const,
      ),
      pick: fc.nat(),
      value: fc.integer({ min: 1, max: 3 }),
    }),
    fc.record({
      side: fc.constantFrom("up" as const, "down" as const),
      count: fc.integer({ min: 1, max: 4 }),
    }),
  );
  let conflictsSeen = 0;
  await using dbs = await databases();
  await fc.assert(
    fc.asyncProperty(
      fc.array(op, { minLength: 5, maxLength: 30 }),
      fc.integer({ min: -3 * HOUR, max: 3 * HOUR }),
      async (ops, skew) => {
        const s = await sides(dbs, { vessel: 0, shore: skew });
        const ids: string[] = [];
        for (const o of ops) {
          if ("count" in o) await (o.side === "up" ? up(s, o.count) : down(s, o.count));
          else if (o.kind === "create" || ids.length === 0) {
            const id = crypto.randomUUID();
            ids.push(id);
            if (o.side === "vessel") {
              await s.vessel.create("equipment", { id, name: `n${o.value}` });
            } else await s.shore.create(s.vesselId, "equipment", { id, name: `n${o.value}` });
          } else {
            const id = ids[o.pick % ids.length]!;
            // A record not (or no longer) on this side answers 404: the API's answer, skipped.
            try {
              if (o.side === "vessel") {
                if (o.kind === "delete") await s.vessel.remove("equipment", id);
                else {await s.vessel.update("equipment", id, {
                    runningHours: o.value,
                    location: `l${o.pick % 2}`,
                  });}
              } else {
                if (o.kind === "delete") await s.shore.remove(s.vesselId, "equipment", id);
                else {await s.shore.update(s.vesselId, "equipment", id, {
                    runningHours: o.value * 10,
                    type: `t${o.pick % 2}`,
                  });}
              }
            } catch (err) {
              if ((err as { status?: number }).status !== 404) throw err;
            }
          }
        }
        while ((await up(s)) + (await down(s)) > 0) { /* drain both ways */ }
        assert.equal(await snapshot(s, "vessel", ids), await snapshot(s, "shore", ids));
        const [onBoard, ashore] = [
          await conflictsOf(s.vesselSql, s.vesselId),
          await conflictsOf(s.shoreSql, s.vesselId),
        ];
        assert.deepEqual(onBoard, ashore);
        conflictsSeen += onBoard.length;
      },
    ),
    { numRuns: 40 },
  );
  assert.ok(conflictsSeen > 0, "the histories produced conflicts to compare");
});
