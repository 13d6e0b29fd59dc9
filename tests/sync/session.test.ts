import assert from "node:assert/strict";
import { startMosquitto } from "../support/mosquitto.ts";
import { startNatsMqtt } from "../support/nats_node.ts";
import { createSession, type Session, type SessionEvent } from "../../sync/session.ts";
import { silentLogger } from "../../core/log.ts";
import { parseConfig } from "../../config.ts";
import mqtt from "mqtt";
import { waitUntil, withDeadline } from "../support/wait.ts";

const fast = { baseMs: 50, ceilingMs: 200 };

function open(
  url: string,
  clientId: string,
  extra: Partial<Parameters<typeof createSession>[0]> = {},
) {
  const config = parseConfig({ MQTT_BROKER_URL: url, MQTT_KEEPALIVE_S: "5" });
  return createSession({ mqtt: config.mqtt, clientId, log: silentLogger, backoff: fast, ...extra });
}

function waitFor(
  session: Session,
  type: SessionEvent["type"],
  pred: (e: SessionEvent) => boolean = () => true,
) {
  return withDeadline(
    new Promise<SessionEvent>((resolve) => {
      const off = session.onEvent((e) => {
        if (e.type === type && pred(e)) {
          off();
          resolve(e);
        }
      });
    }),
    `a "${type}" session event`,
  );
}

Deno.test("session publishes, receives, and resubscribes after the broker loses its session", async () => {
  await using broker = await startMosquitto();
  const session = open(broker.url, `bosun-t-${crypto.randomUUID().slice(0, 8)}`);
  try {
    const got: string[] = [];
    session.onMessage((topic, payload) =>
      got.push(`${topic}=${new TextDecoder().decode(payload)}`)
    );
    await session.subscribe("t/in/#", 1); // before the first connect: sent at connect
    const first = await waitFor(session, "connected");
    assert.deepEqual(first, { type: "connected", sessionPresent: false });
    assert.equal(session.connected, true);
    assert.deepEqual(session.subscriptions, ["t/in/#"]);

    const peer = await mqtt.connectAsync(broker.url);
    // The subscription is confirmed asynchronously after connect; publish until it lands.
    await waitUntil(async () => {
      await peer.publishAsync("t/in/a", "1", { qos: 1 });
      return got.includes("t/in/a=1");
    }, "a message on the subscription");

    const down = waitFor(session, "disconnected");
    const reconnecting = waitFor(session, "reconnecting");
    await broker.kill();
    await down;
    assert.equal(session.connected, false);
    await assert.rejects(session.publish("t/out", "x", { qos: 1 }), /Not connected/);
    const r = await reconnecting;
    assert.equal(r.type === "reconnecting" && r.attempt, 1);

    const back = waitFor(session, "connected");
    await broker.restart();
    assert.deepEqual(await back, { type: "connected", sessionPresent: false });
    assert.ok(session.reconnectAttempts >= 1);
    await peer.endAsync(true);
    const peer2 = await mqtt.connectAsync(broker.url);
    await waitUntil(async () => {
      await peer2.publishAsync("t/in/b", "2", { qos: 1 });
      return got.includes("t/in/b=2");
    }, "a message on the subscription restored after the broker lost the session");
    await peer2.endAsync();
  } finally {
    await session.close();
  }
});

Deno.test("session resumes its broker session under the same client id", async () => {
  await using broker = await startMosquitto();
  const id = `bosun-t-${crypto.randomUUID().slice(0, 8)}`;
  const a = open(broker.url, id);
  await waitFor(a, "connected");
  await a.publish("t/x", "1", { qos: 1 });
  await a.close();
  const b = open(broker.url, id);
  try {
    assert.deepEqual(await waitFor(b, "connected"), { type: "connected", sessionPresent: true });
  } finally {
    await b.close();
  }
});

