import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { TEST_TOKEN, testApp } from "../support/app.ts";

const APP = "https://deck.example";

/** Serves the test app on a real socket, so requests go through Deno's HTTP stack. */
async function serve(env: Record<string, string>) {
  const db = await freshDatabase();
  const { app } = await testApp(db.sql, { env });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, app.fetch);
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    async [Symbol.asyncDispose]() {
      await server.shutdown();
      await db[Symbol.asyncDispose]();
    },
  };
}

const preflight = (base: string, path: string, origin: string, method = "PATCH") =>
  fetch(base + path, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": "authorization, content-type, if-match",
    },
  });

Deno.test("CORS_ORIGINS: allowed origins get preflights and CORS headers, others none", async (t) => {
  await using gw = await serve({ CORS_ORIGINS: `${APP}, http://localhost:5173` });
  const id = crypto.randomUUID();

  await t.step("a preflight from an allowed origin is 204 with what it may send", async () => {
    const res = await preflight(gw.base, `/api/work_orders/${id}`, APP);
    await res.body?.cancel();
    assert.equal(res.status, 204);
    assert.equal(res.headers.get("access-control-allow-origin"), APP);
    assert.match(res.headers.get("access-control-allow-methods") ?? "", /PATCH/);
    const headers = (res.headers.get("access-control-allow-headers") ?? "").toLowerCase();
    for (const h of ["authorization", "content-type", "if-match"]) assert.ok(headers.includes(h));
    assert.equal(res.headers.get("access-control-max-age"), "600");
    assert.match(res.headers.get("vary") ?? "", /Origin/);
  });

  await t.step("the actual request carries the origin and exposes Location and ETag", async () => {
    const res = await fetch(`${gw.base}/api/crew`, {
      method: "POST",
      headers: {
        origin: "http://localhost:5173",
        authorization: `Bearer ${TEST_TOKEN}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ name: "Ada" }),
    });
    await res.body?.cancel();
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("access-control-allow-origin"), "http://localhost:5173");
    const exposed = (res.headers.get("access-control-expose-headers") ?? "").toLowerCase();
    assert.ok(exposed.includes("location") && exposed.includes("etag"), exposed);
  });

  await t.step(
    "another origin gets no CORS headers: its preflight fails the token check",
    async () => {
      const res = await preflight(gw.base, `/api/work_orders/${id}`, "https://evil.example");
      await res.body?.cancel();
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("access-control-allow-origin"), null);
      const get = await fetch(`${gw.base}/health`, { headers: { origin: "https://evil.example" } });
      await get.body?.cancel();
      assert.equal(get.headers.get("access-control-allow-origin"), null);
      assert.match(get.headers.get("vary") ?? "", /Origin/);
    },
  );

  await t.step("open routes answer an allowed origin too", async () => {
    const res = await fetch(`${gw.base}/health`, { headers: { origin: APP } });
    await res.body?.cancel();
    assert.equal(res.headers.get("access-control-allow-origin"), APP);
  });
});

Deno.test("without CORS_ORIGINS there are no CORS headers at all", async () => {
  await using gw = await serve({});
  const res = await preflight(gw.base, "/api/crew", APP, "POST");
  await res.body?.cancel();
  assert.equal(res.status, 401, "a preflight is an unauthenticated OPTIONS");
  const open = await preflight(gw.base, "/health", APP, "GET");
  await open.body?.cancel();
  assert.equal(open.status, 204);
  assert.equal(open.headers.get("allow"), "GET");
  const get = await fetch(`${gw.base}/health`, { headers: { origin: APP } });
  await get.body?.cancel();
  for (const r of [res, open, get]) {
    for (const [name] of r.headers) assert.ok(!name.startsWith("access-control-"), name);
  }
});
