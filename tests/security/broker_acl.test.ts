/**
 * The shipped mosquitto.conf and mosquitto.acl, started for real: who may connect, and who
 * may write and read which topic.
 *
 * Non-delivery is proved without waiting for a timeout: a refused message is published at
 * QoS 1 and its PUBACK awaited (Mosquitto has routed, or dropped, a message before it answers),
 * then a "sentinel" the receiver may read is published. The broker keeps each subscriber's
 * messages in order, so once the sentinel arrives the refused message can no longer follow.
 */
import assert from "node:assert/strict";
import mqtt, { type IClientOptions, type MqttClient } from "mqtt";
import { makeTestPki } from "../support/certs.ts";
import { startSecureMosquitto } from "../support/secure-mosquitto.ts";
import { withDeadline } from "../support/wait.ts";

const SHORE = "bosun.shore";
const USERS = { v1: "pw-v1-secret", v2: "pw-v2-secret", [SHORE]: "pw-shore-secret" };

type Received = { topic: string; payload: string };

/** A connected client that records what it receives. */
interface Probe {
  client: MqttClient;
  received: Received[];
  /** Resolves once a message with `payload` has arrived. */
  waitFor(payload: string): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function connect(url: string, options: IClientOptions = {}): Promise<Probe> {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    clientId: `probe-${crypto.randomUUID().slice(0, 8)}`,
    ...options,
  });
  const received: Received[] = [];
  const waiters: { payload: string; resolve: () => void }[] = [];
  client.on("message", (topic, payload) => {
    const text = new TextDecoder().decode(payload);
    received.push({ topic, payload: text });
    for (const w of waiters.filter((w) => w.payload === text)) w.resolve();
  });
  return {
    client,
    received,
    waitFor: (payload) =>
      received.some((r) => r.payload === payload) ? Promise.resolve() : withDeadline(
        new Promise((resolve) => waiters.push({ payload, resolve })),
        `the message "${payload}"`,
      ),
    async [Symbol.asyncDispose]() {
      await client.endAsync(true);
    },
  };
}

/** Publishes at QoS 1 and reports whether the broker accepted it (MQTT 5 reason code). */
async function tryPublish(
  probe: Probe,
  topic: string,
  payload: string,
  retain = false,
): Promise<"accepted" | "refused"> {
  try {
    await probe.client.publishAsync(topic, payload, { qos: 1, retain });
    return "accepted";
  } catch (err) {
    assert.match(String(err), /not authori[sz]ed/i);
    return "refused";
  }
}

/** Connecting must fail; returns the error text. */
async function refused(url: string, options: IClientOptions): Promise<string> {
  try {
    const probe = await connect(url, options);
    await probe[Symbol.asyncDispose]();
  } catch (err) {
    return String(err);
  }
  assert.fail(`connecting to ${url} as ${options.username ?? "anonymous"} succeeded`);
}

const payloads = (p: Probe) => p.received.map((r) => `${r.topic} ${r.payload}`);

