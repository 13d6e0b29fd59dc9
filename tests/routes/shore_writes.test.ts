import assert from "node:assert/strict";
import { parseConfig } from "../../config.ts";
import { createMetrics } from "../../core/metrics.ts";
import { silentLogger } from "../../core/log.ts";
import { gatewayApp } from "../../roles/role.ts";
import { createShoreRole } from "../../roles/shore.ts";
import { freshDatabase } from "../support/pg.ts";
import { testApp } from "../support/app.ts";

const TOKEN = "shore-writes-token-0123456789";

Deno.test("the shore's API writes a vessel's records as the vessel's own API does", async (t) => {
  await using db = await freshDatabase();
  const config = parseConfig({
    ROLE: "shore",
    VESSEL_ID: "shore-a",
    LOCAL_MODE: "false",
    DATABASE_URL: "postgres://unused",
  });
  const metrics = createMetrics();
  const role = createShoreRole({ config, sql: db.sql, log: silentLogger, metrics });
  const app = gatewayApp({ config, role, log: silentLogger, metrics, tokens: [TOKEN] });
  const call = async (method: string, path: string, body?: unknown, headers: HeadersInit = {}) => {
    const h = new Headers(headers);
    h.set("authorization", `Bearer ${TOKEN}`);
    if (body !== undefined && !h.has("content-type")) h.set("content-type", "application/json");
    const res = await app.request(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  };

  let id = "";
  await t.step("POST creates a record for the vessel: 201, Location, ETag", async () => {
    const res = await call("POST", "/api/work_orders?vesselId=ship-1", {
      title: "Overhaul main engine",
      equipmentId: "me-1",
    });
    assert.equal(res.status, 201);
    id = res.body.id;
    assert.deepEqual(
      [res.body.vesselId, res.body.status, res.body.priority, res.body.version],
      ["ship-1", "open", 3, 1],
    );
    assert.equal(res.headers.get("location"), `/api/work_orders/${id}?vesselId=ship-1`);
    assert.equal(res.headers.get("etag"), '"1"');
    const [row] = await db.sql`select count(*)::int as n from shore_down_changes
      where vessel_id = 'ship-1' and record_id = ${id}`;
    assert.equal(row!.n, 1);
  });

  await t.step("GET one record needs its vessel", async () => {
    const res = await call("GET", `/api/work_orders/${id}?vesselId=ship-1`);
    assert.equal(res.status, 200);
    assert.equal(res.body.title, "Overhaul main engine");
    assert.equal((await call("GET", `/api/work_orders/${id}?vesselId=ship-2`)).status, 404);
    assert.equal((await call("GET", `/api/work_orders/${id}`)).status, 400);
    const list = await call("GET", "/api/work_orders?vesselId=ship-1");
    assert.deepEqual(list.body.items.map((r: { id: string }) => r.id), [id]);
  });

  await t.step("PATCH honours If-Match: 412 on a stale version, 200 on the current", async () => {
    const stale = await call("PATCH", `/api/work_orders/${id}?vesselId=ship-1`, { priority: 1 }, {
      "if-match": '"7"',
    });
    assert.equal(stale.status, 412);
    assert.equal(stale.body.error.code, "version_mismatch");
    const ok = await call("PATCH", `/api/work_orders/${id}?vesselId=ship-1`, { priority: 1 }, {
      "if-match": '"1"',
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.priority, 1);
    assert.equal(ok.headers.get("etag"), '"2"');
  });

  await t.step("bad input is a 4xx as on board", async () => {
    const cases: [string, string, unknown, number][] = [
      ["POST", "/api/work_orders?vesselId=ship-1", { title: "" }, 400],
      ["POST", "/api/work_orders?vesselId=bad%20id", { title: "t", equipmentId: "e" }, 400],
      ["POST", "/api/nope?vesselId=ship-1", { title: "t" }, 404],
      ["POST", "/api/work_orders?vesselId=ship-1", "{not json", 400],
      ["PATCH", `/api/work_orders/${id}?vesselId=ship-1`, { unknown: 1 }, 400],
      ["PATCH", `/api/work_orders/not-a-uuid?vesselId=ship-1`, { priority: 2 }, 400],
      ["POST", "/api/work_orders?vesselId=ship-1", { id, title: "t", equipmentId: "e" }, 409],
    ];
    for (const [method, path, body, status] of cases) {
      const res = await call(method, path, body);
      assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)}`);
      assert.equal(typeof res.body.error.code, "string");
    }
  });

  await t.step("DELETE answers 204, then the record is gone", async () => {
    assert.equal((await call("DELETE", `/api/work_orders/${id}?vesselId=ship-1`)).status, 204);
    assert.equal((await call("GET", `/api/work_orders/${id}?vesselId=ship-1`)).status, 404);
    assert.equal((await call("DELETE", `/api/work_orders/${id}?vesselId=ship-1`)).status, 404);
  });

  await t.step(
    "GET /api/conflicts answers an empty page, and refuses an unknown entity",
    async () => {
      const res = await call("GET", "/api/conflicts?entity=work_orders&limit=5");
      assert.deepEqual([res.status, res.body], [200, { items: [], nextCursor: null }]);
      assert.equal((await call("GET", "/api/conflicts?entity=nope")).status, 400);
    },
  );
});

Deno.test("the vessel's API lists its conflicts, newest first, page by page", async () => {
  await using db = await freshDatabase();
  const { call } = await testApp(db.sql);
  for (let i = 0; i < 3; i++) {
    await db.sql`insert into conflicts (entity, record_id, vessel_id, fields, vessel, shore,
      resolved, vessel_clock, shore_clock, at)
      values ('crew', gen_random_uuid(), 'ship-1', '["rank"]', ${db.sql.json({ rank: `v${i}` })},
        ${db.sql.json({ rank: `s${i}` })}, ${db.sql.json({ rank: `s${i}` })}, ${`v${i}`},
        ${`s${i}`}, ${new Date(Date.UTC(2026, 0, 1 + i))})`;
  }
  const first = await call("GET", "/api/conflicts?limit=2");
  assert.equal(first.status, 200);
  const page1 = await first.json();
  assert.deepEqual(page1.items.map((c: { vessel: unknown }) => c.vessel), [
    { rank: "v2" },
    { rank: "v1" },
  ]);
  assert.deepEqual(Object.keys(page1.items[0]).sort(), [
    "at",
    "entity",
    "fields",
    "id",
    "recordId",
    "resolved",
    "shore",
    "vessel",
    "vesselId",
  ]);
  const page2 = await (await call("GET", `/api/conflicts?limit=2&cursor=${page1.nextCursor}`))
    .json();
  assert.deepEqual(page2.items.map((c: { vessel: unknown }) => c.vessel), [{ rank: "v0" }]);
  assert.equal(page2.nextCursor, null);
  assert.equal((await call("GET", "/api/conflicts?cursor=zzz")).status, 400);
});
