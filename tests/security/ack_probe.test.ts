/**
 * The vessel's start-up probe of its own ack topic, against real brokers: warns on one
 * without the ACL, stays quiet on the shipped one, and never disturbs the retained ack.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startMosquitto } from "../support/mosquitto.ts";
import { makeTestPki } from "../support/certs.ts";
import { startSecureMosquitto } from "../support/secure-mosquitto.ts";
import { waitUntil } from "../support/wait.ts";
import { createSession } from "../../sync/session.ts";
import { parseConfig } from "../../config.ts";
import { createLogger } from "../../core/log.ts";
import { probeAckTopic } from "../../sync/vessel/ack-probe.ts";

const ACK = "vessel/v1/sync/ack";
const RETAINED = '{"epoch":"7b0b8f8e-8f5e-4a43-9f1e-1f7c2a8b9c10","seq":5}';

async function probe(url: string, auth: Record<string, string> = {}) {
  const lines: string[] = [];
  const session = createSession({
    mqtt: parseConfig({ MQTT_BROKER_URL: url, ...auth }).mqtt,
    clientId: `bosun-v1-${crypto.randomUUID().slice(0, 6)}`,
    log: createLogger({ level: "warn", write: (l) => lines.push(l) }),
  });
  try {
    await waitUntil(() => session.connected, "the session connects", 10_000);
    const result = await probeAckTopic(
      session,
      ACK,
      createLogger({ level: "warn", write: (l) => lines.push(l) }),
    );
    return { result, lines };
  } finally {
    await session.close();
  }
}

async function retained(url: string, auth: { username?: string; password?: string } = {}) {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0, ...auth });
  try {
    const got = new Promise<string>((resolve) =>
      client.on("message", (_t, p) => resolve(p.toString()))
    );
    await client.subscribeAsync(ACK, { qos: 1 });
    return await got;
  } finally {
    await client.endAsync();
  }
}

Deno.test("on a broker without the ACL the vessel warns at start that its ack can be forged", async () => {
  await using broker = await startMosquitto();
  const shore = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 0 });
  await shore.publishAsync(ACK, RETAINED, { qos: 1, retain: true });
  await shore.endAsync();
  const { result, lines } = await probe(broker.url);
  assert.equal(result, "writable");
  assert.equal(lines.filter((l) => l.includes("forge")).length, 1);
  assert.equal(await retained(broker.url), RETAINED, "the retained ack is untouched");
});

Deno.test("on the shipped broker configuration the probe is refused and nothing is logged", async () => {
  await using pki = await makeTestPki([]);
  const users = { v1: "pw-v1-secret", "bosun.shore": "pw-shore-secret" };
  await using broker = await startSecureMosquitto({ pki, users });
  const { result, lines } = await probe(broker.plainUrl, {
    MQTT_USERNAME: "v1",
    MQTT_PASSWORD: users.v1,
  });
  assert.equal(result, "refused");
  assert.deepEqual(lines.filter((l) => l.includes("forge")), []);
});
