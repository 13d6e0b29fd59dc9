import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startMosquitto } from "../support/mosquitto.ts";
import { startProxy } from "../support/proxy.ts";
import { waitUntil } from "../support/wait.ts";
import { createSession, type Session } from "../../sync/session.ts";
import { silentLogger } from "../../core/log.ts";
import { parseConfig } from "../../config.ts";

const connected = (session: Session) => waitUntil(() => session.connected, "the session connects");

// Found by the chaos suite (satellite profile, vessel link black-holed): mqtt.js replays its
// in-memory store of in-flight publishes on a resumed session one message per round trip, and
// emits "connect" only after the last one. With a full window on a 600 ms link the vessel
// stayed "disconnected" for minutes while mqtt.js was connected, and nothing new was
// published. Those QoS 1 publishes were already rejected to the publisher, which re-sends
// from the database; the session now forgets them on a drop. A QoS 2 one is kept and resumed:
// the broker may hold its packet id.
Deno.test("a resumed session is connected without replaying the QoS 1 publishes it rejected, and resumes the QoS 2 one", async () => {
  await using broker = await startMosquitto();
  await using link = startProxy({ target: { port: broker.port } });
  const config = parseConfig({ MQTT_BROKER_URL: link.url(), MQTT_KEEPALIVE_S: "60" });
  const session = createSession({
    mqtt: config.mqtt,
    clientId: `bosun-t-${crypto.randomUUID().slice(0, 8)}`,
    log: silentLogger,
    backoff: { baseMs: 50, ceilingMs: 200 },
  });
  const peer = await mqtt.connectAsync(broker.url);
  try {
    const seen: string[] = [];
    await peer.subscribeAsync("replay/#", { qos: 1 });
    peer.on("message", (topic) => seen.push(topic));
    await connected(session);

    // 50 QoS 1 publishes and a QoS 2 one in flight when the link fails: none reaches the
    // broker, and all are rejected to the caller.
    link.setMode({ kind: "blackhole" });
    const inFlight = Array.from(
      { length: 50 },
      (_, i) => session.publish(`replay/${i}`, "x", { qos: 1 }).then(() => "ok", () => "rejected"),
    );
    inFlight.push(
      session.publish("replay/qos2", "x", { qos: 2 }).then(() => "ok", () => "rejected"),
    );
    link.setMode({ kind: "cut" });
    assert.deepEqual(new Set(await Promise.all(inFlight)), new Set(["rejected"]));

    link.setMode({ kind: "pass" });
    await connected(session);
    await session.publish("replay/marker", "x", { qos: 1 });
    await waitUntil(
      () => seen.includes("replay/marker"),
      "the marker published after the replay arrives",
    );
    // One connection, in order: the store's replay runs before "connect", so anything
    // replayed reached the broker before the marker. Only the QoS 2 exchange was.
    assert.deepEqual(seen, ["replay/qos2", "replay/marker"]);
  } finally {
    await peer.endAsync();
    await session.close();
  }
});
