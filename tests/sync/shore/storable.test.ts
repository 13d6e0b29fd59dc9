/**
 * Validation accepts exactly what PostgreSQL stores: every value below is type-valid JSON that
 * zod's plain schemas accepted and the database refused (or silently changed), found by
 * sending each to a real PostgreSQL (docs/shore-isolation.md).
 */
import assert from "node:assert/strict";
import { startShoreRig } from "../../support/shore-rig.ts";
import { publishAll, SimulatedVessel, valueOf } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import { freshDatabase } from "../../support/pg.ts";
import { testApp } from "../../support/app.ts";
import { catchupRequestSchema, type Envelope } from "../../../sync/protocol.ts";

/**
 * Times that look like ISO 8601 but that timestamptz cannot store as sent: no year zero
 * (22008), also when an offset carries a time into it or past 9999. Offsets such as +23:59
 * (22009 when handed to PostgreSQL as sent) are valid ISO 8601: they are turned into UTC
 * (core/datetime.ts) before they reach the database, and accepted.
 */
export const HOSTILE_TIMES = [
  "0000-01-01T00:00:00Z",
  "0001-01-01T00:30:00+01:00", // year 0 in UTC
  "9999-12-31T23:30:00-01:00", // year 10000 in UTC
  "2026-02-30T00:00:00Z", // no such day
];

Deno.test("the shore refuses times PostgreSQL cannot store, in the record and the envelope, and the fleet goes on", async () => {
  await using rig = await startShoreRig();
  const { db, shore, pub } = rig;
  const hostile = new SimulatedVessel("vessel-hostile");
  const bad: Envelope[] = [];
  for (const t of HOSTILE_TIMES) {
    for (const field of ["createdAt", "updatedAt", "timestamp"] as const) {
      const e = hostile.create();
      if (field === "timestamp") e.timestamp = t;
      else e.data = { ...e.data, [field]: t };
      bad.push(e);
    }
  }
  const innocent = new SimulatedVessel("vessel-innocent");
  const good = [innocent.create(), innocent.create(), innocent.create()];
  await publishAll(pub, bad);
  await publishAll(pub, good);
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.applied) === good.length,
    "the innocent vessel's changes are applied",
  );
  const malformed = (await valueOf(shore.metrics.shore.malformed, { reason: "invalid_record" })) +
    (await valueOf(shore.metrics.shore.malformed, { reason: "invalid_envelope" }));
  assert.equal(malformed, bad.length);
  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from shore_inbox where vessel_id = ${hostile.vesselId}`;
  assert.equal(row!.n, 0);
});

Deno.test("the vessel's API refuses the same times with 400, never 500", async () => {
  await using db = await freshDatabase();
  const { call } = await testApp(db.sql);
  for (const t of HOSTILE_TIMES) {
    const wo = await call("POST", "/api/work_orders", { title: "t", equipmentId: "e", dueAt: t });
    assert.equal(wo.status, 400, `dueAt ${t}`);
    await wo.body?.cancel();
    const ms = await call("POST", "/api/maintenance_schedules", {
      equipmentId: "e",
      task: "t",
      intervalHours: 10,
      lastDoneAt: t,
    });
    assert.equal(ms.status, 400, `lastDoneAt ${t}`);
    await ms.body?.cancel();
    // POST /catchup and the shore's requests share this schema (the route needs a broker).
    assert.equal(catchupRequestSchema.safeParse({ since: t }).success, false, `since ${t}`);
  }
  const ok = await call("POST", "/api/work_orders", {
    title: "t",
    equipmentId: "e",
    dueAt: "2026-01-01T00:00:00.123456+23:59",
  });
  assert.equal(ok.status, 201);
  assert.equal((await ok.json()).dueAt, "2025-12-31T00:01:00.123Z");
});
