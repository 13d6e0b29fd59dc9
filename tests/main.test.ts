/**
 * The gateway as a user runs it: `deno run main.ts` in a process of its own.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "./support/pg.ts";
import { freePort } from "./support/ports.ts";
import { spawnGateway, spawnLocalGateway } from "./support/process.ts";
import { createPgServer } from "./support/pgserver.ts";
import { waitUntil } from "./support/wait.ts";

/** A broker URL where nothing listens, so "no broker" holds whatever runs on 1883. */
const noBroker = () => `mqtt://127.0.0.1:${freePort()}`;

async function roundTrip(base: string, token: string): Promise<string> {
  const auth = { authorization: `Bearer ${token}` };
  const json = { ...auth, "content-type": "application/json" };
  const created = await fetch(`${base}/api/work_orders`, {
    method: "POST",
    headers: json,
    body: JSON.stringify({ title: "Check bilge pump", equipmentId: "bilge-1" }),
  });
  assert.equal(created.status, 201);
  const rec = await created.json();
  const got = await fetch(`${base}/api/work_orders/${rec.id}`, { headers: auth });
  assert.equal(got.status, 200);
  assert.deepEqual(await got.json(), rec);
  const patched = await fetch(`${base}/api/work_orders/${rec.id}`, {
    method: "PATCH",
    headers: { ...json, "if-match": '"1"' },
    body: JSON.stringify({ status: "completed" }),
  });
  assert.equal(patched.status, 200);
  assert.equal((await patched.json()).version, 2);
  const deleted = await fetch(`${base}/api/work_orders/${rec.id}`, {
    method: "DELETE",
    headers: auth,
  });
  assert.equal(deleted.status, 204);
  await deleted.body?.cancel();
  const gone = await fetch(`${base}/api/work_orders/${rec.id}`, { headers: auth });
  assert.equal(gone.status, 404);
  await gone.body?.cancel();
  return rec.id;
}

