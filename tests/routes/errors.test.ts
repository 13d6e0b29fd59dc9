import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { testApp } from "../support/app.ts";

Deno.test("validation errors name the field and say what it wants", async (t) => {
  await using db = await freshDatabase();
  const { call } = await testApp(db.sql);
  const error = async (method: string, path: string, body?: unknown) => {
    const res = await call(method, path, body);
    assert.equal(res.status, 400, `${method} ${path}`);
    const { error } = await res.json();
    assert.equal(error.code, "validation_failed");
    return error as { message: string; details: { path: string; message: string }[] };
  };

  await t.step("a missing field is required, with what it takes", async () => {
    const e = await error("POST", "/api/work_orders", { equipmentId: "pump-2" });
    assert.equal(e.message, '"title" is required (a string of 1–200 characters)');
    assert.deepEqual(e.details, [{ path: "title", message: e.message }]);
    const alert = await error("POST", "/api/alerts", { equipmentId: "e", message: "m" });
    assert.equal(
      alert.message,
      '"severity" is required (one of "info", "warning" or "critical")',
    );
  });

  await t.step("a wrong value says what the field wants, and what it got", async () => {
    const e = await error("POST", "/api/work_orders", {
      title: "t",
      equipmentId: "e",
      priority: "high",
      status: "done",
    });
    assert.equal(
      e.message,
      '"status" must be one of "open", "in_progress", "completed" or "cancelled"; 1 more in details',
    );
    assert.deepEqual(e.details.map((d) => d.message).sort(), [
      '"priority" must be a whole number from 1 to 5, not a string',
      '"status" must be one of "open", "in_progress", "completed" or "cancelled"',
    ]);
    const crew = await error("POST", "/api/crew", { name: "Ada", onboard: "yes" });
    assert.equal(crew.message, '"onboard" must be true or false, not a string');
    const hours = await error("POST", "/api/maintenance_schedules", {
      equipmentId: "e",
      task: "t",
      intervalHours: 0,
    });
    assert.equal(
      hours.message,
      '"intervalHours" must be a number above 0 and at most 1,000,000,000',
    );
    const nul = await error("POST", "/api/crew", { name: "A\u0000" });
    assert.equal(nul.message, '"name" must not hold NUL characters or unpaired surrogates');
    const due = await error("POST", "/api/work_orders", {
      title: "t",
      equipmentId: "e",
      dueAt: "2026-12-01",
    });
    assert.match(due.message, /^"dueAt" must be an ISO 8601 date-time with a zone/);
    const id = await error("POST", "/api/crew", { id: "42", name: "Ada" });
    assert.equal(id.message, '"id" must be a UUID');
  });

  await t.step("unknown fields and parameters are named, with the known ones", async () => {
    const e = await error("POST", "/api/crew", { name: "Ada", colour: "red" });
    assert.equal(e.message, 'Unknown field "colour"; known: id, name, rank, role, onboard');
    assert.deepEqual(e.details, [{ path: "colour", message: e.message }]);
    const q = await error("GET", "/api/crew?colour=red");
    assert.equal(
      q.message,
      'Unknown query parameter "colour"; this list takes: limit, cursor, updatedSince, rank, role, onboard',
    );
    const limit = await error("GET", "/api/crew?limit=0");
    assert.equal(limit.message, '"limit" must be a whole number from 1 to 500 (default 50)');
  });

  await t.step("a body that is not an object, or an empty patch, says so", async () => {
    assert.equal((await error("POST", "/api/crew", [])).message, "The body must be a JSON object");
    const created = await (await call("POST", "/api/crew", { name: "Bo" })).json();
    assert.equal(
      (await error("PATCH", `/api/crew/${created.id}`, {})).message,
      "The body must hold at least one field to change",
    );
  });
});
