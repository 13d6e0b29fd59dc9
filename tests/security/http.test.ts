/**
 * The HTTP edge: bearer tokens, secure headers, the body limit and request ids.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { buildTestApp, TEST_TOKEN } from "../support/app.ts";
import { MAX_BODY_BYTES } from "../../http/app.ts";

const auth = { Authorization: `Bearer ${TEST_TOKEN}` };
const json = { ...auth, "Content-Type": "application/json" };

Deno.test("missing, malformed and wrong bearer tokens all get the identical 401", async () => {
  await using db = await freshDatabase();
  const app = await buildTestApp({ sql: db.sql });
  const attempts: (string | undefined)[] = [
    undefined,
    "",
    "Bearer",
    "Bearer ",
    "Basic dXNlcjpwYXNz",
    "Bearer has spaces in it",
    "Bearer ???",
    `Bearer ${TEST_TOKEN}x`,
    `Bearer ${TEST_TOKEN.slice(0, -1)}`,
    `Bearer ${TEST_TOKEN.toUpperCase()}`,
    `Token ${TEST_TOKEN}`,
    `Bearer\t${TEST_TOKEN}`,
  ];
  const answers = new Set<string>();
  for (const header of attempts) {
    const res = await app.request("/api/work_orders", {
      headers: header === undefined ? {} : { Authorization: header },
    });
    const body = await res.text();
    assert.equal(res.status, 401, `${JSON.stringify(header)} got ${res.status}`);
    answers.add(JSON.stringify([body, res.headers.get("www-authenticate")]));
  }
  assert.equal(answers.size, 1, `different 401 answers: ${[...answers].join("\n")}`);
  const [body] = JSON.parse([...answers][0]!);
  assert.equal(JSON.parse(body).error.code, "unauthorized");

  const ok = await app.request("/api/work_orders", { headers: auth });
  assert.equal(ok.status, 200);
  for (const path of ["/catchup", "/api/nope", "/api/work_orders/x"]) {
    assert.equal((await app.request(path)).status, 401, `${path} is open`);
  }
});

Deno.test("every response carries the secure headers and a request id", async () => {
  await using db = await freshDatabase();
  const logLines: string[] = [];
  const app = await buildTestApp({ sql: db.sql, logLines });
  const requests: [string, RequestInit][] = [
    ["/health", {}],
    ["/metrics", {}],
    ["/api/work_orders", { headers: auth }],
    ["/api/work_orders", {
      method: "POST",
      headers: json,
      body: '{"title":"t","equipmentId":"e"}',
    }],
    ["/api/work_orders", { method: "POST", headers: json, body: "{" }],
    ["/api/work_orders", { method: "POST", headers: auth, body: "x" }],
    ["/api/work_orders/not-a-uuid", { headers: auth }],
    ["/api/nothing_here", { headers: auth }],
    ["/api/work_orders", {}],
    ["/no/such/route", {}],
  ];
  const ids = new Set<string>();
  for (const [path, init] of requests) {
    const res = await app.request(path, init);
    await res.body?.cancel();
    const what = `${init.method ?? "GET"} ${path} (${res.status})`;
    assert.equal(res.headers.get("x-content-type-options"), "nosniff", what);
    assert.equal(res.headers.get("x-frame-options"), "SAMEORIGIN", what);
    assert.match(res.headers.get("strict-transport-security") ?? "", /max-age=\d+/, what);
    assert.equal(res.headers.get("referrer-policy"), "no-referrer", what);
    const id = res.headers.get("x-request-id");
    assert.ok(id && /^[\w-]{8,}$/.test(id), `${what} has no request id`);
    ids.add(id);
    const logged = logLines.map((l) => JSON.parse(l)).filter((l) => l.msg === "Request");
    assert.ok(logged.some((l) => l.requestId === id), `${what}: no log line with its request id`);
  }
  assert.equal(ids.size, requests.length, "request ids repeat");
});

Deno.test("a request id sent by the client is kept only when it is plain", async () => {
  await using db = await freshDatabase();
  const app = await buildTestApp({ sql: db.sql });
  const plain = await app.request("/health", { headers: { "X-Request-Id": "trace-abc_123" } });
  assert.equal(plain.headers.get("x-request-id"), "trace-abc_123");
  for (const hostile of ['x","level":"error', "a b", "x".repeat(300), "\u00e9t\u00e9"]) {
    const res = await app.request("/health", { headers: { "X-Request-Id": hostile } });
    const id = res.headers.get("x-request-id") ?? "";
    assert.notEqual(id, hostile);
    assert.match(id, /^[\w-]+$/);
  }
});

Deno.test("bodies up to 1 MiB are read and anything larger gets 413", async (t) => {
  await using db = await freshDatabase();
  const app = await buildTestApp({ sql: db.sql });
  const record = '{"title":"limit","equipmentId":"e"}';
  const padded = (size: number) => record + " ".repeat(size - record.length);
  const count = async () => (await db.sql`select count(*)::int as n from changes`)[0]!.n;

  await t.step("exactly 1 MiB is accepted", async () => {
    const res = await app.request("/api/work_orders", {
      method: "POST",
      headers: json,
      body: padded(MAX_BODY_BYTES),
    });
    assert.equal(res.status, 201);
    assert.equal(await count(), 1);
  });

  await t.step("1 MiB and one byte gets 413, with a Content-Length", async () => {
    const res = await app.request("/api/work_orders", {
      method: "POST",
      headers: json,
      body: padded(MAX_BODY_BYTES + 1),
    });
    assert.equal(res.status, 413);
    assert.equal((await res.json()).error.code, "payload_too_large");
    assert.equal(await count(), 1);
  });

  await t.step("a streamed body without Content-Length is cut off at the limit too", async () => {
    const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode(record));
      },
      pull(c) {
        if (sent > 4 * MAX_BODY_BYTES) return c.close();
        sent += chunk.length;
        c.enqueue(chunk);
      },
    });
    const res = await app.request("/api/work_orders", { method: "PATCH", headers: json, body });
    assert.equal(res.status, 413);
    assert.equal(await count(), 1);
  });
});