Deno.test("shipped broker config: authentication and per-vessel topic ACLs", async (t) => {
  await using pki = await makeTestPki(["v1", SHORE]);
  await using broker = await startSecureMosquitto({ pki, users: USERS });
  const url = broker.plainUrl;
  const as = (user: keyof typeof USERS) => ({ username: user, password: USERS[user] });

  await t.step("anonymous and wrong-password clients are refused", async () => {
    assert.match(await refused(url, {}), /not authori[sz]ed/i);
    assert.match(
      await refused(url, { username: "v1", password: "wrong" }),
      /not authori|bad user/i,
    );
    assert.match(
      await refused(url, { username: "nobody", password: "x" }),
      /not authori|bad user/i,
    );
  });

  await using shore = await connect(url, as(SHORE));
  await shore.client.subscribeAsync("vessel/+/sync/#", { qos: 1 });
  await using v1 = await connect(url, as("v1"));
  await using v2 = await connect(url, as("v2"));
  await v1.client.subscribeAsync("vessel/#", { qos: 1 });
  await v2.client.subscribeAsync("vessel/v2/sync/#", { qos: 1 });

  await t.step("a vessel cannot publish into another vessel's topics", async () => {
    const topics = [
      "frames",
      "work_orders",
      "alerts",
      "system/status",
      "catchup/crew",
      "conflicts",
    ];
    for (const topic of topics) {
      assert.equal(await tryPublish(v1, `vessel/v2/sync/${topic}`, `forged ${topic}`), "refused");
    }
    assert.equal(await tryPublish(v1, "vessel/v2/other", "forged outside sync"), "refused");
    assert.equal(await tryPublish(v1, "elsewhere/topic", "forged elsewhere"), "refused");
    assert.equal(await tryPublish(v1, "vessel/v1/sync/work_orders", "v1 sentinel"), "accepted");
    assert.equal(await tryPublish(v1, "vessel/v1/sync/frames", "v1 frame"), "accepted");
    await shore.waitFor("v1 frame");
    assert.deepEqual(payloads(shore), [
      "vessel/v1/sync/work_orders v1 sentinel",
      "vessel/v1/sync/frames v1 frame",
    ]);
  });

  await t.step("a vessel cannot impersonate the shore's acks or catch-up requests", async () => {
    shore.received.length = 0;
    const forged = [
      "vessel/v1/sync/ack",
      "vessel/v2/sync/ack",
      "vessel/v1/sync/catchup/request",
      "vessel/v2/sync/catchup/request",
    ];
    for (const topic of forged) {
      assert.equal(await tryPublish(v1, topic, `forged by v1 on ${topic}`, true), "refused");
    }
    assert.equal(await tryPublish(shore, "vessel/v1/sync/ack", "ack for v1", true), "accepted");
    assert.equal(await tryPublish(shore, "vessel/v2/sync/ack", "ack for v2", true), "accepted");
    await v1.waitFor("ack for v1");
    await v2.waitFor("ack for v2");
    assert.deepEqual(payloads(v1), ["vessel/v1/sync/ack ack for v1"]);
    assert.deepEqual(payloads(v2), ["vessel/v2/sync/ack ack for v2"]);
    // Nor did a forged message become the retained ack a reconnecting vessel reads first.
    await using late = await connect(url, as("v1"));
    await late.client.subscribeAsync("vessel/v1/sync/ack", { qos: 1 });
    await late.waitFor("ack for v1");
    assert.deepEqual(payloads(late), ["vessel/v1/sync/ack ack for v1"]);
  });

  await t.step("a vessel reads neither another vessel's topics nor its own data", async () => {
    v1.received.length = 0;
    for (const topic of ["work_orders", "system/status"]) {
      assert.equal(await tryPublish(v2, `vessel/v2/sync/${topic}`, `v2 ${topic}`), "accepted");
      assert.equal(await tryPublish(v1, `vessel/v1/sync/${topic}`, `v1 ${topic}`), "accepted");
    }
    assert.equal(await tryPublish(shore, "vessel/v2/sync/catchup/request", "req v2"), "accepted");
    assert.equal(await tryPublish(shore, "vessel/v1/sync/catchup/request", "req v1"), "accepted");
    await v1.waitFor("req v1");
    assert.deepEqual(payloads(v1), ["vessel/v1/sync/catchup/request req v1"]);
  });

  await t.step("a vessel cannot read another's down stream or forge shore changes", async () => {
    const down = (p: Probe) => payloads(p).filter((x) => x.includes("/down/"));
    await using shoreAcks = await connect(url, as(SHORE));
    await shoreAcks.client.subscribeAsync("vessel/+/down/#", { qos: 1 });
    await v2.client.subscribeAsync("vessel/+/down/#", { qos: 1 });
    for (const topic of ["frames", "work_orders", "alerts"]) {
      assert.equal(
        await tryPublish(v1, `vessel/v1/down/${topic}`, "forged shore change"),
        "refused",
      );
      assert.equal(
        await tryPublish(v1, `vessel/v2/down/${topic}`, "forged shore change"),
        "refused",
      );
    }
    assert.equal(await tryPublish(v1, "vessel/v2/down/ack", "forged v2 ack", true), "refused");
    assert.equal(
      await tryPublish(v1, "vessel/v2/down/catchup/request", "forged v2 request"),
      "refused",
    );
    assert.equal(await tryPublish(shore, "vessel/v1/down/ack", "shore forged ack"), "refused");
    assert.equal(await tryPublish(v1, "vessel/v1/down/ack", "down ack v1", true), "accepted");
    assert.equal(await tryPublish(v1, "vessel/v1/down/catchup/request", "down req v1"), "accepted");
    // The sentinels: each vessel's own down stream, v2's first.
    assert.equal(await tryPublish(shore, "vessel/v2/down/frames", "down v2"), "accepted");
    assert.equal(await tryPublish(shore, "vessel/v1/down/work_orders", "down v1"), "accepted");
    await v1.waitFor("down v1");
    await v2.waitFor("down v2");
    await shoreAcks.waitFor("down req v1");
    assert.deepEqual(down(v1), ["vessel/v1/down/work_orders down v1"]);
    assert.deepEqual(down(v2), ["vessel/v2/down/frames down v2"]);
    assert.deepEqual(down(shoreAcks), [
      "vessel/v1/down/ack down ack v1",
      "vessel/v1/down/catchup/request down req v1",
    ]);
  });

  await t.step("the shore reads every vessel through a shared subscription too", async () => {
    await using member = await connect(url, as(SHORE));
    await member.client.subscribeAsync("$share/fleet/vessel/+/sync/#", { qos: 1 });
    assert.equal(await tryPublish(v2, "vessel/v2/sync/alerts", "shared v2"), "accepted");
    await member.waitFor("shared v2");
    // (Mosquitto 2.0.11 also hands the retained acks to the new shared subscription.)
    assert.deepEqual(payloads(member).filter((p) => !p.includes("/ack ")), [
      "vessel/v2/sync/alerts shared v2",
    ]);
  });

  await t.step(
    "the shore reads every vessel and writes only acks and catch-up requests",
    async () => {
      await shore.waitFor("v1 work_orders");
      await shore.waitFor("v2 system/status");
      await shore.waitFor("req v2");
      for (const topic of ["vessel/v1/sync/work_orders", "vessel/v1/sync/system/status", "x/y"]) {
        assert.equal(await tryPublish(shore, topic, `shore forged ${topic}`), "refused");
      }
    },
  );
});