Deno.test("with no configuration the gateway runs on the embedded database and prints its token once", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-main-" });
  const password = "broker-secret-never-logged";
  const env = {
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    MQTT_BROKER_URL: noBroker(),
    MQTT_USERNAME: "vessel",
    MQTT_PASSWORD: password,
  };
  let token = "";
  let kept = "";
  try {
    await t.step(
      "first start: /health answers with no broker, token printed, round trip",
      async () => {
        await using gw = spawnGateway({ env });
        const base = `http://127.0.0.1:${await gw.port(180_000)}`;
        const m = /generated API token.*\n([0-9a-f]{64})\n/.exec(gw.stdout());
        assert.ok(m, `token not printed: ${gw.stdout()}`);
        token = m[1]!;
        const stat = await Deno.stat(`${dataDir}/api-token`);
        assert.equal(stat.mode! & 0o777, 0o600);
        assert.equal((await Deno.readTextFile(`${dataDir}/api-token`)).trim(), token);

        const health = await fetch(`${base}/health`);
        assert.equal(health.status, 200);
        const h = await health.json();
        assert.equal(h.status, "disconnected");
        assert.equal(h.role, "vessel");
        assert.equal(h.vesselId, "vessel-1");
        assert.equal(h.queuedMessages, 0);

        await roundTrip(base, token);
        const res = await fetch(`${base}/api/crew`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ name: "Kept across restarts" }),
        });
        kept = (await res.json()).id;
        assert.equal(await gw.stop(), 0);
        const lines = gw.stderr().split("\n").filter(Boolean);
        for (const line of lines) {
          assert.doesNotThrow(() => JSON.parse(line), `stderr holds a non-JSON line: ${line}`);
        }
        const first = JSON.parse(lines[0]!);
        assert.equal(first.msg, "Opening embedded database (first start creates it)");
        assert.equal(first.dataDir, dataDir);
        const started = lines.map((l) => JSON.parse(l)).find((l) => l.msg === "Started");
        assert.ok(started, `no "Started" line:\n${gw.stderr()}`);
        assert.equal(started.vesselId, "vessel-1");
        assert.equal(started.broker, env.MQTT_BROKER_URL);
        assert.equal(started.config.dataDir, dataDir);
        assert.equal(started.config.mqtt.username, "vessel");
        assert.equal(started.config.mqtt.password, "<redacted>");
        assert.ok(!gw.stderr().includes(password), "the broker password was logged");
        assert.ok(!gw.stderr().includes(token), "the API token was logged");
      },
    );

    await t.step("second start: token not printed again, still accepted, data kept", async () => {
      await using gw = spawnGateway({ env });
      const base = `http://127.0.0.1:${await gw.port(180_000)}`;
      assert.equal(JSON.parse(gw.stderr().split("\n")[0]!).msg, "Opening embedded database");
      assert.doesNotMatch(gw.stdout(), /generated API token/);
      assert.ok(!gw.stdout().includes(token), "the token is shown only at first start");
      const res = await fetch(`${base}/api/crew/${kept}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 200);
      assert.equal((await res.json()).name, "Kept across restarts");
      const h = await (await fetch(`${base}/health`)).json();
      assert.equal(
        h.queuedMessages,
        4,
        "create, update, delete of the round trip, and the kept create",
      );
      assert.equal(await gw.stop(), 0);
    });
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("SIGTERM lets in-flight requests finish, then exits 0", async () => {
  await using db = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-main-" });
  const token = "sigterm-test-token-0123456789";
  try {
    await using gw = spawnLocalGateway({ databaseUrl: db.url, dataDir, token });
    const base = `http://127.0.0.1:${await gw.port()}`;
    const post = (name: string) =>
      fetch(`${base}/api/crew`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ name }),
      });
    // Hold a lock on the table so that two creates are provably in flight (each waits for it
    // inside PostgreSQL) when the signal arrives. Two: the record store runs at most two create
    // statements at once and queues the rest into a batch (db/vessel/group-commit.ts), where a
    // third could not be seen from here.
    const lock = await db.sql.reserve();
    await lock`begin`;
    await lock`lock table crew in access exclusive mode`;
    const inFlight = [post("a"), post("b")];
    await waitUntil(async () => {
      const [row] = await db.sql`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock'`;
      return row!.n === 2;
    }, "two creates waiting on the table lock");
    const exit = gw.stop("SIGTERM");
    await gw.waitForLog(/"msg":"Stopping"/);
    const late = await post("late");
    assert.equal(late.status, 503, "a request after the signal is refused");
    assert.equal((await late.json()).error.code, "shutting_down");
    await lock`commit`;
    lock.release();
    for (const res of await Promise.all(inFlight)) {
      assert.equal(res.status, 201);
      await res.body?.cancel();
    }
    assert.equal(await exit, 0);
    assert.match(gw.stderr(), /"msg":"Stopped"/);
    const [row] = await db.sql`select count(*)::int as n from crew`;
    assert.equal(row!.n, 2);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("an unreachable DATABASE_URL is retried with logs, and SIGTERM still exits 0", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-main-" });
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: `postgres://postgres@127.0.0.1:${freePort()}/bosun`,
      dataDir,
      token: "unreachable-db-token-0123456789",
    });
    await gw.waitForLog(/"msg":"Database unreachable, retrying".*"attempt":2/);
    assert.equal(await gw.stop("SIGTERM"), 0);
    assert.match(gw.stderr(), /"msg":"Stopped during start-up"/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a gateway started before its database serves once it appears, and rides out a restart", async () => {
  await using pg = await createPgServer({ started: false });
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-main-" });
  const token = "late-database-token-0123456789";
  try {
    await using gw = spawnLocalGateway({ databaseUrl: pg.url, dataDir, token });
    await gw.waitForLog(/"msg":"Database unreachable, retrying".*"attempt":2/);
    await pg.start();
    const base = `http://127.0.0.1:${await gw.port()}`;
    const up = await fetch(`${base}/health`);
    assert.equal(up.status, 200);
    assert.equal((await up.json()).status, "disconnected");
    await roundTrip(base, token);

    const post = () =>
      fetch(`${base}/api/crew`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ name: "Through the outage" }),
      });
    await pg.stop("immediate");
    const down = await post();
    assert.equal(down.status, 503);
    assert.equal((await down.json()).error.code, "database_unavailable");
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 503);
    await health.body?.cancel();

    await pg.start();
    const back = await post();
    assert.equal(back.status, 201);
    await back.body?.cancel();
    assert.equal(await gw.stop(), 0);
    assert.doesNotMatch(gw.stderr(), /"status":500/);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
