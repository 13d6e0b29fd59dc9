/**
 * Simulated vessels for shore tests and the fleet bench: valid envelopes made by hand (with
 * records that evolve through creates, updates and deletes), a shore ingest on a real broker,
 * and a polling wait.
 */
import mqtt from "mqtt";
import type { Envelope } from "../../sync/protocol.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { topicsOf } from "../../sync/protocol.ts";
import { createSession, type Session } from "../../sync/session.ts";
import { createShore, type Shore, type ShoreOptions } from "../../sync/shore/ingest.ts";
import { createMetrics, type Metrics } from "../../core/metrics.ts";
import { parseConfig } from "../../config.ts";
import { silentLogger } from "../../core/log.ts";
import type { Sql } from "../../db/connection.ts";
import { waitUntil } from "./wait.ts";

/** A vessel that makes envelopes: seq 1, 2, … in one epoch, records kept as the API would. */
export class SimulatedVessel {
  readonly epoch: string;
  #seq = 0;
  /** The live records, as the vessel's API would return them (by entity/id). */
  readonly records = new Map<string, { entity: Entity; record: ApiRecord }>();

  constructor(readonly vesselId: string, epoch: string = crypto.randomUUID()) {
    this.epoch = epoch;
  }

  /** The next seq to be handed out. */
  get seq(): number {
    return this.#seq;
  }

  #envelope(entity: Entity, operation: Envelope["operation"], data: ApiRecord): Envelope {
    return {
      type: "data_change",
      entity,
      operation,
      data: { ...data },
      timestamp: data.updatedAt,
      messageId: crypto.randomUUID(),
      vesselId: this.vesselId,
      epoch: this.epoch,
      seq: ++this.#seq,
    };
  }

  /** Creates a work order (or an alert for `entity: "alerts"`). */
  create(entity: Entity = "work_orders"): Envelope {
    const now = new Date().toISOString();
    const fields: Record<string, unknown> = entity === "alerts"
      ? {
        equipmentId: "eq-1",
        severity: "warning",
        message: "Oil pressure low",
        acknowledged: false,
      }
      : { title: `Task ${this.#seq + 1}`, equipmentId: "eq-1", status: "open", priority: 3 };
    const record: ApiRecord = {
      id: crypto.randomUUID(),
      version: 1,
      createdAt: now,
      updatedAt: now,
      ...fields,
    };
    this.records.set(`${entity}/${record.id}`, { entity, record });
    return this.#envelope(entity, "create", record);
  }

  /** Updates a live record (priority for work orders, acknowledged for alerts). */
  update(key: string): Envelope {
    const held = this.records.get(key)!;
    const r = held.record;
    const patch = held.entity === "alerts"
      ? { acknowledged: true }
      : { priority: (Number(r.priority) % 5) + 1 };
    const next = { ...r, ...patch, version: r.version + 1, updatedAt: new Date().toISOString() };
    held.record = next;
    return this.#envelope(held.entity, "update", next);
  }

  /** Deletes a live record. */
  remove(key: string): Envelope {
    const held = this.records.get(key)!;
    this.records.delete(key);
    const r = held.record;
    const next = { ...r, version: r.version + 1, updatedAt: new Date().toISOString() };
    return this.#envelope(held.entity, "delete", next);
  }

  /** A mixed change: mostly creates and updates, some deletes, a few alerts. */
  mixed(random = Math.random): Envelope {
    const keys = [...this.records.keys()];
    const roll = random();
    if (keys.length === 0 || roll < 0.45) {
      return this.create(roll < 0.05 ? "alerts" : "work_orders");
    }
    const key = keys[Math.floor(random() * keys.length)]!;
    return roll < 0.85 ? this.update(key) : this.remove(key);
  }
}

/** The topic an envelope goes to. */
export const topicOf = (e: Envelope): string =>
  e.type === "catchup"
    ? topicsOf(e.vesselId).catchup(e.entity)
    : topicsOf(e.vesselId).data(e.entity);

/** A raw mqtt.js client (MQTT 5) for hand-made publishes. */
export function rawClient(url: string): Promise<mqtt.MqttClient> {
  return mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
}

/** Publishes envelopes in order at QoS 1. */
export async function publishAll(client: mqtt.MqttClient, envelopes: Envelope[]): Promise<void> {
  await Promise.all(
    envelopes.map((e) => client.publishAsync(topicOf(e), JSON.stringify(e), { qos: 1 })),
  );
}

/** A shore ingest over a real session, with short timings for tests. */
export interface TestShore {
  shore: Shore;
  session: Session;
  metrics: Metrics;
  close(): Promise<void>;
}

/** Starts a shore ingest on `url` against `sql` and waits until it is connected. */
export async function startShore(
  url: string,
  sql: Sql,
  options: Partial<ShoreOptions> & { clientId?: string; env?: Record<string, string> } = {},
): Promise<TestShore> {
  const config = parseConfig({ MQTT_BROKER_URL: url, MQTT_KEEPALIVE_S: "5", ...options.env });
  const metrics = createMetrics();
  const session = createSession({
    mqtt: config.mqtt,
    clientId: options.clientId ?? `bosun-shore-t-${crypto.randomUUID().slice(0, 8)}`,
    log: silentLogger,
    backoff: { baseMs: 50, ceilingMs: 500 },
    metrics,
  });
  const shore = createShore({
    sql,
    session,
    log: silentLogger,
    metrics: metrics.shore,
    gapWaitMs: 300,
    gapMaxBackoffMs: 2_000,
    ackDebounceMs: 50,
    ...options,
  });
  await waitUntil(() => session.connected, "the shore session connects");
  await shore.start();
  return {
    shore,
    session,
    metrics,
    async close() {
      await shore.close();
      await session.close();
    },
  };
}

/** The value of a counter or gauge without labels (or with the given labels). */
export async function valueOf(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  const hit = values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return hit?.value ?? 0;
}
