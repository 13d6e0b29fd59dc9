/**
 * The shore's shared subscription on the shipped brokers: with mosquitto.conf's acl_file a
 * vessel account joins the shore's group and the fleet messages handed to it never reach the
 * shore; with mosquitto-shore.conf (dynamic security, provisioned by mosquitto-dynsec.sh) its
 * subscription is refused. Both on the machine's Mosquitto (2.0.11).
 */
import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import mqtt, { type MqttClient } from "mqtt";
import { makeTestPki, type TestPki } from "../support/certs.ts";
import { startSecureMosquitto, templateConfig } from "../support/secure-mosquitto.ts";
import { type Mosquitto, startMosquitto } from "../support/mosquitto.ts";
import { freePort } from "../support/ports.ts";
import { waitUntil } from "../support/wait.ts";

const CONF = fromFileUrl(new URL("../../mosquitto-shore.conf", import.meta.url));
const SCRIPT = fromFileUrl(new URL("../../mosquitto-dynsec.sh", import.meta.url));
const GROUP = "fleet";
const USERS = { v1: "pw-v1-secret", v2: "pw-v2-secret", "bosun.shore": "pw-shore-secret" };
type User = keyof typeof USERS;

async function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${text}`);
}

/** Mosquitto from mosquitto-shore.conf, provisioned with mosquitto-dynsec.sh. */
async function startDynsecMosquitto(pki: TestPki): Promise<Mosquitto & { url: string }> {
  const dir = await Deno.makeTempDir({ prefix: "bosun-dynsec-" });
  await Deno.chmod(dir, 0o777);
  const file = `${dir}/dynamic-security.json`;
  await run("mosquitto_ctrl", ["dynsec", "init", file, "admin", "admin-pw-secret"]);
  await Deno.chmod(file, 0o666);
  const port = freePort();
  const configFile = `${dir}/mosquitto.conf`;
  await Deno.writeTextFile(
    configFile,
    templateConfig(await Deno.readTextFile(CONF), {
      "listener 1883": `listener ${port} 127.0.0.1`,
      "listener 8883": `listener ${freePort()} 127.0.0.1`,
      "persistence_location": `persistence_location ${dir}/`,
      "plugin_opt_config_file": `plugin_opt_config_file ${file}`,
      "cafile": `cafile ${pki.caCert}`,
      "certfile": `certfile ${pki.serverCert}`,
      "keyfile": `keyfile ${pki.serverKey}`,
    }),
  );
  await Deno.chmod(configFile, 0o644);
  const broker = await startMosquitto({ port, configFile });
  const env = { MOSQ_CTRL: `-h 127.0.0.1 -p ${port} -u admin -P admin-pw-secret` };
  await run("sh", [SCRIPT, "shore", "bosun.shore", USERS["bosun.shore"], GROUP], env);
  for (const v of ["v1", "v2"] as const) await run("sh", [SCRIPT, "vessel", v, USERS[v]], env);
  return {
    ...broker,
    url: `mqtt://127.0.0.1:${port}`,
    async [Symbol.asyncDispose]() {
      await broker[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

const connect = (url: string, user: User) =>
  mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    username: user,
    password: USERS[user],
    clientId: `${user}-${crypto.randomUUID().slice(0, 8)}`,
  });

/** Subscribes; "refused" when the SUBACK says not authorised. */
async function trySubscribe(client: MqttClient, filter: string): Promise<"granted" | "refused"> {
  try {
    const [grant] = await client.subscribeAsync(filter, { qos: 1 });
    return grant && grant.qos < 128 ? "granted" : "refused";
  } catch (err) {
    assert.match(String(err), /not authori[sz]ed/i);
    return "refused";
  }
}

/**
 * v2 publishes 10 changes; returns how many the shore's shared subscription received. A
 * sentinel on the shore's own (not shared) status subscription comes after: once it is in,
 * every earlier message routed to the shore is too.
 */
async function deliveredToShore(url: string, shore: MqttClient): Promise<number> {
  let shared = 0;
  let sentinel = false;
  shore.on("message", (topic, payload) => {
    if (topic.endsWith("/work_orders")) shared++;
    if (payload.toString() === "sentinel") sentinel = true;
  });
  const v2 = await connect(url, "v2");
  try {
    for (let i = 0; i < 10; i++) {
      await v2.publishAsync("vessel/v2/sync/work_orders", `change ${i}`, { qos: 1 });
    }
    await v2.publishAsync("vessel/v2/sync/system/status", "sentinel", { qos: 1 });
  } finally {
    await v2.endAsync();
  }
  await waitUntil(() => sentinel, "the sentinel reaches the shore", 10_000);
  return shared;
}

Deno.test("mosquitto.conf's acl_file lets a vessel join the shore's shared group (the hole)", async () => {
  await using pki = await makeTestPki([]);
  await using broker = await startSecureMosquitto({ pki, users: USERS });
  const shore = await connect(broker.plainUrl, "bosun.shore");
  const v1 = await connect(broker.plainUrl, "v1");
  try {
    await shore.subscribeAsync(`$share/${GROUP}/vessel/+/sync/#`, { qos: 1 });
    await shore.subscribeAsync("vessel/v2/sync/system/status", { qos: 1 });
    assert.equal(await trySubscribe(v1, `$share/${GROUP}/vessel/+/sync/#`), "granted");
    assert.ok(await deliveredToShore(broker.plainUrl, shore) < 10, "some went to v1");
  } finally {
    await v1.endAsync();
    await shore.endAsync();
  }
});

Deno.test("mosquitto-shore.conf with dynamic security refuses a vessel the shore's group, and the shore gets every message", async (t) => {
  await using pki = await makeTestPki([]);
  await using broker = await startDynsecMosquitto(pki);
  const shore = await connect(broker.url, "bosun.shore");
  const v1 = await connect(broker.url, "v1");
  try {
    await t.step("a vessel may not subscribe to the group, nor to the fleet", async () => {
      for (
        const filter of [
          `$share/${GROUP}/vessel/+/sync/#`,
          "$share/other/vessel/+/sync/#",
          "vessel/+/sync/#",
          "vessel/v2/sync/work_orders",
          "#",
        ]
      ) {
        assert.equal(await trySubscribe(v1, filter), "refused", filter);
      }
      assert.equal(await trySubscribe(v1, "vessel/v1/sync/ack"), "granted");
      assert.equal(await trySubscribe(v1, "vessel/v1/sync/catchup/request"), "granted");
    });

    await t.step("nor publish another vessel's changes or any ack", async () => {
      for (const topic of ["vessel/v2/sync/work_orders", "vessel/v1/sync/ack"]) {
        await assert.rejects(
          v1.publishAsync(topic, "forged", { qos: 1, retain: true }),
          /not authori[sz]ed/i,
          topic,
        );
      }
      await v1.publishAsync("vessel/v1/sync/work_orders", "own change", { qos: 1 });
    });

    await t.step("the shore's group receives all of the fleet's messages", async () => {
      assert.equal(await trySubscribe(shore, `$share/${GROUP}/vessel/+/sync/#`), "granted");
      assert.equal(await trySubscribe(shore, "vessel/v2/sync/system/status"), "granted");
      assert.equal(await deliveredToShore(broker.url, shore), 10);
      await shore.publishAsync("vessel/v2/sync/ack", '{"epoch":"e","seq":1}', {
        qos: 1,
        retain: true,
      });
    });
  } finally {
    await v1.endAsync();
    await shore.endAsync();
  }
});