Deno.test("session's Last Will is not published on a clean close", async () => {
  await using broker = await startMosquitto();
  const watcher = await mqtt.connectAsync(broker.url);
  const seen: string[] = [];
  watcher.on("message", (_t, p) => seen.push(p.toString()));
  await watcher.subscribeAsync("t/status", { qos: 1 });
  const will = { topic: "t/status", payload: "offline", qos: 1 as const, retain: true };
  const clean = open(broker.url, `bosun-t-${crypto.randomUUID().slice(0, 8)}`, { will });
  await waitFor(clean, "connected");
  await clean.close();
  // A retained probe published after the close proves the broker handled the DISCONNECT.
  await watcher.publishAsync("t/status", "probe", { qos: 1 });
  await waitUntil(() => seen.includes("probe"), "the retained probe");
  assert.deepEqual(seen, ["probe"]);
  await watcher.endAsync();
});

Deno.test("session keeps QoS 1/2 publishes within the broker's Receive Maximum, so a burst of alerts past Mosquitto's default 20 all complete", async () => {
  // Mosquitto's default max_inflight_messages is 20, advertised as Receive Maximum; the
  // shipped mosquitto.conf keeps that default. Past it, Mosquitto leaves QoS 2 unanswered.
  await using broker = await startMosquitto({ extraConfig: "max_inflight_messages 20" });
  const received = new Set<string>();
  const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
  await sub.subscribeAsync("rm/#", { qos: 2 });
  sub.on("message", (topic) => received.add(topic));
  const session = open(broker.url, `bosun-t-${crypto.randomUUID().slice(0, 8)}`);
  try {
    await waitFor(session, "connected");
    assert.equal(session.receiveMaximum, 20);
    const n = 60;
    const all = Promise.all(
      Array.from({ length: n }, (_, i) => session.publish(`rm/${i}`, "x", { qos: i % 2 ? 1 : 2 })),
    );
    // Without the limit the QoS 2 publishes past the 20th never complete: fail, don't hang.
    await withDeadline(all, `all ${n} publishes completing`, 20_000);
    await waitUntil(() => received.size >= n, `all ${n} publishes at the subscriber`);
    assert.equal(received.size, n);
  } finally {
    await session.close();
    await sub.endAsync();
  }
});

Deno.test("session asks again for a subscription the broker refused, until it is granted", async () => {
  // nats-server refuses a QoS 1 SUBSCRIBE when it cannot create its JetStream consumer in time;
  // here its permissions refuse it first and allow it after a reload (SIGHUP).
  const users = (allowed: string) =>
    `authorization { users: [{ user: "u", password: "p", permissions: { publish: ">", ` +
    `subscribe: ["${allowed}", "$MQTT.sub.>"] } }] }\n`;
  await using nats = await startNatsMqtt({
    extraConfig: "include ./auth.conf",
    files: { "auth.conf": users("elsewhere.>") },
  });
  const config = parseConfig({
    MQTT_BROKER_URL: nats.url,
    MQTT_PROTOCOL: "3.1.1",
    MQTT_USERNAME: "u",
    MQTT_PASSWORD: "p",
  });
  const session = createSession({
    mqtt: config.mqtt,
    clientId: `bosun-t-${crypto.randomUUID().slice(0, 8)}`,
    log: silentLogger,
    backoff: fast,
  });
  const peer = await mqtt.connectAsync(nats.url, {
    protocolVersion: 4,
    username: "u",
    password: "p",
  });
  try {
    const got: string[] = [];
    session.onMessage((topic) => got.push(topic));
    await waitUntil(() => session.connected, "the session connects");
    await session.subscribe("t/in", 1);
    await peer.publishAsync("t/in", "refused", { qos: 1 });
    await nats.writeFile("auth.conf", users("t.>"));
    nats.reload();
    // Granted only once the session asks again; publish until a message lands.
    await waitUntil(async () => {
      await peer.publishAsync("t/in", "granted", { qos: 1 });
      return got.length > 0;
    }, "a message on the subscription the broker first refused");
  } finally {
    await peer.endAsync();
    await session.close();
  }
});
