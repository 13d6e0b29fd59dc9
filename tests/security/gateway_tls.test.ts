/**
 * A real vessel gateway and a real shore gateway (spawned `main.ts`), each with its own
 * broker account, syncing through Mosquitto started from the shipped mosquitto.conf and ACL:
 * over `mqtts://` with MQTT_CA_FILE and a password, and over mutual TLS with
 * MQTT_CERT_FILE/MQTT_KEY_FILE. The record must reach shore and shore's ack must come back,
 * which needs every topic the ACL grants (data, status, Last Will, ack, catch-up request).
 */
import assert from "node:assert/strict";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { type GatewayProcess, spawnGateway } from "../support/process.ts";
import { freshDatabase } from "../support/pg.ts";
import { startSecureMosquitto } from "../support/secure-mosquitto.ts";
import { waitUntil } from "../support/wait.ts";

const SHORE = "bosun.shore";
const USERS = { v1: "pw-v1-0a9f3", [SHORE]: "pw-shore-77c1e" };
const TOKEN = "e2e-token-0123456789abcdef";
const auth = { Authorization: `Bearer ${TOKEN}` };

/** Polls until `fn` holds; the test runner's own timeout is the bound. */
/** waitUntil, failing with the gateways' output as well as what was waited for. */
async function eventually(what: string, fn: () => Promise<boolean>, gateways: GatewayProcess[]) {
  try {
    await waitUntil(fn, what, 60_000, 100);
  } catch (err) {
    assert.fail(`${(err as Error).message}:\n${gateways.map((g) => g.output()).join("\n---\n")}`);
  }
}

async function syncOneRecord(
  pki: TestPki,
  vesselEnv: Record<string, string>,
  shoreEnv: Record<string, string>,
) {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  const common = { API_TOKENS: TOKEN, PORT: "0", HOST: "127.0.0.1", MQTT_CA_FILE: pki.caCert };
  await using shore = spawnGateway({
    env: {
      ...common,
      ...shoreEnv,
      ROLE: "shore",
      VESSEL_ID: "shore-hq",
      DATABASE_URL: shoreDb.url,
    },
    clearEnv: true,
  });
  const shoreUrl = `http://127.0.0.1:${await shore.port()}`;
  const health = async (base: string) => await (await fetch(`${base}/health`)).json();
  // Shore subscribes first, as in service: a change published before any shore session
  // exists has no subscriber and waits for the vessel's re-send (ACK_TIMEOUT_S).
  await eventually("shore subscribing", async () => {
    const h = await health(shoreUrl);
    return h.status === "connected" && h.activeSubscriptions >= 1;
  }, [shore]);
  await using vessel = spawnGateway({
    env: { ...common, ...vesselEnv, VESSEL_ID: "v1", DATABASE_URL: vesselDb.url },
    clearEnv: true,
  });
  const vesselUrl = `http://127.0.0.1:${await vessel.port()}`;
  const both = [vessel, shore];

  const title = `Replace seal ${crypto.randomUUID()}`;
  const created = await fetch(`${vesselUrl}/api/work_orders`, {
    method: "POST",
    headers: { ...auth, "Content-Type": "application/json" },
    body: JSON.stringify({ title, equipmentId: "pump-2" }),
  });
  assert.equal(created.status, 201);
  const { id } = await created.json();

  await eventually("the vessel connecting", async () => {
    return (await health(vesselUrl)).status === "connected";
  }, both);
  await eventually("shore applying the record", async () => {
    const res = await fetch(`${shoreUrl}/api/work_orders?vesselId=v1`, { headers: auth });
    const body = await res.json();
    return res.ok && body.items?.some((r: { id: string }) => r.id === id);
  }, both);
  await eventually("shore's ack reaching the vessel", async () => {
    const h = await health(vesselUrl);
    return h.lastAckedSeq >= 1 && h.unackedMessages === 0 && h.queuedMessages === 0;
  }, both);
  const shoreHealth = await health(shoreUrl);
  assert.equal(shoreHealth.status, "connected");

  assert.equal(await vessel.stop(), 0);
  assert.equal(await shore.stop(), 0);
  for (const g of both) {
    for (const secret of Object.values(USERS)) {
      assert.ok(!g.output().includes(secret), "a password reached the log");
    }
    assert.ok(!g.output().includes(title), "record content reached the log");
  }
}

Deno.test("vessel and shore gateways sync over mqtts:// with a CA file and passwords", async () => {
  await using pki = await makeTestPki([]);
  await using broker = await startSecureMosquitto({ pki, users: USERS });
  await syncOneRecord(
    pki,
    { MQTT_BROKER_URL: broker.tlsUrl, MQTT_USERNAME: "v1", MQTT_PASSWORD: USERS.v1 },
    { MQTT_BROKER_URL: broker.tlsUrl, MQTT_USERNAME: SHORE, MQTT_PASSWORD: USERS[SHORE] },
  );
});

Deno.test("vessel and shore gateways sync over mutual TLS, the certificate CN as user", async () => {
  await using pki = await makeTestPki(["v1", SHORE]);
  await using broker = await startSecureMosquitto({ pki, users: USERS, mutualTls: true });
  const certOf = (cn: string) => ({
    MQTT_CERT_FILE: pki.clients[cn]!.cert,
    MQTT_KEY_FILE: pki.clients[cn]!.key,
  });
  await syncOneRecord(
    pki,
    { MQTT_BROKER_URL: broker.tlsUrl, ...certOf("v1") },
    { MQTT_BROKER_URL: broker.tlsUrl, ...certOf(SHORE) },
  );
});
