/**
 * Secrets at start-up and at run time, on a real gateway process: TLS files are checked before
 * anything starts, and no credential or record content reaches the log, `/health` or an error.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../config.ts";
import { readTlsFiles } from "../../sync/tls.ts";
import { makeTestPki } from "../support/certs.ts";
import { spawnGateway } from "../support/process.ts";
import { freshDatabase } from "../support/pg.ts";
import { startSecureMosquitto } from "../support/secure-mosquitto.ts";

const mqttOf = (env: Record<string, string>) => parseConfig(env).mqtt;

Deno.test("readTlsFiles refuses unreadable, non-PEM, corrupt and mismatched files by name", async (t) => {
  await using pki = await makeTestPki(["v1", "v2"]);
  const dir = pki.dir;
  await Deno.writeTextFile(`${dir}/text.txt`, "hello\n");
  await Deno.writeTextFile(
    `${dir}/corrupt.crt`,
    "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
  );
  await Deno.writeTextFile(
    `${dir}/corrupt.key`,
    "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n",
  );
  const v1 = pki.clients["v1"]!;
  const v2 = pki.clients["v2"]!;
  const encrypted = await new Deno.Command("openssl", {
    args: ["pkey", "-in", v1.key, "-aes256", "-passout", "pass:sea", "-out", `${dir}/enc.key`],
  }).output();
  assert.ok(encrypted.success);
  const cases: [string, Record<string, string>, RegExp][] = [
    ["a missing CA file", { MQTT_CA_FILE: `${dir}/nope.crt` }, /"MQTT_CA_FILE".*cannot be read/],
    ["a directory as CA file", { MQTT_CA_FILE: dir }, /"MQTT_CA_FILE".*cannot be read/],
    ["a CA file without PEM", { MQTT_CA_FILE: `${dir}/text.txt` }, /"MQTT_CA_FILE".*no PEM/],
    ["a corrupt CA certificate", { MQTT_CA_FILE: `${dir}/corrupt.crt` }, /"MQTT_CA_FILE".*invalid/],
    [
      "a key as certificate",
      { MQTT_CERT_FILE: v1.key, MQTT_KEY_FILE: v1.key },
      /"MQTT_CERT_FILE".*no PEM/,
    ],
    [
      "a corrupt client certificate",
      { MQTT_CERT_FILE: `${dir}/corrupt.crt`, MQTT_KEY_FILE: v1.key },
      /"MQTT_CERT_FILE".*invalid/,
    ],
    [
      "a missing key",
      { MQTT_CERT_FILE: v1.cert, MQTT_KEY_FILE: `${dir}/nope.key` },
      /"MQTT_KEY_FILE".*cannot be read/,
    ],
    [
      "a corrupt key",
      { MQTT_CERT_FILE: v1.cert, MQTT_KEY_FILE: `${dir}/corrupt.key` },
      /"MQTT_KEY_FILE".*no usable private key/,
    ],
    [
      "a passphrase-protected key",
      { MQTT_CERT_FILE: v1.cert, MQTT_KEY_FILE: `${dir}/enc.key` },
      /"MQTT_KEY_FILE".*encrypted keys are not supported/,
    ],
    [
      "another certificate's key",
      { MQTT_CERT_FILE: v1.cert, MQTT_KEY_FILE: v2.key },
      /"MQTT_KEY_FILE".*not the key of the certificate/,
    ],
  ];
  for (const [name, env, expected] of cases) {
    await t.step(name, async () => {
      await assert.rejects(readTlsFiles(mqttOf(env)), (err: Error) => {
        assert.ok(err instanceof ConfigError, `${name}: ${err}`);
        assert.match(err.message, expected);
        assert.doesNotMatch(err.message, /BEGIN|AAAAAAAA/, "the message quotes file contents");
        return true;
      });
    });
  }
  await t.step("a good CA, certificate and key are returned as PEM", async () => {
    const files = await readTlsFiles(
      mqttOf({ MQTT_CA_FILE: pki.caCert, MQTT_CERT_FILE: v1.cert, MQTT_KEY_FILE: v1.key }),
    );
    assert.match(files.ca ?? "", /BEGIN CERTIFICATE/);
    assert.match(files.cert ?? "", /BEGIN CERTIFICATE/);
    assert.match(files.key ?? "", /PRIVATE KEY/);
  });
});

Deno.test("a gateway with a bad TLS file exits non-zero at start naming the variable", async (t) => {
  await using pki = await makeTestPki(["v1", "v2"]);
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-data-" });
  const base = { MQTT_BROKER_URL: "mqtts://127.0.0.1:1", DATA_DIR: dataDir, PORT: "0" };
  const cases: [string, Record<string, string>, string][] = [
    ["missing CA file", { MQTT_CA_FILE: `${pki.dir}/nope.crt` }, "MQTT_CA_FILE"],
    ["key that is not the certificate's", {
      MQTT_CERT_FILE: pki.clients["v1"]!.cert,
      MQTT_KEY_FILE: pki.clients["v2"]!.key,
    }, "MQTT_KEY_FILE"],
  ];
  for (const [name, env, variable] of cases) {
    await t.step(name, async () => {
      await using gateway = spawnGateway({ env: { ...base, ...env }, clearEnv: true });
      const code = await gateway.exited();
      assert.notEqual(code, 0);
      assert.match(gateway.output(), new RegExp(`bosun: .*"${variable}"`));
      assert.doesNotMatch(gateway.output(), /Listening|Uncaught/);
    });
  }
  // Start-up stopped before the embedded database was created.
  assert.deepEqual([...Deno.readDirSync(dataDir)], []);
  await Deno.remove(dataDir, { recursive: true });
});

Deno.test("no credential or record content reaches the log, /health or an error", async () => {
  const secrets = {
    mqttPassword: `mqtt-pw-${crypto.randomUUID()}`,
    urlPassword: `url-pw-${crypto.randomUUID()}`,
    apiToken: `api-token-${crypto.randomUUID()}`,
    wrongToken: `wrong-token-${crypto.randomUUID()}`,
    dbPassword: `db-pw-${crypto.randomUUID()}`,
    title: `Secret cargo manifest ${crypto.randomUUID()}`,
  };
  await using pki = await makeTestPki([]);
  // A broker that refuses these credentials, so the refusal path is logged too.
  await using broker = await startSecureMosquitto({ pki, users: { v1: "the-real-password" } });
  await using db = await freshDatabase();
  const dbUrl = new URL(db.url);
  dbUrl.password = secrets.dbPassword; // trust auth: accepted and never used
  const brokerUrl = new URL(broker.plainUrl);
  brokerUrl.username = "v1";
  brokerUrl.password = secrets.urlPassword;

  await using gateway = spawnGateway({
    env: {
      VESSEL_ID: "v1",
      DATABASE_URL: dbUrl.toString(),
      MQTT_BROKER_URL: brokerUrl.toString(),
      MQTT_USERNAME: "v1",
      MQTT_PASSWORD: secrets.mqttPassword,
      API_TOKENS: secrets.apiToken,
      PORT: "0",
      HOST: "127.0.0.1",
    },
    clearEnv: true,
  });
  const port = await gateway.port();
  const base = `http://127.0.0.1:${port}`;
  const auth = { Authorization: `Bearer ${secrets.apiToken}` };
  const json = { ...auth, "Content-Type": "application/json" };
  const bodies: string[] = [];
  const call = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${base}${path}`, init);
    bodies.push(await res.text());
    return res;
  };

  const health = await call("/health");
  assert.equal(health.status, 200);
  assert.equal(JSON.parse(bodies.at(-1)!).broker, broker.plainUrl);

  const created = await call("/api/work_orders", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ title: secrets.title, equipmentId: "eq-1" }),
  });
  assert.equal(created.status, 201);
  const { id } = JSON.parse(bodies.at(-1)!);
  // Failures carrying the same content: validation, conflict, stale version, bad JSON.
  await call("/api/work_orders", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ title: secrets.title.repeat(10), equipmentId: secrets.title }),
  });
  await call("/api/work_orders", {
    method: "POST",
    headers: json,
    body: JSON.stringify({ id, title: secrets.title, equipmentId: "eq-1" }),
  });
  await call(`/api/work_orders/${id}`, {
    method: "PATCH",
    headers: { ...json, "If-Match": '"7"' },
    body: JSON.stringify({ description: secrets.title }),
  });
  await call("/api/work_orders", { method: "POST", headers: json, body: `{"t":"${secrets.title}` });
  await call("/api/work_orders", { headers: { Authorization: `Bearer ${secrets.wrongToken}` } });
  await call(`/api/work_orders/${id}`, { headers: auth });
  assert.ok(bodies.at(-1)!.includes(secrets.title), "the record itself is readable");
  await call("/health");
  await call("/metrics");

  // The broker has refused the credentials at least once (the refusal path is covered too).
  await gateway.waitForLog(/"msg":"MQTT reconnecting"/);
  assert.equal(await gateway.stop(), 0);
  const log = gateway.output();
  assert.match(log, /"msg":"Listening"/);
  for (const [name, secret] of Object.entries(secrets)) {
    assert.ok(!log.includes(secret), `the log holds ${name}:\n${log}`);
  }
  const exposed = [...bodies.slice(0, 1), ...bodies.slice(-2)].join("\n");
  for (const [name, secret] of Object.entries(secrets)) {
    if (name === "title") continue;
    assert.ok(!exposed.includes(secret), `/health or /metrics holds ${name}`);
  }
  for (const body of bodies.slice(1, -3)) {
    for (const secret of [secrets.mqttPassword, secrets.urlPassword, secrets.dbPassword]) {
      assert.ok(!body.includes(secret), `an API answer holds a credential: ${body}`);
    }
  }
});
