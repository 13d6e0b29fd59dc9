import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { testApp } from "../support/app.ts";

Deno.test("the API takes date-times in any zone and returns them in UTC", async (t) => {
  await using db = await freshDatabase();
  const { call } = await testApp(db.sql);

  await t.step("create and patch normalise to UTC, stored so too", async () => {
    const res = await call("POST", "/api/work_orders", {
      title: "Overhaul",
      equipmentId: "gen-1",
      dueAt: "2026-12-01T10:00:00+05:30",
    });
    assert.equal(res.status, 201);
    const rec = await res.json();
    assert.equal(rec.dueAt, "2026-12-01T04:30:00.000Z");
    const patched = await call("PATCH", `/api/work_orders/${rec.id}`, {
      dueAt: "2026-12-01T10:00Z",
    });
    assert.equal((await patched.json()).dueAt, "2026-12-01T10:00:00.000Z");
    const [row] = await db.sql`select data->>'dueAt' as due from work_orders where id = ${rec.id}`;
    assert.equal(row!.due, "2026-12-01T10:00:00.000Z");
    const [change] = await db.sql`
      select data->>'dueAt' as due from changes where record_id = ${rec.id} order by id desc`;
    assert.equal(change!.due, "2026-12-01T10:00:00.000Z");
  });

  await t.step("fractional seconds beyond milliseconds are cut to milliseconds", async () => {
    const res = await call("POST", "/api/maintenance_schedules", {
      equipmentId: "eng-1",
      task: "Oil change",
      intervalHours: 500,
      lastDoneAt: "2026-11-27T10:00:00.123456-01:00",
    });
    assert.equal((await res.json()).lastDoneAt, "2026-11-27T11:00:00.123Z");
  });

  await t.step("no zone or a date alone is a 400 saying what is expected", async () => {
    for (const dueAt of ["2026-12-01T10:00:00", "2026-12-01", "2026-02-30T10:00Z"]) {
      const res = await call("POST", "/api/work_orders", { title: "t", equipmentId: "e", dueAt });
      assert.equal(res.status, 400, dueAt);
      const { error } = await res.json();
      assert.equal(error.code, "validation_failed");
      assert.equal(error.details[0].path, "dueAt");
      assert.match(error.details[0].message, /ISO 8601 date-time with a zone/, dueAt);
    }
  });
});
