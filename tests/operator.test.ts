/**
 * What an operator reads from a running gateway process: `/health`'s link fields, the
 * `/metrics` series Prometheus alerts on, and the request log, through a broker the test runs
 * and kills.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "./support/pg.ts";
import { startMosquitto } from "./support/mosquitto.ts";
import { spawnLocalGateway } from "./support/process.ts";
import { rawClient } from "./support/fleet.ts";
import { waitUntil, withDeadline } from "./support/wait.ts";
import { ackPayload, topicsOf } from "../sync/protocol.ts";
import { VERSION } from "../core/version.ts";

const TOKEN = "operator-test-token-0123456789";

/** The value of one sample in a Prometheus text exposition, or undefined. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
}

Deno.test("a vessel's health, metrics and request log say where the link stands", async (t) => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-operator-" });
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: TOKEN,
      env: { MQTT_BROKER_URL: broker.url, VESSEL_ID: "op-1" },
    });
    const base = `http://127.0.0.1:${await gw.port()}`;
    const health = async () => await (await fetch(`${base}/health`)).json();
    const metrics = async () => await (await fetch(`${base}/metrics`)).text();

    await t.step("connected: no disconnectedSince, no ack yet, the link mode", async () => {
      await waitUntil(async () => (await health()).status === "connected", "connected");
      const h = await health();
      assert.equal(h.disconnectedSince, null);
      assert.equal(h.lastAckAt, null);
      assert.equal(h.linkMode, "frames");
    });

    let epoch = "";
    await t.step(
      "a write: bytes sent, its age unacknowledged, build and process series",
      async () => {
        const res = await fetch(`${base}/api/crew`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ name: "Bosun" }),
        });
        assert.equal(res.status, 201);
        await res.body?.cancel();
        await waitUntil(async () => (await health()).unackedMessages === 1, "the change published");
        epoch = (await health()).epoch;
        const m = await metrics();
        assert.ok(sample(m, "bosun_link_bytes_total", '{direction="sent"}')! > 0, m);
        assert.ok(sample(m, "bosun_oldest_unacked_age_seconds")! >= 0, m);
        assert.equal(sample(m, "bosun_link_down_seconds"), 0);
        assert.equal(sample(m, "bosun_build_info", `{version="${VERSION}"}`), 1);
        assert.ok(sample(m, "process_resident_memory_bytes")! > 0, m);
        assert.ok(sample(m, "process_cpu_seconds_total")! > 0, m);
        assert.ok(sample(m, "process_start_time_seconds")! > 1e9, m);
        assert.doesNotMatch(m, /^bosun_shore_/m, "a vessel exposes shore series");
      },
    );

    await t.step("shore's ack: lastAckAt set, bytes received, nothing unacknowledged", async () => {
      const shore = await rawClient(broker.url);
      await shore.publishAsync(topicsOf("op-1").ack, ackPayload({ epoch, seq: 1 }), { qos: 1 });
      await shore.endAsync();
      await waitUntil(async () => (await health()).lastAckAt !== null, "lastAckAt is set");
      const h = await health();
      assert.ok(Date.parse(h.lastAckAt) <= Date.now());
      assert.equal(h.unackedMessages, 0);
      const m = await metrics();
      assert.ok(sample(m, "bosun_link_bytes_total", '{direction="received"}')! > 0, m);
      assert.equal(sample(m, "bosun_oldest_unacked_age_seconds"), 0);
    });

    await t.step("broker killed: disconnectedSince and link-down seconds grow", async () => {
      const before = Date.now();
      await broker.kill();
      await waitUntil(async () => (await health()).status === "disconnected", "disconnected");
      const since = Date.parse((await health()).disconnectedSince);
      assert.ok(since >= before - 1000, "disconnectedSince is when the broker went");
      await waitUntil(
        async () => sample(await metrics(), "bosun_link_down_seconds")! >= 1,
        "bosun_link_down_seconds reaches 1",
      );
    });

    await t.step("broker back: the link is up again", async () => {
      await broker.restart();
      await waitUntil(async () => (await health()).status === "connected", "reconnected", 90_000);
      assert.equal((await health()).disconnectedSince, null);
      assert.equal(sample(await metrics(), "bosun_link_down_seconds"), 0);
    });

    await t.step("an error answer is logged with the client address and its code", async () => {
      const res = await fetch(`${base}/api/crew/not-a-uuid`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.ok(res.status >= 400);
      const { error } = await res.json();
      const line = await withDeadline(
        gw.waitForLog(/\{[^\n]*"msg":"Request"[^\n]*"status":4\d\d[^\n]*\}/),
        "the error answer's log line",
      );
      const logged = JSON.parse(line[0]);
      assert.equal(logged.client, "127.0.0.1");
      assert.equal(logged.code, error.code);
    });
    assert.equal(await gw.stop(), 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("a shore exposes its own series and none of the vessel's outbox", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-operator-" });
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: TOKEN,
      env: { MQTT_BROKER_URL: broker.url, ROLE: "shore", VESSEL_ID: "shore-op" },
    });
    const base = `http://127.0.0.1:${await gw.port()}`;
    await waitUntil(
      async () => (await (await fetch(`${base}/health`)).json()).status === "connected",
      "the shore connects",
    );
    const h = await (await fetch(`${base}/health`)).json();
    assert.equal(h.disconnectedSince, null);
    assert.equal(h.lastAckAt, null);
    assert.equal(h.linkMode, "frames");
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
    const html = await page.text();
    assert.match(html, /<h1>Link up<\/h1>/);
    assert.match(html, /<h2>Fleet<\/h2>/);
    const m = await (await fetch(`${base}/metrics`)).text();
    assert.equal(sample(m, "bosun_shore_applied_total"), 0);
    assert.equal(sample(m, "bosun_link_down_seconds"), 0);
    for (const name of ["bosun_queue_depth", "bosun_unacked_changes", "bosun_last_acked_seq"]) {
      assert.equal(sample(m, name), undefined, `${name} on a shore`);
    }
    assert.equal(await gw.stop(), 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
