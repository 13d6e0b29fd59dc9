/**
 * The three-node NATS cluster of deploy/nats/, started from its shipped configuration: MQTT
 * 3.1.1 clients (mqtt.js, protocolVersion 4) on different nodes reach each other, the per-vessel
 * permissions hold (a vessel cannot write into another vessel's subjects, forge an ack, or read
 * what is not its own), and a retained ack and a persistent session survive kill -9 of a node.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { type NatsCluster, SHORE_USER, startNatsCluster } from "../support/nats.ts";
import { waitUntil } from "../support/wait.ts";
import { programMissing } from "../support/programs.ts";

const natsMissing = await programMissing("nats-server");
if (natsMissing) console.warn('nats-server is absent (Debian package "nats-server"): skipped');

/** A received message. */
interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

/** An MQTT 3.1.1 client that records what it receives. */
interface Client {
  mqtt: mqtt.MqttClient;
  received: Received[];
  sessionPresent: boolean;
}

/**
 * Connects `user` to node `node` over MQTT 3.1.1, retrying until `timeoutMs`: right after a
 * node is killed the MQTT streams elect new leaders and a CONNECT may be refused meanwhile.
 */
async function connect(
  cluster: NatsCluster,
  node: number,
  user: string,
  clientId: string,
  { clean = false, timeoutMs = 30_000 } = {},
): Promise<Client> {
  const target = cluster.nodes[node]!;
  let connected: Client | undefined;
  let lastError: unknown;
  const attempt = async () => {
    const received: Received[] = [];
    const client = mqtt.connect(target.mqttUrl, {
      protocolVersion: 4,
      clientId,
      clean,
      username: user,
      password: cluster.passwords[user],
      reconnectPeriod: 0,
      connectTimeout: 10_000,
    });
    client.on("message", (topic, payload, packet) => {
      received.push({ topic, payload: new TextDecoder().decode(payload), retain: packet.retain });
    });
    try {
      const sessionPresent = await new Promise<boolean>((resolve, reject) => {
        client.once("connect", (connack) => resolve(connack.sessionPresent));
        client.once("error", reject);
        client.once("close", () => reject(new Error("closed before CONNACK")));
      });
      connected = { mqtt: client, received, sessionPresent };
      return true;
    } catch (err) {
      lastError = err;
      await client.endAsync(true);
      return false;
    }
  };
  await waitUntil(attempt, `${user} (${clientId}) connects to ${target.name}`, timeoutMs, 250)
    .catch(async (err: Error) => {
      throw new Error(`${err.message}: ${lastError}\n${await cluster.logs()}`);
    });
  return connected!;
}

/** True when SUBSCRIBE to `filter` is refused (SUBACK 0x80; mqtt.js rejects then). */
async function subscribeRefused(client: Client, filter: string): Promise<boolean> {
  try {
    const granted = await client.mqtt.subscribeAsync(filter, { qos: 1 });
    return granted.every((g) => g.qos === 128);
  } catch (err) {
    if ((err as Error).message.includes("Subscribe error")) return true;
    throw err;
  }
}

/**
 * Subscribes, retrying a refusal until `timeoutMs`: just after a node is killed the
 * consumer behind a new subscription may not be creatable yet (SUBACK 0x80).
 */
async function subscribe(
  client: Client,
  filter: string,
  qos: 0 | 1 = 1,
  timeoutMs = 30_000,
): Promise<void> {
  let lastError: unknown;
  const attempt = () =>
    client.mqtt.subscribeAsync(filter, { qos }).then(() => true, (err) => {
      lastError = err;
      return false;
    });
  await waitUntil(attempt, `a subscription to ${filter} is granted`, timeoutMs, 250)
    .catch((err: Error) => {
      throw new Error(`${err.message}: ${lastError}`);
    });
}

/** Sends a plain NATS CONNECT as `user` and returns the server's first answer after INFO. */
async function plainNatsConnect(port: number, user: string, pass: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const connect = JSON.stringify({ user, pass, verbose: false, pedantic: false });
    await conn.write(new TextEncoder().encode(`CONNECT ${connect}\r\nPING\r\n`));
    let text = "";
    const buf = new Uint8Array(4096);
    const deadline = Date.now() + 10_000;
    // INFO comes first; the answer to CONNECT+PING is -ERR or PONG.
    while (!/(-ERR[^\r]*|PONG)\r\n/.test(text)) {
      if (Date.now() > deadline) throw new Error(`No answer to CONNECT from NATS: ${text}`);
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return text.match(/-ERR[^\r]*|PONG/)?.[0] ?? `connection closed: ${text}`;
  } finally {
    conn.close();
  }
}

