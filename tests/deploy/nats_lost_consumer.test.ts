/**
 * The three-node NATS cluster run with `consumer_replicas: 1` (deploy/nats/nats.conf ships 3):
 * each subscription's JetStream consumer then lives on one node, dies with it, and nats-server
 * 2.9.10 never replaces it for a session that resumes (it reuses the consumer named in the
 * session record), so that subscription delivers nothing live until the node is back. The
 * vessel's ack subscription is the one its changes wait on: the vessel SUBSCRIBEs again when
 * it re-sends, and the broker hands over the retained ack (docs/scaling.md).
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { type NatsCluster, SHORE_USER, startNatsCluster } from "../support/nats.ts";
import { freshDatabase } from "../support/pg.ts";
import { startVessel, type TestVessel } from "../support/vessel.ts";
import { startShore, type TestShore } from "../support/fleet.ts";
import { waitUntil } from "../support/wait.ts";
import { programMissing } from "../support/programs.ts";
import { vesselState } from "../../db/vessel/outbox.ts";
import { ackPayload, topicsOf } from "../../sync/protocol.ts";

const natsMissing = await programMissing("nats-server");
if (natsMissing) console.warn('nats-server is absent (Debian package "nats-server"): skipped');

const VESSEL = "lost-ack-1";

/** The node (index) whose JetStream consumer serves the subscription to `subject`, if any. */
async function consumerNode(cluster: NatsCluster, subject: string): Promise<number | undefined> {
  type Jsz = {
    account_details?: {
      stream_detail?: {
        consumer_detail?: { config?: { filter_subject?: string }; cluster?: { leader?: string } }[];
      }[];
    }[];
  };
  for (const node of cluster.nodes.filter((n) => n.running)) {
    const res = await fetch(
      `http://127.0.0.1:${node.httpPort}/jsz?accounts=true&streams=true&consumers=true&config=true`,
      { signal: AbortSignal.timeout(2_000) },
    ).catch(() => undefined);
    if (!res?.ok) continue;
    const jsz = await res.json() as Jsz;
    for (const stream of jsz.account_details?.flatMap((a) => a.stream_detail ?? []) ?? []) {
      const found = stream.consumer_detail?.find((c) =>
        c.config?.filter_subject === `$MQTT.msgs.${subject}`
      );
      const leader = found?.cluster?.leader;
      if (leader) return cluster.nodes.findIndex((n) => n.name === leader);
    }
  }
  return undefined;
}

Deno.test({
  name: "consumer_replicas 1: a vessel whose ack subscription died with a NATS node gets the " +
    "shore's ack when it re-sends",
  ignore: natsMissing,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using cluster = await startNatsCluster({
      vessels: [VESSEL],
      mqtt: { consumer_replicas: "1" },
    });
    await using db = await freshDatabase();
    const start = (node: number) =>
      startVessel({
        sql: db.sql,
        brokerUrl: cluster.nodes[node]!.mqttUrl,
        env: {
          VESSEL_ID: VESSEL,
          MQTT_PROTOCOL: "3.1.1",
          MQTT_USERNAME: VESSEL,
          MQTT_PASSWORD: cluster.passwords[VESSEL]!,
        },
      });
    let vessel: TestVessel | undefined = await start(0);
    try {
      const ackSubject = `vessel.${VESSEL}.sync.ack`;
      let doomed: number | undefined;
      await waitUntil(
        async () => (doomed = await consumerNode(cluster, ackSubject)) !== undefined,
        "the vessel's ack subscription has its JetStream consumer",
      );
      // The vessel must stay on a surviving node (bosun takes one broker URL): when the consumer
      // landed on the vessel's own node, the same session resumes on another.
      let on = 0;
      if (doomed === 0) {
        await vessel[Symbol.asyncDispose]();
        vessel = undefined;
        on = 1;
        vessel = await start(on);
      }
      const shoreNode = [0, 1, 2].find((i) => i !== doomed)!;

      await cluster.kill(doomed!);
      await cluster.waitReady(60_000, { replicasCurrent: false });
      await waitUntil(
        async () => (await vessel!.report()).status === "connected",
        `the vessel is connected to ${cluster.nodes[on]!.name}`,
      );
      await vessel.records.create("work_orders", { title: "after the kill", equipmentId: "e" });
      await waitUntil(
        async () => (await vesselState(db.sql)).publishedSeq >= 1,
        "the vessel's change is PUBACKed",
      );
      const { epoch, lastSeq } = await vesselState(db.sql);
      assert.equal(lastSeq, 1);

      // The shore's ack, retained, published after the vessel subscribed: its live copy would
      // ride the dead consumer.
      const shore = await mqtt.connectAsync(cluster.nodes[shoreNode]!.mqttUrl, {
        protocolVersion: 4,
        clientId: "bosun-test-shore",
        username: SHORE_USER,
        password: cluster.passwords[SHORE_USER],
      });
      try {
        await shore.publishAsync(topicsOf(VESSEL).ack, ackPayload({ epoch, seq: 1 }), {
          qos: 1,
          retain: true,
        });
      } finally {
        await shore.endAsync();
      }
      await waitUntil(
        async () => (await vessel!.report()).lastAckedSeq === 1,
        "the vessel takes the shore's ack (ACK_TIMEOUT_S=1: it re-sends and SUBSCRIBEs again)",
        30_000,
      );
    } finally {
      await vessel?.[Symbol.asyncDispose]();
    }
  },
});

