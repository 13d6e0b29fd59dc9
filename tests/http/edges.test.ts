/**
 * The gateway's own HTTP edges, against a real gateway process: what a full outbox logs,
 * what data exceptions and malformed bodies answer, and slow uploads.
 */
import assert from "node:assert/strict";
import type { ErrorBody } from "../../core/errors.ts";
import { freshDatabase } from "../support/pg.ts";
import { type GatewayProcess, spawnLocalGateway } from "../support/process.ts";
import { waitUntil, withDeadline } from "../support/wait.ts";
import { startMosquitto } from "../support/mosquitto.ts";

const TOKEN = "edges-token-0123456789abcdef";
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, "content-type": "application/json" };

/** The first JSON log line of `gw` whose text matches `pattern`, waited for up to 20 s. */
async function logLine(gw: GatewayProcess, pattern: RegExp): Promise<Record<string, unknown>> {
  const find = () => gw.stderr().split("\n").find((l) => pattern.test(l));
  await waitUntil(() => find() !== undefined, `a log line matching ${pattern}`, 20_000);
  return JSON.parse(find()!);
}

Deno.test('a full outbox is logged as "Outbox full" with pending and limit, not as a database outage', async () => {
  await using db = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-edges-" });
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: TOKEN,
      env: { OUTBOX_MAX_PENDING: "1" },
    });
    const base = `http://127.0.0.1:${await gw.port()}`;
    const post = () =>
      fetch(`${base}/api/crew`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ name: "One too many" }),
      });
    const first = await post();
    assert.equal(first.status, 201);
    await first.body?.cancel();
    const second = await post();
    assert.equal(second.status, 503);
    assert.equal((await second.json()).error.code, "outbox_full");
    const line = await logLine(gw, /"msg":"Outbox full"/);
    assert.equal(line.pending, 1);
    assert.equal(line.limit, 1);
    assert.doesNotMatch(gw.stderr(), /Database unavailable/);
    assert.equal(await gw.stop(), 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("data exceptions from PostgreSQL and invalid UTF-8 bodies answer 400, never 500", async (t) => {
  await using db = await freshDatabase();
  // A broker, so that POST /catchup gets as far as the database (without one it is a 503).
  await using broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-edges-" });
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: TOKEN,
      env: { MQTT_BROKER_URL: broker.url },
    });
    const base = `http://127.0.0.1:${await gw.port()}`;
    await waitUntil(
      async () => (await (await fetch(`${base}/health`)).json()).status === "connected",
      "the gateway is connected to the broker",
      20_000,
    );

    await t.step("a list cursor tampered to year 0 (SQLSTATE 22008)", async () => {
      const cursor = btoa("0000-01-01T00:00:00.000Z|00000000-0000-4000-8000-000000000000")
        .replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
      const res = await fetch(`${base}/api/crew?cursor=${cursor}`, { headers: auth });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error.code, "invalid_value");
    });

    await t.step(
      "POST /catchup since year 0 (was SQLSTATE 22008, now refused up front)",
      async () => {
        const res = await fetch(`${base}/catchup`, {
          method: "POST",
          headers: json,
          body: JSON.stringify({ since: "0000-01-01T00:00:00Z" }),
        });
        assert.equal(res.status, 400);
        // The date-time schema (core/datetime.ts) refuses year 0 before PostgreSQL sees it.
        assert.equal((await res.json()).error.code, "validation_failed");
      },
    );

    const utf8 = new TextEncoder();
    // {"name": "Bad <0xff> byte"}: one byte that is no UTF-8 at all.
    const invalid = (text: string) => {
      const [head, tail] = text.split("\u0000") as [string, string];
      return new Uint8Array([...utf8.encode(head), 0xff, ...utf8.encode(tail)]);
    };

    await t.step("a create whose body is not UTF-8 is refused, nothing stored", async () => {
      const res = await fetch(`${base}/api/crew`, {
        method: "POST",
        headers: json,
        body: invalid('{"name": "Bad \u0000 byte"}'),
      });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error.code, "invalid_encoding");
      const list = await fetch(`${base}/api/crew`, { headers: auth });
      assert.deepEqual((await list.json()).items, []);
    });

    await t.step("an update whose body is not UTF-8 is refused, the record unchanged", async () => {
      const created = await fetch(`${base}/api/crew`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ name: "Kept" }),
      });
      const rec = await created.json();
      const res = await fetch(`${base}/api/crew/${rec.id}`, {
        method: "PATCH",
        headers: json,
        body: invalid('{"name": "Bad \u0000 byte"}'),
      });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error.code, "invalid_encoding");
      const got = await fetch(`${base}/api/crew/${rec.id}`, { headers: auth });
      const body = await got.json();
      assert.equal(body.name, "Kept", JSON.stringify({ rec, body }));
    });

    await t.step("POST /catchup whose body is not UTF-8 is refused", async () => {
      const res = await fetch(`${base}/catchup`, {
        method: "POST",
        headers: json,
        body: invalid('{"since": 0, "entity": "cr\u0000ew"}'),
      });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error.code, "invalid_encoding");
    });

    assert.equal(await gw.stop(), 0);
    assert.doesNotMatch(gw.stderr(), /"status":500/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A connection that declares a 1 MiB body, sends 5 bytes of it, and stalls. */
async function stalledUpload(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(
    `POST /api/crew HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${1024 * 1024}\r\n\r\n{"nam`,
  ));
  return conn;
}

