/**
 * A vessel engine on a fresh database and a broker URL of the test's choosing, plus a
 * "shore" observer that records every envelope it receives (with its QoS).
 */
import { isAckProbe } from "../../sync/vessel/ack-probe.ts";
import mqtt from "mqtt";
import { parseConfig } from "../../config.ts";
import { decodeFrame } from "../../sync/frame.ts";
import type { Sql } from "../../db/connection.ts";
import type { OutboxGate } from "../../core/outbox-gate.ts";
import { createRecordStore, type RecordStore } from "../../db/vessel/records.ts";
import { silentLogger } from "../../core/log.ts";
import { createMetrics, type Metrics } from "../../core/metrics.ts";
import type { VesselEngine } from "../../sync/vessel/engine.ts";
import { createVesselRole } from "../../roles/vessel.ts";
import type { Envelope } from "../../sync/protocol.ts";
import { withDeadline } from "./wait.ts";

/** A started engine and what it was built from. */
export interface TestVessel {
  vesselId: string;
  engine: VesselEngine;
  /** The role's live `/health` fields, as `GET /health` reports them. */
  report(): Promise<Record<string, unknown>>;
  /** Sets the `/metrics` gauges as a scrape does. */
  refresh(): Promise<void>;
  records: RecordStore;
  gate: OutboxGate;
  metrics: Metrics;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Builds and starts a vessel role (roles/vessel.ts, as main.ts does) with its engine; `env`
 * overrides the configuration (strings, as the env).
 */
export async function startVessel(
  options: { sql: Sql; brokerUrl: string; env?: Record<string, string>; window?: number },
): Promise<TestVessel> {
  const vesselId = `v-${crypto.randomUUID().slice(0, 8)}`;
  const config = parseConfig({
    VESSEL_ID: vesselId,
    MQTT_BROKER_URL: options.brokerUrl,
    ACK_TIMEOUT_S: "1",
    ...options.env,
  });
  const metrics = createMetrics();
  const role = await createVesselRole({
    sql: options.sql,
    config,
    metrics,
    log: silentLogger,
    engine: {
      window: options.window,
      session: { backoff: { baseMs: 50, ceilingMs: 300 } },
      pollMs: 200,
    },
  });
  await role.start();
  return {
    vesselId,
    engine: role.engine!,
    report: role.report,
    refresh: role.refresh,
    gate: role.gate,
    metrics,
    records: createRecordStore({ sql: options.sql, gate: role.gate }),
    [Symbol.asyncDispose]: () => role.close(),
  };
}

/** One received message. */
export interface Received {
  topic: string;
  qos: number;
  retain: boolean;
  envelope: Envelope;
}

/** A subscriber that records what arrives under `filter`. */
export interface Observer {
  received: Received[];
  client: mqtt.MqttClient;
  /**
   * Resolves once `pred` holds over the received messages (checked on every arrival); fails
   * naming `what` at the deadline.
   */
  until(pred: (r: Received[]) => boolean, what: string, deadlineMs?: number): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Connects a plain mqtt.js subscriber (QoS 2 subscription, so the publish QoS is kept). */
export async function observe(url: string, filter: string): Promise<Observer> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 100 });
  const received: Received[] = [];
  const waiters = new Set<() => void>();
  client.on("message", (topic, payload, packet) => {
    // The vessel's start-up probe of its ack topic (sync/vessel/ack-probe.ts) is no change.
    if (isAckProbe(payload)) return;
    // A frame (LINK_MODE=frames) counts as the envelopes it carries, each under its topic.
    if (topic.endsWith("/frames")) {
      const frame = decodeFrame(payload);
      if (!frame.ok) return;
      for (const envelope of frame.envelopes) {
        received.push({ topic, qos: packet.qos, retain: packet.retain, envelope });
      }
      for (const w of waiters) w();
      return;
    }
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload.toString());
    } catch {
      return;
    }
    received.push({ topic, qos: packet.qos, retain: packet.retain, envelope });
    for (const w of waiters) w();
  });
  const subscribe = () => client.subscribeAsync(filter, { qos: 2 });
  client.on("connect", () => void subscribe().catch(() => {}));
  await subscribe();
  return {
    received,
    client,
    until(pred, what, deadlineMs) {
      return withDeadline(
        new Promise((resolve) => {
          const check = () => {
            if (pred(received)) {
              waiters.delete(check);
              resolve();
            }
          };
          waiters.add(check);
          check();
        }),
        what,
        deadlineMs,
      );
    },
    async [Symbol.asyncDispose]() {
      await client.endAsync(true);
    },
  };
}

/** Publishes shore's retained ack for a vessel. */
export async function ack(url: string, vesselId: string, epoch: string, seq: number) {
  const c = await mqtt.connectAsync(url);
  await c.publishAsync(
    `vessel/${vesselId}/sync/ack`,
    JSON.stringify({ epoch, seq }),
    { qos: 1, retain: true },
  );
  await c.endAsync();
}