Deno.test({
  name: "consumer_replicas 1: a shore whose fleet subscription died with a NATS node renews it " +
    "and takes the fleet's changes again",
  ignore: natsMissing,
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const vesselId = "deaf-shore-1";
    await using cluster = await startNatsCluster({
      vessels: [vesselId],
      mqtt: { consumer_replicas: "1" },
    });
    await using shoreDb = await freshDatabase();
    await using vesselDb = await freshDatabase();
    const startAt = (node: number) =>
      startShore(cluster.nodes[node]!.mqttUrl, shoreDb.sql, {
        clientId: "bosun-shore-t",
        hearingQuietMs: 1_000,
        env: {
          MQTT_PROTOCOL: "3.1.1",
          MQTT_USERNAME: SHORE_USER,
          MQTT_PASSWORD: cluster.passwords[SHORE_USER]!,
        },
      });
    let shore: TestShore | undefined = await startAt(0);
    let vessel: TestVessel | undefined;
    try {
      let doomed: number | undefined;
      await waitUntil(
        async () => (doomed = await consumerNode(cluster, "vessel.*.sync.>")) !== undefined,
        "the shore's fleet subscription has its JetStream consumer",
      );
      // The shore must stay on a surviving node: when the consumer landed on its own node, the
      // same session resumes on another.
      if (doomed === 0) {
        await shore.close();
        shore = undefined;
        shore = await startAt(1);
      }
      const on = [0, 1, 2].find((i) => i !== doomed)!;
      vessel = await startVessel({
        sql: vesselDb.sql,
        brokerUrl: cluster.nodes[on]!.mqttUrl,
        env: {
          VESSEL_ID: vesselId,
          MQTT_PROTOCOL: "3.1.1",
          MQTT_USERNAME: vesselId,
          MQTT_PASSWORD: cluster.passwords[vesselId]!,
        },
      });
      await vessel.records.create("work_orders", { title: "before", equipmentId: "e" });
      await waitUntil(
        async () => (await vessel!.report()).lastAckedSeq === 1,
        "the shore acknowledges the change made before the kill",
      );

      await cluster.kill(doomed!);
      await cluster.waitReady(60_000, { replicasCurrent: false });
      await vessel.records.create("work_orders", { title: "after", equipmentId: "e" });
      await waitUntil(
        async () => (await vessel!.report()).lastAckedSeq === 2,
        "the shore takes and acknowledges the change made after the kill",
        60_000,
      );
      const [pos] = await shoreDb.sql<{ last_seq: number; applied_count: number }[]>`
        select last_seq::int, applied_count::int from shore_positions`;
      assert.deepEqual({ ...pos }, { last_seq: 2, applied_count: 2 });
    } finally {
      await vessel?.[Symbol.asyncDispose]();
      await shore?.close();
    }
  },
});
