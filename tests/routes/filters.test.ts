import assert from "node:assert/strict";
import { filterSchemas } from "../../core/entities.ts";
import { parseConfig } from "../../config.ts";
import { createMetrics } from "../../core/metrics.ts";
import { silentLogger } from "../../core/log.ts";
import { ingest } from "../../db/shore/inbox.ts";
import { gatewayApp } from "../../roles/role.ts";
import { createShoreRole } from "../../roles/shore.ts";
import { SimulatedVessel } from "../support/fleet.ts";
import { freshDatabase } from "../support/pg.ts";
import { TEST_TOKEN, testApp } from "../support/app.ts";

type Rec = Record<string, unknown> & { id: string };

Deno.test("the filterable fields follow from the entity schemas", () => {
  const names = Object.fromEntries(
    Object.entries(filterSchemas).map(([e, f]) => [e, Object.keys(f).sort()]),
  );
  assert.deepEqual(names, {
    work_orders: ["assignedTo", "equipmentId", "priority", "status"],
    alerts: ["acknowledged", "acknowledgedBy", "equipmentId", "severity"],
    equipment: ["location", "status", "type"],
    crew: ["onboard", "rank", "role"],
    maintenance_schedules: ["equipmentId"],
  });
});

Deno.test("vessel lists filter by equality and updatedSince, and page within the filter", async (t) => {
  await using db = await freshDatabase();
  const { call } = await testApp(db.sql);
  const list = async (query: string) => {
    const res = await call("GET", `/api/${query}`);
    const body = await res.json();
    assert.equal(res.status, 200, `${query}: ${JSON.stringify(body)}`);
    return body as { items: Rec[]; nextCursor: string | null };
  };
  const ids = (items: Rec[]) => items.map((r) => r.id).sort();

  const orders: Rec[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await call("POST", "/api/work_orders", {
      title: `Task ${i}`,
      equipmentId: i % 3 === 0 ? "pump-1" : "eng-1",
      status: i % 4 === 0 ? "completed" : "open",
      priority: (i % 5) + 1,
      ...(i % 2 === 0 ? { assignedTo: "bosun" } : {}),
    });
    orders.push(await res.json());
  }
  const crew: Rec[] = [];
  for (const [name, onboard] of [["Ada", true], ["Bo", false], ["Cy", true]] as const) {
    crew.push(await (await call("POST", "/api/crew", { name, onboard, rank: "AB" })).json());
  }
  const alert = await (await call("POST", "/api/alerts", {
    equipmentId: "eng-1",
    severity: "critical",
    message: "Oil pressure low",
  })).json();

  await t.step("enum, id, whole-number and boolean filters, alone and together", async () => {
    const want = (pred: (r: Rec) => boolean) => ids(orders.filter(pred));
    assert.deepEqual(
      ids((await list("work_orders?status=completed")).items),
      want((r) => r.status === "completed"),
    );
    assert.deepEqual(
      ids((await list("work_orders?equipmentId=pump-1")).items),
      want((r) => r.equipmentId === "pump-1"),
    );
    assert.deepEqual(
      ids((await list("work_orders?priority=1")).items),
      want((r) => r.priority === 1),
    );
    assert.deepEqual(
      ids((await list("work_orders?status=open&equipmentId=eng-1&assignedTo=bosun")).items),
      want((r) => r.status === "open" && r.equipmentId === "eng-1" && r.assignedTo === "bosun"),
    );
    assert.deepEqual(ids((await list("crew?onboard=false")).items), [crew[1]!.id]);
    assert.deepEqual(
      ids((await list("crew?onboard=true&rank=AB")).items),
      ids([crew[0]!, crew[2]!]),
    );
    assert.deepEqual(ids((await list("alerts?acknowledged=false&severity=critical")).items), [
      alert.id,
    ]);
    assert.deepEqual((await list("alerts?severity=info")).items, []);
  });

  await t.step("a filtered walk pages through every match once", async () => {
    const seen: Rec[] = [];
    let cursor: string | null = "";
    while (cursor !== null) {
      const page: { items: Rec[]; nextCursor: string | null } = await list(
        `work_orders?equipmentId=eng-1&limit=3${cursor ? `&cursor=${cursor}` : ""}`,
      );
      assert.ok(page.items.length <= 3);
      seen.push(...page.items);
      cursor = page.nextCursor;
    }
    assert.deepEqual(ids(seen), ids(orders.filter((r) => r.equipmentId === "eng-1")));
  });

  await t.step("updatedSince lists records updated at or after it, in any zone", async () => {
    const before = orders[5]!;
    const patched = await (await call("PATCH", `/api/work_orders/${before.id}`, { priority: 2 }))
      .json();
    const since = patched.updatedAt as string;
    assert.deepEqual(ids((await list(`work_orders?updatedSince=${since}`)).items), [before.id]);
    // The same instant written with an offset: "+" must be escaped in a query string.
    const d = new Date(since);
    const offset = new Date(d.getTime() + 2 * 3_600_000).toISOString().replace("Z", "+02:00");
    assert.deepEqual(
      ids((await list(`work_orders?updatedSince=${encodeURIComponent(offset)}`)).items),
      [before.id],
    );
    assert.equal((await list("work_orders?updatedSince=2000-01-01T00:00Z")).items.length, 12);
  });

  await t.step("an unknown parameter or a bad value is a 400 naming the parameter", async () => {
    for (
      const [query, name] of [
        ["work_orders?colour=red", "colour"],
        ["work_orders?title=Task%201", "title"],
        ["work_orders?status=done", "status"],
        ["work_orders?priority=9", "priority"],
        ["work_orders?priority=high", "priority"],
        ["crew?onboard=yes", "onboard"],
        ["work_orders?updatedSince=2026-12-01", "updatedSince"],
        ["work_orders?equipmentId=", "equipmentId"],
      ] as const
    ) {
      const res = await call("GET", `/api/${query}`);
      assert.equal(res.status, 400, query);
      const { error } = await res.json();
      assert.equal(error.code, "validation_failed", query);
      assert.ok(
        JSON.stringify(error).includes(name),
        `${query}: ${JSON.stringify(error)} names ${name}`,
      );
    }
  });
});

