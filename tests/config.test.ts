import assert from "node:assert/strict";
import { ConfigError, parseConfig, redactUrl } from "../config.ts";

Deno.test("an empty environment gives the contract's defaults", () => {
  const c = parseConfig({});
  assert.deepEqual(c, {
    role: "vessel",
    vesselId: "vessel-1",
    localMode: true,
    host: "0.0.0.0",
    port: 8080,
    databaseUrl: undefined,
    dataDir: "./data",
    mqtt: {
      url: "mqtt://localhost:1883",
      username: undefined,
      password: undefined,
      caFile: undefined,
      certFile: undefined,
      keyFile: undefined,
      keepaliveS: 60,
      protocolVersion: 5,
    },
    apiTokens: undefined,
    outboxMaxPending: 1_000_000,
    ackTimeoutS: 60,
    ackMode: "shore",
    catchupRetentionDays: 30,
    shoreSharedGroup: undefined,
    linkMode: "frames",
    linkLingerMs: 50,
    corsOrigins: undefined,
    logLevel: "info",
  });
});

Deno.test("every contract variable is parsed into the config", () => {
  const c = parseConfig({
    ROLE: "shore",
    VESSEL_ID: "MV_Aurora-7",
    LOCAL_MODE: "false",
    HOST: "127.0.0.1",
    PORT: "9090",
    DATABASE_URL: "postgres://bosun:pw@db.example:5432/bosun",
    DATA_DIR: "/var/lib/bosun",
    MQTT_BROKER_URL: "mqtts://broker.example:8883",
    MQTT_USERNAME: "ship",
    MQTT_PASSWORD: "secret",
    MQTT_CA_FILE: "/etc/bosun/ca.pem",
    MQTT_CERT_FILE: "/etc/bosun/cert.pem",
    MQTT_KEY_FILE: "/etc/bosun/key.pem",
    MQTT_KEEPALIVE_S: "30",
    API_TOKENS: "aaaaaaaaaaaaaaaaaaaa, bbbbbbbbbbbbbbbbbbbb",
    OUTBOX_MAX_PENDING: "500",
    ACK_TIMEOUT_S: "15",
    ACK_MODE: "broker",
    CATCHUP_RETENTION_DAYS: "7",
    SHORE_SHARED_GROUP: "fleet_a",
    LINK_MODE: "messages",
    LINK_LINGER_MS: "200",
    CORS_ORIGINS: "https://app.example, http://10.0.0.5:3000",
    LOG_LEVEL: "debug",
  });
  assert.deepEqual(c, {
    role: "shore",
    vesselId: "MV_Aurora-7",
    localMode: false,
    host: "127.0.0.1",
    port: 9090,
    databaseUrl: "postgres://bosun:pw@db.example:5432/bosun",
    dataDir: "/var/lib/bosun",
    mqtt: {
      url: "mqtts://broker.example:8883",
      username: "ship",
      password: "secret",
      caFile: "/etc/bosun/ca.pem",
      certFile: "/etc/bosun/cert.pem",
      keyFile: "/etc/bosun/key.pem",
      keepaliveS: 30,
      protocolVersion: 5,
    },
    apiTokens: ["aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"],
    outboxMaxPending: 500,
    ackTimeoutS: 15,
    ackMode: "broker",
    catchupRetentionDays: 7,
    shoreSharedGroup: "fleet_a",
    linkMode: "messages",
    linkLingerMs: 200,
    corsOrigins: ["https://app.example", "http://10.0.0.5:3000"],
    logLevel: "debug",
  });
});

Deno.test("LINK_MODE follows ACK_MODE unless set; MQTT 3.1.1 is protocol 4 and has no shared group", () => {
  assert.equal(parseConfig({ ACK_MODE: "broker" }).linkMode, "messages");
  assert.equal(parseConfig({ ACK_MODE: "shore" }).linkMode, "frames");
  assert.equal(parseConfig({ ACK_MODE: "broker", LINK_MODE: "frames" }).linkMode, "frames");
  assert.equal(parseConfig({ MQTT_PROTOCOL: "3.1.1" }).mqtt.protocolVersion, 4);
  assert.throws(
    () => parseConfig({ MQTT_PROTOCOL: "3.1.1", SHORE_SHARED_GROUP: "g" }),
    /"SHORE_SHARED_GROUP" needs "MQTT_PROTOCOL" 5/,
  );
});

Deno.test("an empty string counts as unset", () => {
  const c = parseConfig({ ROLE: "", PORT: "", DATABASE_URL: "" });
  assert.equal(c.role, "vessel");
  assert.equal(c.port, 8080);
  assert.equal(c.databaseUrl, undefined);
});