Deno.test({
  name: "NATS cluster from deploy/nats: vessel permissions hold and a node's kill -9 loses no " +
    "retained ack or persistent session",
  ignore: natsMissing,
  async fn(t) {
    await using cluster = await startNatsCluster();
    const clients: Client[] = [];
    const open = async (...args: Parameters<typeof connect>) => {
      const c = await connect(...args);
      clients.push(c);
      return c;
    };
    try {
      const shore = await open(cluster, 0, SHORE_USER, "bosun-shore");
      await shore.mqtt.subscribeAsync("vessel/+/sync/#", { qos: 1 });
      const vessel = await open(cluster, 1, "vessel-1", "bosun-vessel-1");
      const shoreGot = (topic: string, payload?: string) =>
        shore.received.some((m) =>
          m.topic === topic && (payload === undefined || m.payload === payload)
        );

      await t.step("a vessel's change on one node reaches the shore on another", async () => {
        await vessel.mqtt.publishAsync("vessel/vessel-1/sync/frames", "frame-1", { qos: 1 });
        await waitUntil(
          () => shoreGot("vessel/vessel-1/sync/frames", "frame-1"),
          "the shore on nats-1 receives vessel-1's frame published on nats-2",
          20_000,
        );
      });

      await t.step(
        "a vessel cannot publish into another vessel's subjects nor forge shore messages",
        async () => {
          const forged = [
            "vessel/vessel-2/sync/frames",
            "vessel/vessel-2/sync/system/status",
            "vessel/vessel-2/sync/catchup/work_orders",
            "vessel/vessel-1/sync/ack",
            "vessel/vessel-1/sync/catchup/request",
            "vessel/vessel-2/down/ack",
          ];
          for (const topic of forged) {
            // NATS drops the message but still answers PUBACK (MQTT 3.1.1 cannot say refused).
            await vessel.mqtt.publishAsync(topic, "forged", { qos: 1 });
          }
          assert.ok(vessel.mqtt.connected, "NATS closed the vessel's connection on a violation");
          // Messages of one connection are stored in order: once this one is delivered, any of
          // the forged ones that had been let through would have been delivered before it.
          await vessel.mqtt.publishAsync("vessel/vessel-1/sync/frames", "after-forgeries", {
            qos: 1,
          });
          await waitUntil(
            () => shoreGot("vessel/vessel-1/sync/frames", "after-forgeries"),
            "the shore receives the vessel's message sent after the forged ones",
            20_000,
          );
          const leaked = shore.received.filter((m) => m.payload === "forged");
          assert.deepEqual(leaked, [], "the shore received forged messages");
          const log = await cluster.log(1);
          for (const topic of forged) {
            const subject = topic.replaceAll("/", ".");
            assert.ok(
              log.includes(`Publish Violation - User "vessel-1", Subject "${subject}"`),
              `nats-2 did not log the refused publish to ${subject}`,
            );
          }
        },
      );

      await t.step(
        "a vessel cannot read another vessel's subjects or the broker's deliveries",
        async () => {
          for (
            const filter of [
              "vessel/vessel-2/sync/ack",
              "vessel/vessel-2/down/frames",
              "vessel/+/sync/#",
              "vessel/vessel-1/sync/frames", // its own data: nothing on board needs it
              "$MQTT/sub/+", // the QoS 1 delivery subjects every user may receive on
            ]
          ) {
            assert.ok(
              await subscribeRefused(vessel, filter),
              `vessel-1 may subscribe to ${filter}`,
            );
          }
          assert.ok(vessel.mqtt.connected);
          const granted = await vessel.mqtt.subscribeAsync("vessel/vessel-1/sync/ack", { qos: 1 });
          assert.deepEqual(granted.map((g) => g.qos), [1]);
        },
      );

      await t.step("vessel and shore users cannot connect as plain NATS clients", async () => {
        for (const user of ["vessel-1", SHORE_USER]) {
          const answer = await plainNatsConnect(
            cluster.nodes[0]!.clientPort,
            user,
            cluster.passwords[user]!,
          );
          assert.match(answer, /^-ERR 'Authorization Violation'/, `${user}: ${answer}`);
        }
      });

      await t.step(
        "a retained ack and a persistent session survive kill -9 of a node",
        async () => {
          // The vessel's session (clean: false) holds its ack and catch-up request
          // subscriptions; it goes offline, and the shore sends it both.
          await vessel.mqtt.subscribeAsync("vessel/vessel-1/sync/catchup/request", { qos: 1 });
          await vessel.mqtt.endAsync();
          const ack = JSON.stringify({ epoch: "e1", seq: 41 });
          const request = JSON.stringify({ since: 7 });
          await shore.mqtt.publishAsync("vessel/vessel-1/sync/ack", ack, { qos: 1, retain: true });
          await shore.mqtt.publishAsync("vessel/vessel-1/sync/catchup/request", request, {
            qos: 1,
          });

          // Kill the node that leads the stream holding the queued QoS 1 messages (if the
          // monitoring endpoint names it). The vessel comes back on a node that already served
          // MQTT: a node's first MQTT client makes it create a replicated consumer, which waits
          // while JetStream still counts the dead node (seen: 9-22 s of refused CONNECTs).
          const leader = await cluster.streamLeader("$MQTT_msgs");
          const victim = leader ?? 1;
          const survivor = victim === 0 ? 1 : 0;
          const [victimName, survivorName] = [victim, survivor].map((i) => cluster.nodes[i]!.name);
          await cluster.kill(victim);
          const killedAt = Date.now();
          await cluster.waitReady(30_000);

          const back = await open(cluster, survivor, "vessel-1", "bosun-vessel-1");
          assert.equal(back.sessionPresent, true, "the session was lost with the node");
          const has = (c: Client, topic: string, payload: string) =>
            c.received.some((m) => m.topic === topic && m.payload === payload);
          // What bosun relies on: the session survives, and the retained ack is there when the
          // vessel subscribes again (it re-subscribes on every connect). Whether NATS also
          // hands over the QoS 1 request queued in the session is NATS's business: in about 55
          // runs it failed to within 60 s twice, and bosun does not need it (the shore asks for
          // a gap again). It is reported, not required, so this test cannot flake on it.
          await subscribe(back, "vessel/vessel-1/sync/ack", 0);
          await waitUntil(
            () => has(back, "vessel/vessel-1/sync/ack", ack),
            `the vessel back on ${survivorName} gets the retained ack after ${victimName} was killed`,
            60_000,
          ).catch(async (err: Error) => {
            const got = back.received.map((m) => `${m.topic} ${m.payload}`).join(", ");
            throw new Error(`${err.message}; it got: ${got || "nothing"}\n${await cluster.logs()}`);
          });
          const queuedArrived = has(back, "vessel/vessel-1/sync/catchup/request", request);
          const backAfter = Date.now() - killedAt;

          const fresh = await open(cluster, survivor, "vessel-1", "vessel-1-check", {
            clean: true,
          });
          // QoS 0: a QoS 1 subscription made while a node is down creates a consumer whose
          // replica on that node may never catch up after it returns (seen with 2.9.10: /healthz
          // on the restarted node reported it "not current" for over 120 s). Retained messages
          // reach QoS 0 subscribers all the same.
          await subscribe(fresh, "vessel/vessel-1/sync/ack", 0);
          await waitUntil(
            () => fresh.received.some((m) => m.retain && m.payload === ack),
            `a new subscriber on ${survivorName} gets the retained ack after the kill`,
            30_000,
          );

          // The killed node comes back, catches up, and serves the retained ack too.
          await cluster.restart(victim);
          // Serving, not every replica caught up: see waitReady in tests/support/nats.ts.
          await cluster.waitReady(30_000, { replicasCurrent: false });
          const again = await open(cluster, victim, "vessel-1", "vessel-1-check-2", {
            clean: true,
          });
          await subscribe(again, "vessel/vessel-1/sync/ack");
          await waitUntil(
            () => again.received.some((m) => m.retain && m.payload === ack),
            `the restarted ${victimName} serves the retained ack`,
            30_000,
          );
          console.log(
            `killed ${victimName} (${
              leader === undefined ? "leader unknown" : "$MQTT_msgs leader"
            }); ` +
              `the retained ack reached the vessel on ${survivorName} ${backAfter} ms after the kill; ` +
              `the request queued in its session ${
                queuedArrived ? "arrived too" : "had not arrived"
              }`,
          );
        },
      );
    } finally {
      await Promise.all(clients.map((c) => c.mqtt.endAsync(true)));
    }
  },
});
