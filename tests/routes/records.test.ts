import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import postgres from "postgres";
import type { Sql } from "../../db/connection.ts";
import { ENTITIES, type Entity } from "../../core/entities.ts";
import { freshDatabase } from "../support/pg.ts";
import { freePort } from "../support/ports.ts";
import { TEST_TOKEN, testApp } from "../support/app.ts";

/** A valid create body and a valid patch for every entity. */
const SAMPLES: Record<Entity, { create: Record<string, unknown>; patch: Record<string, unknown> }> =
  {
    work_orders: {
      create: {
        title: "Replace impeller",
        equipmentId: "pump-2",
        dueAt: "2026-12-01T08:00:00.000Z",
      },
      patch: { status: "in_progress", priority: 1 },
    },
    alerts: {
      create: { equipmentId: "eng-1", severity: "critical", message: "Oil pressure low" },
      patch: { acknowledged: true, acknowledgedBy: "chief" },
    },
    equipment: {
      create: { name: "Main engine", type: "diesel", runningHours: 1200.5 },
      patch: { runningHours: 1201 },
    },
    crew: { create: { name: "Ada Lovelace", rank: "Chief Engineer" }, patch: { onboard: false } },
    maintenance_schedules: {
      create: { equipmentId: "eng-1", task: "Oil change", intervalHours: 500 },
      patch: { lastDoneAt: "2026-11-27T09:00:00.000Z" },
    },
  };

async function json(res: Response): Promise<Record<string, unknown>> {
  return await res.json() as Record<string, unknown>;
}

async function errorCode(res: Response): Promise<string> {
  const body = await json(res) as { error: { code: string; message: string; details: unknown } };
  assert.equal(typeof body.error.message, "string");
  assert.ok(Array.isArray(body.error.details));
  return body.error.code;
}

