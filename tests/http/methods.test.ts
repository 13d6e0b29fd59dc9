import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { testApp } from "../support/app.ts";

Deno.test("a method a route does not serve is 405 with Allow; unknown paths stay 404", async (t) => {
  await using db = await freshDatabase();
  const { call, app } = await testApp(db.sql);
  const id = crypto.randomUUID();

  await t.step("405 names the methods the path takes, in the error JSON", async () => {
    for (
      const [method, path, allow] of [
        ["PUT", `/api/work_orders/${id}`, "GET, PATCH, DELETE"],
        ["POST", `/api/alerts/${id}`, "GET, PATCH, DELETE"],
        ["PUT", "/api/crew", "GET, POST"],
        ["DELETE", "/api/equipment", "GET, POST"],
        ["PATCH", "/api/maintenance_schedules", "GET, POST"],
        ["POST", "/health", "GET"],
        ["DELETE", "/metrics", "GET"],
      ] as const
    ) {
      const res = await call(method, path, {});
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), allow, `${method} ${path}`);
      const { error } = await res.json();
      assert.equal(error.code, "method_not_allowed");
      assert.ok(error.message.includes(method) && error.message.includes(allow), error.message);
      assert.deepEqual(error.details, []);
    }
  });

  await t.step("the token is checked before the method: no token is 401", async () => {
    const res = await app.request(`/api/work_orders/${id}`, { method: "PUT" });
    assert.equal(res.status, 401);
    await res.body?.cancel();
  });

  await t.step("OPTIONS without CORS answers 204 with Allow", async () => {
    const res = await call("OPTIONS", `/api/work_orders/${id}`);
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("allow"), "GET, PATCH, DELETE");
  });

  await t.step("unknown paths and entities are 404 whatever the method", async () => {
    for (
      const [method, path, code] of [
        ["PUT", "/nowhere", "not_found"],
        ["GET", "/api/ships", "unknown_entity"],
        ["PUT", `/api/ships/${id}`, "unknown_entity"],
        ["GET", `/api/work_orders/${id}/parts`, "not_found"],
      ] as const
    ) {
      const res = await call(method, path, method === "GET" ? undefined : {});
      assert.equal(res.status, 404, `${method} ${path}`);
      assert.equal(res.headers.get("allow"), null);
      assert.equal((await res.json()).error.code, code, `${method} ${path}`);
    }
  });
});
