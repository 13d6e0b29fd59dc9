/**
 * Group commit of creates: creates queued behind a running statement are written together,
 * each with its change row in the same transaction, and a batch PostgreSQL refuses falls back
 * to one statement per create so that each caller gets its own outcome.
 */
import assert from "node:assert/strict";
import { createRecordStore } from "../../../db/vessel/records.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import { toHttpError } from "../../../core/errors.ts";
import { freshDatabase } from "../../support/pg.ts";

Deno.test("creates queued behind a running one commit together, each with its change", async () => {
  await using db = await freshDatabase();
  const gate = new OutboxGate(1_000_000);
  // One statement at a time: the first create runs alone, the other 20 queue into one batch.
  const store = createRecordStore({ sql: db.sql, gate, createsInFlight: 1 });
  const made = await Promise.all(
    Array.from(
      { length: 21 },
      (_, i) =>
        i % 3 === 0
          ? store.create("alerts", { equipmentId: "e-1", severity: "warning", message: `m${i}` })
          : store.create("work_orders", { title: `t${i}`, equipmentId: "e-1" }),
    ),
  );
  const rows = await db.sql<{ id: string; xmin: string; data: unknown; priority: number }[]>`
    select c.record_id::text as id, c.xmin::text, c.data, c.priority from changes c order by c.id`;
  assert.equal(rows.length, 21);
  assert.equal(gate.pending, 21);
  const byId = new Map(rows.map((r) => [r.id, r]));
  const xmins = new Set<string>();
  for (const rec of made) {
    const change = byId.get(rec.id)!;
    assert.deepEqual(change.data, rec, "the change carries the record as the API returned it");
    const entity = "severity" in rec ? "alerts" : "work_orders";
    assert.equal(change.priority, entity === "alerts" ? 0 : 1);
    const [stored] = await db.sql<{ data: unknown; xmin: string }[]>`
      select data, xmin::text from ${db.sql(entity)} where id = ${rec.id}`;
    assert.deepEqual(stored!.data, rec);
    assert.equal(stored!.xmin, change.xmin, "record and change in one transaction");
    xmins.add(change.xmin);
  }
  assert.equal(xmins.size, 2, "the lone first create, then one transaction for the other 20");
});

Deno.test("a duplicate id in a batch gives that create 409 and commits the others", async () => {
  await using db = await freshDatabase();
  const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(1_000_000) });
  const taken = await store.create("equipment", { name: "Pump" });
  const single = createRecordStore({
    sql: db.sql,
    gate: new OutboxGate(1_000_000),
    createsInFlight: 1,
  });
  const outcomes = await Promise.allSettled([
    single.create("equipment", { name: "Winch" }),
    single.create("equipment", { name: "Crane" }),
    single.create("equipment", { id: taken.id, name: "Pump again" }),
    single.create("equipment", { name: "Davit" }),
  ]);
  assert.deepEqual(outcomes.map((o) => o.status), [
    "fulfilled",
    "fulfilled",
    "rejected",
    "fulfilled",
  ]);
  assert.equal(toHttpError((outcomes[2] as PromiseRejectedResult).reason)?.status, 409);
  const names = await db.sql<{ name: string }[]>`
    select data->>'name' as name from changes order by id`;
  assert.deepEqual(names.map((r) => r.name).sort(), ["Crane", "Davit", "Pump", "Winch"]);
  const [count] = await db.sql<{ n: number }[]>`select count(*)::int8 as n from equipment`;
  assert.equal(count!.n, 4, "no record without its change, no change without its record");
});