Deno.test("records API on PostgreSQL", async (t) => {
  await using db = await freshDatabase();
  const { call, app, gate } = await testApp(db.sql);

  for (const entity of ENTITIES) {
    await t.step(`${entity}: create, get, list, patch, delete`, async () => {
      const { create, patch } = SAMPLES[entity];
      const created = await call("POST", `/api/${entity}`, create);
      assert.equal(created.status, 201);
      const rec = await json(created);
      assert.equal(created.headers.get("location"), `/api/${entity}/${rec.id}`);
      assert.equal(rec.version, 1);
      assert.equal(rec.createdAt, rec.updatedAt);
      for (const [k, v] of Object.entries(create)) assert.deepEqual(rec[k], v);

      const got = await call("GET", `/api/${entity}/${rec.id}`);
      assert.equal(got.status, 200);
      assert.deepEqual(await json(got), rec);

      const list = await json(await call("GET", `/api/${entity}`));
      assert.deepEqual(list.items, [rec]);
      assert.equal(list.nextCursor, null);

      const patched = await call("PATCH", `/api/${entity}/${rec.id}`, patch, { "if-match": '"1"' });
      assert.equal(patched.status, 200);
      const updated = await json(patched);
      assert.equal(updated.version, 2);
      for (const [k, v] of Object.entries(patch)) assert.deepEqual(updated[k], v);
      assert.deepEqual(await json(await call("GET", `/api/${entity}/${rec.id}`)), updated);

      const deleted = await call("DELETE", `/api/${entity}/${rec.id}`);
      assert.equal(deleted.status, 204);
      assert.equal(await deleted.text(), "");
      const gone = await call("GET", `/api/${entity}/${rec.id}`);
      assert.equal(gone.status, 404);
      assert.equal(await errorCode(gone), "not_found");
      assert.deepEqual((await json(await call("GET", `/api/${entity}`))).items, []);

      const ops = await db.sql`
        select operation from changes where record_id = ${rec.id as string} order by id`;
      assert.deepEqual(ops.map((r) => r.operation), ["create", "update", "delete"]);
    });
  }

  await t.step("create applies the contract's defaults", async () => {
    const wo = await json(await call("POST", "/api/work_orders", { title: "t", equipmentId: "e" }));
    assert.equal(wo.status, "open");
    assert.equal(wo.priority, 3);
    const alert = await json(
      await call("POST", "/api/alerts", { equipmentId: "e", severity: "info", message: "m" }),
    );
    assert.equal(alert.acknowledged, false);
    assert.equal((await json(await call("POST", "/api/crew", { name: "n" }))).onboard, true);
  });

  await t.step("a client-supplied id is kept; a second create with it is 409", async () => {
    const id = crypto.randomUUID();
    const first = await call("POST", "/api/crew", { id, name: "Bo" });
    assert.equal(first.status, 201);
    assert.equal((await json(first)).id, id);
    const before = await db.sql`select count(*)::int as n from changes`;
    const second = await call("POST", "/api/crew", { id, name: "Cy" });
    assert.equal(second.status, 409);
    assert.equal(await errorCode(second), "conflict");
    const after = await db.sql`select count(*)::int as n from changes`;
    assert.equal(after[0]!.n, before[0]!.n, "the refused create wrote no change");
  });

  await t.step("a client id in upper case is stored in canonical lower case", async () => {
    const id = crypto.randomUUID();
    const res = await call("POST", "/api/crew", { id: id.toUpperCase(), name: "Uma" });
    assert.equal(res.status, 201);
    assert.equal((await json(res)).id, id);
    assert.equal(res.headers.get("location"), `/api/crew/${id}`);
    assert.equal((await json(await call("GET", `/api/crew/${id.toUpperCase()}`))).id, id);
    const again = await call("POST", "/api/crew", { id, name: "Uma" });
    assert.equal(again.status, 409);
    await again.body?.cancel();
    const [change] = await db.sql`select data->>'id' as id from changes where record_id = ${id}`;
    assert.equal(change!.id, id);
  });

  await t.step("bad JSON, failed validation and unknown fields are 400", async () => {
    const cases: [string, string, unknown, string][] = [
      ["POST", "/api/work_orders", "{not json", "invalid_json"],
      ["POST", "/api/work_orders", "", "invalid_json"],
      ["POST", "/api/work_orders", { title: "", equipmentId: "e" }, "validation_failed"],
      [
        "POST",
        "/api/work_orders",
        { title: "x".repeat(201), equipmentId: "e" },
        "validation_failed",
      ],
      [
        "POST",
        "/api/work_orders",
        { title: "t", equipmentId: "e", priority: 6 },
        "validation_failed",
      ],
      [
        "POST",
        "/api/work_orders",
        { title: "t", equipmentId: "e", dueAt: "soon" },
        "validation_failed",
      ],
      [
        "POST",
        "/api/work_orders",
        { title: "t", equipmentId: "e", colour: "red" },
        "validation_failed",
      ],
      ["POST", "/api/work_orders", { title: "t\u0000", equipmentId: "e" }, "validation_failed"],
      [
        "POST",
        "/api/alerts",
        { equipmentId: "e", severity: "dire", message: "m" },
        "validation_failed",
      ],
      ["POST", "/api/equipment", { name: "n", runningHours: -1 }, "validation_failed"],
      [
        "POST",
        "/api/maintenance_schedules",
        { equipmentId: "e", task: "t", intervalHours: 0 },
        "validation_failed",
      ],
      ["POST", "/api/crew", { id: "not-a-uuid", name: "n" }, "validation_failed"],
      ["POST", "/api/crew", [], "validation_failed"],
      ["POST", "/api/crew", null, "validation_failed"],
      ["POST", "/api/crew", "42", "validation_failed"],
      ["GET", "/api/crew?limit=0", undefined, "validation_failed"],
      ["GET", "/api/crew?limit=abc", undefined, "validation_failed"],
      ["GET", "/api/crew?colour=red", undefined, "validation_failed"],
      ["GET", "/api/crew/not-a-uuid", undefined, "invalid_id"],
    ];
    for (const [method, path, body, code] of cases) {
      const res = await call(method, path, body === null ? "null" : body);
      assert.equal(res.status, 400, `${method} ${path} ${JSON.stringify(body)}`);
      assert.equal(await errorCode(res), code, `${method} ${path} ${JSON.stringify(body)}`);
    }
    const rec = await json(await call("POST", "/api/crew", { name: "Di" }));
    for (const patch of [{}, { id: crypto.randomUUID() }, { version: 9 }, { name: "" }, { x: 1 }]) {
      const res = await call("PATCH", `/api/crew/${rec.id}`, patch);
      assert.equal(res.status, 400, JSON.stringify(patch));
      assert.equal(await errorCode(res), "validation_failed");
    }
    const badTag = await call("PATCH", `/api/crew/${rec.id}`, { rank: "AB" }, { "if-match": "x" });
    assert.equal(badTag.status, 400);
    assert.equal(await errorCode(badTag), "invalid_if_match");
  });

  await t.step("a missing or wrong token is 401 with the same body", async () => {
    const bodies = new Set<string>();
    for (const auth of [undefined, "Bearer wrong-token-123456789", "Basic abc", "Bearer", "x"]) {
      const headers = new Headers();
      if (auth !== undefined) headers.set("authorization", auth);
      const res = await app.request("/api/crew", { headers });
      assert.equal(res.status, 401, String(auth));
      bodies.add(await res.text());
    }
    const post = await app.request("/api/crew", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "x" }),
    });
    assert.equal(post.status, 401);
    bodies.add(await post.text());
    assert.equal(bodies.size, 1, [...bodies].join(" | "));
    assert.equal(JSON.parse([...bodies][0]!).error.code, "unauthorized");
  });

  await t.step("unknown records, entities and routes are 404", async () => {
    const id = crypto.randomUUID();
    for (
      const [method, path] of [
        ["GET", `/api/crew/${id}`],
        ["DELETE", `/api/crew/${id}`],
        ["GET", "/api/ships"],
        ["GET", `/api/ships/${id}`],
        ["GET", "/nowhere"],
      ] as const
    ) {
      const res = await call(method, path);
      assert.equal(res.status, 404, `${method} ${path}`);
      await errorCode(res);
    }
    const patch = await call("PATCH", `/api/crew/${id}`, { rank: "AB" });
    assert.equal(patch.status, 404);
  });

  await t.step("a stale If-Match is 412 with the current version", async () => {
    const rec = await json(await call("POST", "/api/crew", { name: "Ed" }));
    assert.equal((await call("PATCH", `/api/crew/${rec.id}`, { rank: "AB" })).status, 200);
    const stale = await call("PATCH", `/api/crew/${rec.id}`, { rank: "OS" }, { "if-match": '"1"' });
    assert.equal(stale.status, 412);
    const body = await json(stale) as { error: { code: string; details: unknown[] } };
    assert.equal(body.error.code, "version_mismatch");
    assert.deepEqual(body.error.details, [{ currentVersion: 2 }]);
    const del = await call("DELETE", `/api/crew/${rec.id}`, undefined, { "if-match": '"1"' });
    assert.equal(del.status, 412);
    const ok = await call("DELETE", `/api/crew/${rec.id}`, undefined, { "if-match": 'W/"2"' });
    assert.equal(ok.status, 204);
  });

  await t.step("50 concurrent PATCHes on one version: exactly one 200, the rest 412", async () => {
    const rec = await json(await call("POST", "/api/equipment", { name: "Winch" }));
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) =>
          call("PATCH", `/api/equipment/${rec.id}`, { runningHours: i }, { "if-match": '"1"' }),
      ),
    );
    const statuses = results.map((r) => r.status);
    await Promise.all(results.map((r) => r.body?.cancel()));
    assert.equal(statuses.filter((s) => s === 200).length, 1, statuses.join(","));
    assert.equal(statuses.filter((s) => s === 412).length, 49, statuses.join(","));
    const updates = await db.sql`
      select count(*)::int as n from changes where record_id = ${rec.id as string}
      and operation = 'update'`;
    assert.equal(updates[0]!.n, 1);
  });

  await t.step("a body over 1 MiB is 413, with or without Content-Length", async () => {
    const big = JSON.stringify({ name: "x", rank: "y".repeat(1024 * 1024) });
    const res = await call("POST", "/api/crew", big);
    assert.equal(res.status, 413);
    assert.equal(await errorCode(res), "payload_too_large");
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (sent++ < 20) ctrl.enqueue(chunk);
        else ctrl.close();
      },
    });
    const streamed = await app.request("/api/crew", {
      method: "POST",
      headers: { authorization: `Bearer ${TEST_TOKEN}`, "content-type": "application/json" },
      body: stream,
    });
    assert.equal(streamed.status, 413);
    assert.equal(await errorCode(streamed), "payload_too_large");
  });

  await t.step("a body that is not JSON is 415", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", ""]) {
      const res = await call("POST", "/api/crew", '{"name":"x"}', { "content-type": type });
      assert.equal(res.status, 415, type);
      assert.equal(await errorCode(res), "unsupported_media_type");
    }
    const rec = await json(await call("POST", "/api/crew", { name: "Flo" }));
    const res = await call("PATCH", `/api/crew/${rec.id}`, "rank=AB", {
      "content-type": "text/plain",
    });
    assert.equal(res.status, 415);
    const vendor = await call("POST", "/api/crew", { name: "Gil" }, {
      "content-type": "application/vnd.bosun+json; charset=utf-8",
    });
    assert.equal(vendor.status, 201);
  });

  await t.step("a malformed cursor is 400", async () => {
    for (const cursor of ["x", "bm9wZQ", btoa("2026-01-01T00:00:00.000Z|nope"), "%%%"]) {
      const res = await call("GET", `/api/crew?cursor=${encodeURIComponent(cursor)}`);
      assert.equal(res.status, 400, cursor);
      assert.equal(await errorCode(res), "invalid_cursor");
    }
  });

  await t.step("the cursor walks every record once while inserts happen", async () => {
    const existing = new Set<string>();
    for (let i = 0; i < 40; i++) {
      existing.add(
        (await json(
          await call("POST", "/api/work_orders", {
            title: `w${i}`,
            equipmentId: "e",
          }),
        )).id as string,
      );
    }
    let inserting = true;
    const writer = (async () => {
      let n = 0;
      while (inserting) {
        const res = await call("POST", "/api/work_orders", {
          title: `late ${n++}`,
          equipmentId: "e",
        });
        await res.body?.cancel();
      }
      return n;
    })();
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${cursor}` : "";
      const page = await json(await call("GET", `/api/work_orders?limit=7${q}`)) as {
        items: { id: string }[];
        nextCursor: string | null;
      };
      seen.push(...page.items.map((r) => r.id));
      cursor = page.nextCursor;
    } while (cursor);
    inserting = false;
    assert.ok(await writer > 0, "inserts ran during the walk");
    assert.equal(new Set(seen).size, seen.length, "no record was returned twice");
    for (const id of existing) assert.ok(seen.includes(id), `record ${id} was skipped`);
  });

  await t.step("a full outbox answers 503 with Retry-After", async () => {
    // Earlier steps left changes unacknowledged (no sync here): a bound of 1 is reached.
    const full = await testApp(db.sql, { outboxMaxPending: 1 });
    const res = await full.call("POST", "/api/crew", { name: "Hal" });
    assert.equal(res.status, 503);
    assert.ok(res.headers.get("retry-after"));
    assert.equal(await errorCode(res), "outbox_full");
  });

  await t.step("random JSON bodies never get a 500", async () => {
    const statuses = new Set<number>();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENTITIES),
        fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())),
        async (entity, body) => {
          const res = await call("POST", `/api/${entity}`, JSON.stringify(body));
          statuses.add(res.status);
          await res.body?.cancel();
          return res.status === 201 || res.status === 400;
        },
      ),
      { numRuns: 200 },
    );
    assert.ok(statuses.has(400));
  });

  await t.step("random PATCH bodies, list queries and ids never get a 500", async () => {
    const rec = await json(await call("POST", "/api/equipment", { name: "Fuzzed" }));
    const allowed = new Set([200, 400, 404, 412]);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.jsonValue(), fc.dictionary(fc.string(), fc.jsonValue())),
        fc.option(fc.string({ maxLength: 12 })),
        async (body, ifMatch) => {
          const headers: Record<string, string> = ifMatch === null ? {} : { "if-match": ifMatch };
          // fc.string() draws printable ASCII, always a valid header value.
          const res = await call(
            "PATCH",
            `/api/equipment/${rec.id}`,
            JSON.stringify(body),
            headers,
          );
          await res.body?.cancel();
          return allowed.has(res.status);
        },
      ),
      { numRuns: 150 },
    );
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.constantFrom("limit", "cursor", "x"), fc.string({ maxLength: 40 })),
        fc.string({ maxLength: 40 }),
        async (query, id) => {
          const list = await call("GET", `/api/crew?${new URLSearchParams(query)}`);
          await list.body?.cancel();
          const one = await call("GET", `/api/crew/${encodeURIComponent(id)}`);
          await one.body?.cancel();
          return [200, 400].includes(list.status) && [200, 400, 404].includes(one.status);
        },
      ),
      { numRuns: 150 },
    );
  });

  await t.step("/health reports the queue and /metrics counts requests", async () => {
    const health = await app.request("/health");
    assert.equal(health.status, 200);
    const h = await json(health);
    assert.equal(h.status, "disabled");
    const [row] = await db.sql`select count(*)::int as n from changes`;
    assert.equal(h.queuedMessages, row!.n);
    assert.equal(typeof h.uptimeSeconds, "number");
    const metrics = await (await app.request("/metrics")).text();
    const created =
      /bosun_http_requests_total\{method="POST",route="\/api\/:entity",status="201"\} (\d+)/
        .exec(metrics);
    assert.ok(created, metrics);
    assert.ok(Number(created[1]) >= 5);
    assert.match(metrics, /bosun_http_requests_total\{method="GET",route="[^"]*",status="401"\}/);
    assert.match(metrics, new RegExp(`bosun_queue_depth ${row!.n}`));
  });

  await t.step("invented HTTP methods are counted as one series, not one each", async () => {
    for (let i = 0; i < 20; i++) {
      const res = await call(`INVENTED${i}`, "/api/crew");
      assert.equal(res.status, 405);
      await res.body?.cancel();
    }
    const metrics = await (await app.request("/metrics")).text();
    assert.doesNotMatch(metrics, /INVENTED/);
    assert.match(
      metrics,
      /bosun_http_requests_total\{method="other",route="[^"]*",status="405"\} 20/,
    );
    assert.ok(gate.pending > 0);
  });
});

/** Asserts that the records API and /health answer 503 (never 500) over `sql`. */
async function assertDatabaseDown(sql: Sql): Promise<void> {
  const { call, app } = await testApp(sql);
  const id = crypto.randomUUID();
  for (
    const [method, path, body] of [
      ["POST", "/api/crew", { name: "x" }],
      ["GET", `/api/crew/${id}`],
      ["GET", "/api/crew"],
      ["PATCH", `/api/crew/${id}`, { rank: "AB" }],
      ["DELETE", `/api/crew/${id}`],
    ] as const
  ) {
    const res = await call(method, path, body);
    assert.equal(res.status, 503, `${method} ${path}`);
    assert.equal(await errorCode(res), "database_unavailable");
  }
  const health = await app.request("/health");
  assert.equal(health.status, 503);
  await health.body?.cancel();
  const metrics = await app.request("/metrics");
  assert.equal(metrics.status, 200);
  await metrics.body?.cancel();
}

Deno.test("a database with nothing listening gets 503, never 500", async () => {
  const sql = postgres(`postgres://postgres@127.0.0.1:${freePort()}/none`, {
    max: 2,
    connect_timeout: 2,
    onnotice: () => {},
  }) as unknown as Sql;
  try {
    await assertDatabaseDown(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
});

Deno.test("a closed pool gets 503, never 500", async () => {
  await using db = await freshDatabase();
  const sql = postgres(db.url, { max: 2, onnotice: () => {} }) as unknown as Sql;
  await sql`select 1`;
  await sql.end();
  await assertDatabaseDown(sql);
});

Deno.test("a database dropped under a running app gets 503, never 500", async () => {
  const db = await freshDatabase();
  const sql = postgres(db.url, { max: 2, onnotice: () => {} }) as unknown as Sql;
  try {
    await sql`select 1`;
    await db[Symbol.asyncDispose]();
    await assertDatabaseDown(sql);
  } finally {
    await sql.end({ timeout: 1 });
  }
});