Deno.test("shore lists take the same filters beside vesselId", async () => {
  await using db = await freshDatabase();
  const config = parseConfig({ ROLE: "shore", LOCAL_MODE: "false", DATABASE_URL: "postgres://x" });
  const metrics = createMetrics();
  const role = createShoreRole({ config, sql: db.sql, log: silentLogger, metrics });
  const app = gatewayApp({ config, role, log: silentLogger, metrics, tokens: [TEST_TOKEN] });
  const get = async (path: string) => {
    const res = await app.request(path, { headers: { authorization: `Bearer ${TEST_TOKEN}` } });
    return { status: res.status, body: await res.json() };
  };
  const a = new SimulatedVessel("vessel-a");
  const b = new SimulatedVessel("vessel-b");
  const aAlerts = [a.create("alerts"), a.create("alerts")];
  const acked = a.update(`alerts/${aAlerts[0]!.data.id}`);
  const bAlert = b.create("alerts");
  await ingest(db.sql, "vessel-a", a.epoch, [...aAlerts, acked]);
  await ingest(db.sql, "vessel-b", b.epoch, [bAlert]);

  const unacked = await get("/api/alerts?acknowledged=false");
  assert.equal(unacked.status, 200);
  assert.deepEqual(
    unacked.body.items.map((r: Rec) => r.id).sort(),
    [aAlerts[1]!.data.id, bAlert.data.id].sort(),
  );
  const mine = await get("/api/alerts?acknowledged=false&vesselId=vessel-b&severity=warning");
  assert.deepEqual(mine.body.items.map((r: Rec) => [r.id, r.vesselId]), [
    [bAlert.data.id, "vessel-b"],
  ]);
  const since = await get(`/api/alerts?updatedSince=${acked.data.updatedAt}&vesselId=vessel-a`);
  // The simulated vessel's clock may give the second create and the update one millisecond.
  const updated = [acked, aAlerts[1]!].filter((e) =>
    String(e.data.updatedAt) >= String(acked.data.updatedAt)
  );
  assert.deepEqual(
    since.body.items.map((r: Rec) => r.id).sort(),
    updated.map((e) => e.data.id).sort(),
  );
  assert.ok(since.body.items.some((r: Rec) => r.id === acked.data.id && r.acknowledged));
  const unknown = await get("/api/alerts?colour=red&vesselId=vessel-a");
  assert.equal(unknown.status, 400);
  assert.ok(JSON.stringify(unknown.body).includes("colour"));
});
