import assert from "node:assert/strict";
import mqtt from "mqtt";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { spawnLocalGateway } from "../support/process.ts";
import { waitUntil } from "../support/wait.ts";

const TOKEN = "test-token-0123456789abcdef";

/** Starts a gateway on `env` and returns its process once it listens, with its base URL. */
async function spawnGateway(env: Record<string, string> & { DATABASE_URL: string }) {
  const gw = spawnLocalGateway({ databaseUrl: env.DATABASE_URL, token: TOKEN, env });
  return { child: gw.child, base: `http://127.0.0.1:${await gw.port()}` };
}

/** Collects status payloads of one vessel (retained ones included). */
async function watchStatus(url: string, vesselId: string) {
  const client = await mqtt.connectAsync(url);
  const seen: Record<string, unknown>[] = [];
  client.on("message", (_t, p) => seen.push(JSON.parse(p.toString())));
  await client.subscribeAsync(`vessel/${vesselId}/sync/system/status`, { qos: 1 });
  return { client, seen };
}

Deno.test("a gateway announces itself retained, serves health and metrics, and its Last Will fires after kill -9", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const vesselId = `v-${crypto.randomUUID().slice(0, 8)}`;
  const { child, base } = await spawnGateway({
    DATABASE_URL: db.url,
    MQTT_BROKER_URL: broker.url,
    VESSEL_ID: vesselId,
    MQTT_KEEPALIVE_S: "1",
  });
  const status = await watchStatus(broker.url, vesselId);
  try {
    await waitUntil(() => status.seen.some((s) => s.status === "online"), "a retained online");
    const online = status.seen.find((s) => s.status === "online")!;
    assert.equal(online.vesselId, vesselId);
    assert.equal(online.lastSeq, 0);
    assert.match(String(online.epoch), /^[0-9a-f-]{36}$/);

    const created = await fetch(`${base}/api/crew`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "ann" }),
    });
    assert.equal(created.status, 201);
    await created.body?.cancel();

    let health: Record<string, unknown> = {};
    for (let i = 0; i < 400 && health.lastPublishedSeq !== 1; i++) {
      health = await (await fetch(`${base}/health`)).json();
      if (health.lastPublishedSeq !== 1) await new Promise((r) => setTimeout(r, 25));
    }
    assert.equal(health.status, "connected");
    assert.equal(health.vesselId, vesselId);
    assert.equal(health.unackedMessages, 1);
    assert.equal(health.queuedMessages, 0);
    assert.equal(health.activeSubscriptions, 3); // ack, catch-up request, down stream
    assert.equal(health.qosLevel, 1);
    // LINK_MODE defaults to frames with ACK_MODE=shore: changes go on <root>/frames.
    assert.equal(health.linkMode, "frames");
    assert.ok((health.topics as string[]).includes(`vessel/${vesselId}/sync/frames`));
    for (const k of ["oldestUnackedAgeSeconds", "lastAckedSeq", "reconnectAttempts"]) {
      assert.ok(k in health, k);
    }
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /^bosun_mqtt_connected 1$/m);
    assert.match(metrics, /^bosun_unacked_changes 1$/m);
    assert.match(metrics, /^bosun_messages_published_total\{entity="crew",qos="1"\} 1$/m);
    assert.match(metrics, /^bosun_link_bytes_total\{direction="sent"\} [1-9]/m);
    for (const s of ["bosun_queue_depth", "bosun_publish_failures_total", "bosun_last_acked_seq"]) {
      assert.match(metrics, new RegExp(`^${s} `, "m"));
    }

    child.kill("SIGKILL");
    await child.status;
    await waitUntil(
      () => status.seen.some((s) => s.status === "offline"),
      "the Last Will's offline",
    );
    const offline = status.seen.find((s) => s.status === "offline")!;
    assert.equal(offline.vesselId, vesselId);
    assert.equal("timestamp" in offline, false); // the Will, not a clean stop
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
    await status.client.endAsync();
  }
});

Deno.test("a gateway stopped with SIGTERM publishes offline itself, retained", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const vesselId = `v-${crypto.randomUUID().slice(0, 8)}`;
  const { child } = await spawnGateway({
    DATABASE_URL: db.url,
    MQTT_BROKER_URL: broker.url,
    VESSEL_ID: vesselId,
  });
  const status = await watchStatus(broker.url, vesselId);
  await waitUntil(() => status.seen.some((s) => s.status === "online"), "a retained online");
  child.kill("SIGTERM");
  assert.equal((await child.status).code, 0);
  await status.client.endAsync();
  // A new subscriber gets the retained status: the clean stop's offline (with a timestamp).
  const later = await watchStatus(broker.url, vesselId);
  await waitUntil(() => later.seen.length > 0, "a late subscriber gets the retained status");
  assert.equal(later.seen[0]!.status, "offline");
  assert.equal(typeof later.seen[0]!.timestamp, "string");
  await later.client.endAsync();
});

Deno.test("LOCAL_MODE=false runs the API without the sync engine", async () => {
  await using db = await freshDatabase();
  const { child, base } = await spawnGateway({
    DATABASE_URL: db.url,
    LOCAL_MODE: "false",
    MQTT_BROKER_URL: "mqtt://127.0.0.1:1",
  });
  try {
    const health = await (await fetch(`${base}/health`)).json();
    assert.equal(health.status, "disabled");
    const r = await fetch(`${base}/catchup?since=0`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(r.status, 404);
    await r.body?.cancel();
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
});