/** The status and error JSON of the one response on `conn` (sized or chunked). */
async function responseOn(conn: Deno.TcpConn): Promise<{ status: number; body: ErrorBody }> {
  let text = "";
  const buf = new Uint8Array(16 * 1024);
  while (true) {
    const head = text.indexOf("\r\n\r\n");
    // One small JSON object: whatever framing surrounds it, it runs from the first "{" after
    // the head to the last "}".
    const json = head < 0 ? "" : text.slice(text.indexOf("{", head), text.lastIndexOf("}") + 1);
    try {
      return { status: Number(text.slice(9, 12)), body: JSON.parse(json) };
    } catch {
      // not all of it yet
    }
    const n = await conn.read(buf);
    if (n === null) throw new Error(`Connection closed before a whole response: ${text}`);
    text += decoder.decode(buf.subarray(0, n));
  }
}

Deno.test("stalled uploads get 408 or 503, never hold the gateway: /health answers, writes resume", async () => {
  await using db = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-edges-" });
  const conns: Deno.TcpConn[] = [];
  try {
    await using gw = spawnLocalGateway({ databaseUrl: db.url, dataDir, token: TOKEN });
    const port = await gw.port();
    const base = `http://127.0.0.1:${port}`;
    // More than the body reader's 32 slots (http/body.ts): some read and stall, some wait.
    for (let i = 0; i < 100; i++) conns.push(await stalledUpload(port));

    const health = await withDeadline(fetch(`${base}/health`), "/health during the stall", 10_000);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    const answers = await withDeadline(
      Promise.all(conns.map(responseOn)),
      "an answer on every stalled upload",
      60_000,
    );
    const codes = answers.map((a) => `${a.status} ${a.body.error.code}`);
    const timedOut = codes.filter((c) => c === "408 request_timeout").length;
    const refused = codes.filter((c) => c === "503 busy").length;
    assert.ok(timedOut > 0, `a stalled body that was being read gets 408: ${codes}`);
    assert.equal(timedOut + refused, conns.length, `only 408 and 503: ${codes}`);
    const busy = answers.find((a) => a.status === 503);
    if (busy) assert.match(busy.body.error.message, /Too many request bodies/);

    const created = await fetch(`${base}/api/crew`, {
      method: "POST",
      headers: json,
      body: JSON.stringify({ name: "After the stall" }),
    });
    assert.equal(created.status, 201);
    await created.body?.cancel();
    assert.equal(await gw.stop(), 0);
    assert.doesNotMatch(gw.stderr(), /"status":500/);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed already
      }
    }
    await Deno.remove(dataDir, { recursive: true });
  }
});