const invalid: [string, Record<string, string>][] = [
  ["ROLE", { ROLE: "captain" }],
  ["LINK_MODE", { LINK_MODE: "bytes" }],
  ["LINK_LINGER_MS", { LINK_LINGER_MS: "-5" }],
  ["MQTT_PROTOCOL", { MQTT_PROTOCOL: "4" }],
  ["CORS_ORIGINS", { CORS_ORIGINS: "https://ok.example, *" }],
  ["VESSEL_ID", { VESSEL_ID: "a/b" }],
  ["VESSEL_ID", { VESSEL_ID: "x".repeat(65) }],
  ["VESSEL_ID", { VESSEL_ID: "ship+1" }],
  ["LOCAL_MODE", { LOCAL_MODE: "maybe" }],
  ["PORT", { PORT: "abc" }],
  ["PORT", { PORT: "65536" }],
  ["PORT", { PORT: "-1" }],
  ["DATABASE_URL", { DATABASE_URL: "mysql://x/y" }],
  ["DATABASE_URL", { DATABASE_URL: "not a url" }],
  ["MQTT_BROKER_URL", { MQTT_BROKER_URL: "http://x" }],
  ["MQTT_BROKER_URL", { MQTT_BROKER_URL: "mqtt://" }],
  ["MQTT_KEEPALIVE_S", { MQTT_KEEPALIVE_S: "0" }],
  ["MQTT_KEEPALIVE_S", { MQTT_KEEPALIVE_S: "1.5" }],
  ["MQTT_CERT_FILE", { MQTT_CERT_FILE: "/c.pem" }],
  ["MQTT_CERT_FILE", { MQTT_KEY_FILE: "/k.pem" }],
  ["MQTT_USERNAME", { MQTT_PASSWORD: "pw" }],
  ["API_TOKENS", { API_TOKENS: "short" }],
  ["API_TOKENS", { API_TOKENS: " , ," }],
  ["OUTBOX_MAX_PENDING", { OUTBOX_MAX_PENDING: "0" }],
  ["ACK_TIMEOUT_S", { ACK_TIMEOUT_S: "soon" }],
  ["ACK_MODE", { ACK_MODE: "x" }],
  ["LOG_LEVEL", { LOG_LEVEL: "loud" }],
  ["CATCHUP_RETENTION_DAYS", { CATCHUP_RETENTION_DAYS: "-3" }],
  ["SHORE_SHARED_GROUP", { SHORE_SHARED_GROUP: "a/b" }],
];

for (const [variable, env] of invalid) {
  Deno.test(`an invalid ${variable} (${JSON.stringify(env)}) throws a ConfigError naming it`, () => {
    assert.throws(() => parseConfig(env), (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
      assert.match(err.message, new RegExp(`"${variable}"`));
      return true;
    });
  });
}

Deno.test("several invalid values are all named in one message", () => {
  assert.throws(
    () => parseConfig({ ROLE: "x", PORT: "abc", ACK_MODE: "y" }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      for (const v of ["ROLE", "PORT", "ACK_MODE"]) assert.match(err.message, new RegExp(v));
      return true;
    },
  );
});

Deno.test("variables outside the contract are ignored", () => {
  assert.equal(parseConfig({ PATH: "/bin", HOME: "/root" }).role, "vessel");
});

Deno.test("redactUrl drops broker credentials", () => {
  assert.equal(redactUrl("mqtts://user:pw@broker.example:8883"), "mqtts://broker.example:8883");
  assert.equal(redactUrl("mqtt://localhost:1883"), "mqtt://localhost:1883");
});

Deno.test("main.ts with an invalid value exits non-zero naming the variable", async (t) => {
  for (const [variable, value] of [["PORT", "abc"], ["ROLE", "captain"], ["VESSEL_ID", "a/b"]]) {
    await t.step(`${variable}=${value}`, async () => {
      const dataDir = await Deno.makeTempDir({ prefix: "bosun-cfg-" });
      try {
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "--allow-all", new URL("../main.ts", import.meta.url).pathname],
          env: { [variable!]: value!, DATA_DIR: dataDir, API_TOKENS: "t".repeat(20) },
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert.notEqual(out.code, 0);
        assert.match(stderr, new RegExp(`"${variable}"`));
      } finally {
        await Deno.remove(dataDir, { recursive: true });
      }
    });
  }
});

Deno.test("LINK_MODE defaults to frames under ACK_MODE=shore and to messages under broker", () => {
  assert.equal(parseConfig({}).linkMode, "frames");
  assert.equal(parseConfig({ ACK_MODE: "broker" }).linkMode, "messages");
  assert.equal(parseConfig({ ACK_MODE: "broker", LINK_MODE: "frames" }).linkMode, "frames");
  assert.throws(() => parseConfig({ LINK_MODE: "packets" }), /"LINK_MODE"/);
});