Deno.test("shipped broker config: the TLS listener", async (t) => {
  await using pki = await makeTestPki(["v1"]);
  await using broker = await startSecureMosquitto({ pki, users: USERS });
  const ca = await Deno.readTextFile(pki.caCert);

  await t.step("a client trusting the CA connects with its password", async () => {
    await using v1 = await connect(broker.tlsUrl, { ca, username: "v1", password: USERS.v1 });
    await v1.client.subscribeAsync("vessel/v1/sync/ack", { qos: 1 });
    assert.equal(await tryPublish(v1, "vessel/v1/sync/work_orders", "over tls"), "accepted");
    assert.equal(await tryPublish(v1, "vessel/v2/sync/work_orders", "over tls"), "refused");
  });

  await t.step("a client that does not trust the CA refuses the broker", async () => {
    assert.match(
      await refused(broker.tlsUrl, { username: "v1", password: USERS.v1 }),
      /certificate|self.signed|unknown ca|issuer/i,
    );
  });

  await t.step("the TLS listener still needs a password without require_certificate", async () => {
    assert.match(await refused(broker.tlsUrl, { ca }), /not authori/i);
  });
});

Deno.test("shipped broker config: mutual TLS with require_certificate", async (t) => {
  await using pki = await makeTestPki(["v1", SHORE]);
  await using broker = await startSecureMosquitto({ pki, users: USERS, mutualTls: true });
  const ca = await Deno.readTextFile(pki.caCert);
  const client = async (cn: string) => ({
    ca,
    cert: await Deno.readTextFile(pki.clients[cn]!.cert),
    key: await Deno.readTextFile(pki.clients[cn]!.key),
  });

  await t.step("a client certificate signed by the CA connects, its CN is the user", async () => {
    await using shore = await connect(broker.tlsUrl, await client(SHORE));
    await shore.client.subscribeAsync("vessel/+/sync/#", { qos: 1 });
    await using v1 = await connect(broker.tlsUrl, await client("v1"));
    assert.equal(await tryPublish(v1, "vessel/v2/sync/work_orders", "forged"), "refused");
    assert.equal(await tryPublish(v1, "vessel/v1/sync/ack", "forged"), "refused");
    assert.equal(await tryPublish(v1, "vessel/v1/sync/work_orders", "mtls ok"), "accepted");
    await shore.waitFor("mtls ok");
    assert.deepEqual(payloads(shore), ["vessel/v1/sync/work_orders mtls ok"]);
  });

  await t.step("a client without a certificate is refused, even with a password", async () => {
    assert.match(
      await refused(broker.tlsUrl, { ca, username: "v1", password: USERS.v1 }),
      /certificate ?required|handshake/i,
    );
  });

  await t.step("a certificate from another CA is refused", async () => {
    assert.match(
      await refused(broker.tlsUrl, await client("rogue:v1")),
      /unknown ?ca|certificate/i,
    );
  });

  await t.step("the loopback listener still takes passwords", async () => {
    await using v1 = await connect(broker.plainUrl, { username: "v1", password: USERS.v1 });
    assert.equal(await tryPublish(v1, "vessel/v1/sync/work_orders", "plain"), "accepted");
  });
});

Deno.test("shipped broker config: no client takes over another's session on the TLS listener", async (t) => {
  await using pki = await makeTestPki([]);
  await using broker = await startSecureMosquitto({ pki, users: USERS });
  const ca = await Deno.readTextFile(pki.caCert);
  const attempt = async (url: string) => {
    const tls = url.startsWith("mqtts") ? { ca } : {};
    await using victim = await connect(url, {
      ...tls,
      clientId: "bosun-v2",
      username: "v2",
      password: USERS.v2,
    });
    const closed = new Promise<"taken over">((resolve) =>
      victim.client.once("close", () => resolve("taken over"))
    );
    await using intruder = await connect(url, {
      ...tls,
      clientId: "bosun-v2",
      username: "v1",
      password: USERS.v1,
    });
    // After the intruder's round trip the broker has finished with both CONNECTs; then the
    // victim either completes a round trip of its own or has been disconnected.
    await tryPublish(intruder, "vessel/v1/sync/work_orders", "intruder");
    const victimPublish = victim.client.publishAsync("vessel/v2/sync/work_orders", "victim", {
      qos: 1,
    }).then(() => "still connected" as const, () => "taken over" as const);
    return await withDeadline(Promise.race([closed, victimPublish]), "the victim's fate");
  };

  await t.step("over TLS the client id is the username, so the victim stays", async () => {
    assert.equal(await attempt(broker.tlsUrl), "still connected");
  });
  await t.step("on the loopback listener (trusted, local) a takeover still works", async () => {
    // The contrast shows the step above would notice a takeover.
    assert.equal(await attempt(broker.plainUrl), "taken over");
  });
});
