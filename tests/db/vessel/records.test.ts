/**
 * One data-layer suite, run against both backends bosun supports: a real PostgreSQL and the
 * embedded PGlite (as the MQTT.js store tests run one suite against every store).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { openDatabase, type Sql } from "../../../db/connection.ts";
import { migrate, MIGRATIONS } from "../../../db/migrations.ts";
import { createRecordStore } from "../../../db/vessel/records.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import { OutboxFullError, toHttpError } from "../../../core/errors.ts";
import { silentLogger } from "../../../core/log.ts";
import { freshDatabase } from "../../support/pg.ts";

interface ChangeRow {
  operation: string;
  record_id: string;
  data: Record<string, unknown>;
  xmin: string;
  priority: number;
  seq: number | null;
}

async function changesOf(sql: Sql, id: string): Promise<ChangeRow[]> {
  return await sql<ChangeRow[]>`
    select operation, record_id::text, data, xmin::text, priority, seq
    from changes where record_id = ${id} order by id`;
}

async function xminOf(sql: Sql, table: string, id: string): Promise<string | undefined> {
  const [row] = await sql<{ xmin: string }[]>`
    select xmin::text from ${sql(table)} where id = ${id}`;
  return row?.xmin;
}

async function changeCount(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int8 as n from changes`;
  return row!.n;
}

/** The shared suite; `sql` is a migrated database of the backend under test. */
async function dataLayerSuite(t: Deno.TestContext, sql: Sql): Promise<void> {
  const gate = new OutboxGate(1_000_000);
  const store = createRecordStore({ sql, gate });

  await t.step("create writes the record and one create change in its transaction", async () => {
    const rec = await store.create("work_orders", { title: "Fix pump", equipmentId: "p-1" });
    assert.equal(rec.version, 1);
    const changes = await changesOf(sql, rec.id);
    assert.equal(changes.length, 1);
    assert.equal(changes[0]!.operation, "create");
    assert.deepEqual(changes[0]!.data, rec);
    assert.equal(changes[0]!.seq, null, "seq is assigned by the publisher, not the writer");
    assert.equal(changes[0]!.xmin, await xminOf(sql, "work_orders", rec.id));
    assert.deepEqual(await store.get("work_orders", rec.id), rec);
  });

  await t.step("update writes one update change in its transaction", async () => {
    const rec = await store.create("equipment", { name: "Pump", runningHours: 10 });
    const updated = await store.update("equipment", rec.id, { runningHours: 11, type: null });
    assert.equal(updated.version, 2);
    assert.equal(updated.runningHours, 11);
    assert.equal("type" in updated, false, "null removes a field");
    const changes = await changesOf(sql, rec.id);
    assert.deepEqual(changes.map((c) => c.operation), ["create", "update"]);
    assert.deepEqual(changes[1]!.data, updated);
    assert.equal(changes[1]!.xmin, await xminOf(sql, "equipment", rec.id));
    assert.deepEqual(await store.get("equipment", rec.id), updated);
  });

  await t.step("delete tombstones the record and writes one delete change", async () => {
    const rec = await store.create("crew", { name: "Ada" });
    await store.remove("crew", rec.id);
    assert.equal(await store.get("crew", rec.id), undefined);
    const changes = await changesOf(sql, rec.id);
    assert.deepEqual(changes.map((c) => c.operation), ["create", "delete"]);
    assert.equal(changes[1]!.data.version, 2);
    assert.equal(changes[1]!.xmin, await xminOf(sql, "crew", rec.id));
    const [row] = await sql`select deleted_at from crew where id = ${rec.id}`;
    assert.ok(row!.deleted_at instanceof Date);
  });

  await t.step("alerts are written with the higher priority (0)", async () => {
    const rec = await store.create("alerts", {
      equipmentId: "e",
      severity: "critical",
      message: "Fire",
    });
    assert.equal((await changesOf(sql, rec.id))[0]!.priority, 0);
  });

  await t.step("a duplicate id fails with a 409 and writes no change", async () => {
    const id = crypto.randomUUID();
    await store.create("maintenance_schedules", {
      id,
      equipmentId: "e",
      task: "t",
      intervalHours: 5,
    });
    const before = await changeCount(sql);
    const pending = gate.pending;
    await assert.rejects(
      store.create("maintenance_schedules", { id, equipmentId: "e", task: "x", intervalHours: 1 }),
      (err: unknown) => toHttpError(err)?.status === 409,
    );
    assert.equal(await changeCount(sql), before);
    assert.equal(gate.pending, pending, "a failed write is not counted against the outbox");
    assert.equal((await store.get("maintenance_schedules", id))!.task, "t");
  });

  await t.step("a stale or missing update writes no change", async () => {
    const rec = await store.create("crew", { name: "Bo" });
    await store.update("crew", rec.id, { rank: "AB" }, 1);
    const before = await changeCount(sql);
    await assert.rejects(store.update("crew", rec.id, { rank: "OS" }, 1), { status: 412 });
    await assert.rejects(store.remove("crew", rec.id, 1), { status: 412 });
    await assert.rejects(store.update("crew", crypto.randomUUID(), { rank: "OS" }), {
      status: 404,
    });
    await store.remove("crew", rec.id);
    const after = await changeCount(sql);
    assert.equal(after, before + 1, "only the successful delete wrote a change");
    await assert.rejects(store.update("crew", rec.id, { rank: "OS" }), { status: 404 });
    await assert.rejects(store.remove("crew", rec.id), { status: 404 });
    assert.equal(await changeCount(sql), after);
  });

  await t.step("a full outbox refuses writes before touching the database", async () => {
    const full = new OutboxGate(0);
    const refusing = createRecordStore({ sql, gate: full });
    const before = await changeCount(sql);
    await assert.rejects(
      refusing.create("crew", { name: "Cy" }),
      (err: unknown) => err instanceof OutboxFullError && err.status === 503,
    );
    assert.equal(await changeCount(sql), before);
  });

  await t.step("list pages through every live record once, in creation order", async () => {
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      made.push((await store.create("work_orders", { title: `wo ${i}`, equipmentId: "x" })).id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list("work_orders", { limit: 3, cursor });
      assert.ok(page.items.length <= 3);
      seen.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    for (const id of made) assert.equal(seen.filter((s) => s === id).length, 1);
    assert.equal(new Set(seen).size, seen.length);
  });

  await t.step("migrate is idempotent: a second run applies nothing", async () => {
    assert.deepEqual(await migrate(sql), []);
    const rows = await sql`select version from schema_migrations order by version`;
    assert.deepEqual(rows.map((r) => r.version), MIGRATIONS.map((m) => m.version));
  });

  await t.step("concurrent migrate calls apply a new migration exactly once", async () => {
    // The probe fails if run twice (no "if not exists"), so a double apply would reject.
    const probe = [...MIGRATIONS, {
      version: 9001,
      name: "probe",
      sql: "create table migration_probe (n int); insert into migration_probe values (1);",
    }];
    const results = await Promise.all([migrate(sql, probe), migrate(sql, probe)]);
    assert.deepEqual(results.flat(), [9001]);
    const rows = await sql`select n from migration_probe`;
    assert.equal(rows.length, 1);
  });
}

Deno.test("data layer on PostgreSQL", async (t) => {
  await using db = await freshDatabase();
  await dataLayerSuite(t, db.sql);
});

Deno.test("data layer on embedded PGlite", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-pglite-" });
  const db = await openDatabase({ url: undefined, dataDir, log: silentLogger });
  try {
    assert.equal(db.kind, "pglite");
    assert.deepEqual(await migrate(db.sql), MIGRATIONS.map((m) => m.version));
    await dataLayerSuite(t, db.sql);
  } finally {
    await db.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("two processes migrating one empty PostgreSQL at once apply each migration once", async () => {
  await using db = await freshDatabase({ migrated: false });
  // Two separate clients, as two gateways starting together would have.
  const a = postgres(db.url, { max: 1, onnotice: () => {} });
  const b = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const [ra, rb] = await Promise.all([
      migrate(a as unknown as Sql),
      migrate(b as unknown as Sql),
    ]);
    assert.deepEqual([...ra, ...rb].sort((x, y) => x - y), MIGRATIONS.map((m) => m.version));
    const rows = await db.sql`select count(*)::int as n from vessel_state`;
    assert.equal(rows[0]!.n, 1, "the singleton row was inserted once");
  } finally {
    await a.end();
    await b.end();
  }
});

Deno.test("concurrent updates of one record each merge over the last: versions and clocks follow change order", async () => {
  await using db = await freshDatabase();
  const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(1_000) });
  const rec = await store.create("work_orders", { title: "t", equipmentId: "e" });
  const fields = ["priority", "assignedTo", "description"] as const;
  await Promise.all(Array.from({ length: 24 }, (_, i) => {
    const field = fields[i % 3]!;
    return store.update("work_orders", rec.id, {
      [field]: field === "priority" ? (i % 5) + 1 : `v${i}`,
    });
  }));
  const rows = await db.sql<{ data: { version: number }; sync: { clock: string } }[]>`
    select data, sync from changes where record_id = ${rec.id} order by id`;
  assert.deepEqual(rows.map((r) => r.data.version), rows.map((_, i) => i + 1));
  const clocks = rows.map((r) => r.sync.clock);
  assert.deepEqual(clocks, [...clocks].sort());
  assert.equal(new Set(clocks).size, clocks.length);
  const held = await store.get("work_orders", rec.id);
  assert.equal(held?.version, 25);
  assert.deepEqual(held, rows.at(-1)!.data, "the record is its last change's data");
});
