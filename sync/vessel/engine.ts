/**
 * The vessel sync engine: one MQTT session, and the wiring of what runs over it: the publisher
 * draining the change log, shore's acks (acks.ts), presence (presence.ts), catch-up, the down
 * stream (down.ts) and the periodic chores (housekeeping.ts), with the events behind `/health`
 * and `/metrics`.
 */
import { isAckProbe, probeAckTopic } from "./ack-probe.ts";
import type { Config } from "../../config.ts";
import type { Sql } from "../../db/connection.ts";
import type { OutboxGate } from "../../core/outbox-gate.ts";
import type { Entity } from "../../core/entities.ts";
import type { Logger } from "../../core/log.ts";
import type { Metrics } from "../../core/metrics.ts";
import { Hlc } from "../../core/hlc.ts";
import { createDownReceiver, type DownReceiver } from "./down.ts";
import { createDownGapWatch, type DownGapWatch } from "./down-gaps.ts";
import { SyncNotStartedError } from "../../core/errors.ts";
import { type Catchup, createCatchup } from "./catchup.ts";
import { createPublisher, type Publisher, type PublisherEvent } from "./publisher.ts";
import { type AckReceiver, createAckReceiver } from "./acks.ts";
import { createPresence } from "./presence.ts";
import { startHousekeeping } from "./housekeeping.ts";
import { createSession, type Session, type SessionOptions } from "../session.ts";
import type { TlsFiles } from "../tls.ts";
import { catchupRequestSchema, parsePayload, topicsOf } from "../protocol.ts";

/** The engine's typed events. */
export type EngineEvent =
  | { type: "connected"; sessionPresent: boolean }
  | { type: "disconnected"; reason: string }
  | { type: "published"; entity: Entity; qos: 1 | 2; seq: number }
  | { type: "acked"; epoch: string; seq: number; released: number }
  | { type: "new_epoch"; previous: string; epoch: string; released: number }
  | { type: "catchup_published"; published: number; fromSeq: number | null; toSeq: number | null }
  | { type: "error"; where: string; error: unknown };

/** Options for {@linkcode createVesselEngine}. */
export interface VesselEngineOptions {
  sql: Sql;
  config: Config;
  gate: OutboxGate;
  metrics: Metrics;
  log: Logger;
  tls?: TlsFiles;
  /** Publishes awaiting PUBACK at once (default 256). */
  window?: number;
  /** Overrides for the session (tests shorten the back-off). */
  session?: Partial<SessionOptions>;
  /** Re-seed the outbox bound from the database this often (default 60 s). */
  reseedMs?: number;
  /** Prune acknowledged changes past retention this often (default 1 h). */
  pruneMs?: number;
  /** Publisher's safety-net wake-up (default 5 s). */
  pollMs?: number;
  /** The vessel's clock, shared with its record store (roles/vessel.ts). */
  hlc?: Hlc;
  /** How long a gap in the shore's down stream stays before it is asked for (default 2 s). */
  downGapWaitMs?: number;
}

/** The running engine. */
export interface VesselEngine {
  start(): void;
  /** Publishes `offline` (when connected), drains in-flight work, closes the session. */
  stop(): Promise<void>;
  /** True once `start()` ran (the session exists). */
  readonly started: boolean;
  onEvent(fn: (e: EngineEvent) => void): () => void;
  readonly catchup: Catchup;
  readonly session: Session;
  /** The down stream's receiver (undefined before `start()`). */
  readonly down: DownReceiver | undefined;
}

/** Builds the engine; nothing connects until `start()`. */
export function createVesselEngine(options: VesselEngineOptions): VesselEngine {
  const { sql, config, gate, metrics, log } = options;
  const topics = topicsOf(config.vesselId);
  const listeners = new Set<(e: EngineEvent) => void>();
  const emit = (e: EngineEvent) => {
    for (const fn of listeners) {
      try {
        fn(e);
      } catch (err) {
        log.error("Engine event handler failed", { event: e.type, error: err });
      }
    }
  };
  const presence = createPresence({ sql, vesselId: config.vesselId, log });

  let session: Session | undefined;
  let publisher: Publisher | undefined;
  let catchup: Catchup | undefined;
  let down: DownReceiver | undefined;
  let acks: AckReceiver | undefined;
  let downGaps: DownGapWatch | undefined;
  let stopHousekeeping: (() => void) | undefined;
  const notStarted = () => new SyncNotStartedError();
  let probed = false;

  const offs: (() => void)[] = [];

  return {
    get started() {
      return session !== undefined;
    },
    get session() {
      if (!session) throw notStarted();
      return session;
    },
    get down() {
      return down;
    },
    catchup: {
      list: (q) => catchup ? catchup.list(q) : Promise.reject(notStarted()),
      republish: (q) => catchup ? catchup.republish(q) : Promise.reject(notStarted()),
    },
    onEvent(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },

    start() {
      if (session) return;
      const live = createSession({
        mqtt: config.mqtt,
        clientId: `bosun-${config.vesselId}`,
        tls: options.tls,
        will: presence.will,
        log: log.child({ module: "mqtt" }),
        queueDepth: () => gate.pending,
        metrics,
        ...options.session,
      });
      session = live;

      publisher = createPublisher({
        sql,
        session,
        vesselId: config.vesselId,
        log: log.child({ module: "publisher" }),
        window: options.window,
        ackTimeoutMs: config.ackTimeoutS * 1000,
        ackMode: config.ackMode,
        pollMs: options.pollMs,
        linkMode: config.linkMode,
        lingerMs: config.linkLingerMs,
        onEvent: (e) => {
          // The shore may have acked and the ack not reached us: a broker can lose a live
          // message with the subscription that was to carry it (nats-server with
          // consumer_replicas 1 loses the subscription's consumer with its node and never
          // replaces it). SUBSCRIBE again and the broker hands over the retained ack.
          if (e.type === "resending" || e.type === "shore_silent") {
            void live.subscribe(topics.ack, 1).catch(() => {});
          }
          onPublisherEvent(e, { metrics, gate, emit });
        },
      });

      acks = createAckReceiver({
        sql,
        gate,
        publisher,
        log,
        emit,
        onNewEpoch: () => void presence.announce(live),
      });

      catchup = createCatchup({
        sql,
        session,
        vesselId: config.vesselId,
        linkMode: config.linkMode,
        onPublished: (r) => emit({ type: "catchup_published", ...r }),
      });

      down = createDownReceiver({
        sql,
        session,
        vesselId: config.vesselId,
        hlc: options.hlc ?? new Hlc({ origin: "vessel" }),
        log: log.child({ module: "down" }),
        pollMs: options.pollMs,
        metrics,
        onWaiting: () => downGaps?.poke(),
      });
      downGaps = createDownGapWatch({
        sql,
        session,
        vesselId: config.vesselId,
        log: log.child({ module: "down" }),
        waitMs: options.downGapWaitMs,
        onRequest: () => metrics.down.catchupRequests.inc(),
      });

      offs.push(gate.onAdded(() => publisher?.wake()));
      offs.push(session.onMessage((topic, payload) => {
        if (topic === topics.ack) {
          if (!isAckProbe(payload)) acks?.receive(payload);
        } else if (topic === topics.catchupRequest) {
          onCatchupRequest(payload, { catchup: catchup!, log, emit });
        }
      }));
      offs.push(session.onEvent((e) => {
        if (e.type === "connected") {
          void presence.announce(live);
          // Under MQTT 3.1.1 a refused publish is dropped silently: nothing to tell apart.
          if (!probed && config.mqtt.protocolVersion === 5) {
            probed = true;
            void probeAckTopic(live, topics.ack, log);
          }
          emit(e);
        } else if (e.type === "disconnected") emit(e);
      }));
      session.subscribe(topics.ack, 1).catch((err) => log.warn("Subscribe failed", { error: err }));
      session.subscribe(topics.catchupRequest, 1).catch((err) =>
        log.warn("Subscribe failed", { error: err })
      );
      stopHousekeeping = startHousekeeping({
        sql,
        gate,
        log,
        retentionDays: config.catchupRetentionDays,
        reseedMs: options.reseedMs,
        pruneMs: options.pruneMs,
      });
    },

    async stop() {
      stopHousekeeping?.();
      for (const off of offs) off();
      if (!session || !publisher) return;
      await publisher.stop();
      downGaps?.stop();
      await down?.stop();
      await acks?.settled();
      await presence.leave(session);
      await session.close();
    },
  };
}

/** A publisher's event as metrics, the outbox bound and engine events. */
function onPublisherEvent(
  e: PublisherEvent,
  { metrics, gate, emit }: { metrics: Metrics; gate: OutboxGate; emit: (e: EngineEvent) => void },
) {
  if (e.type === "published") {
    metrics.published.inc({ entity: e.entity, qos: String(e.qos) });
    emit(e);
  } else if (e.type === "publish_failed") {
    metrics.publishFailures.inc();
  } else if (e.type === "acked_by_broker") {
    gate.released(e.released);
  }
}

/** Shore's catch-up request (a gap it wants filled): re-published; a malformed one reported. */
function onCatchupRequest(
  payload: Uint8Array,
  { catchup, log, emit }: { catchup: Catchup; log: Logger; emit: (e: EngineEvent) => void },
) {
  const parsed = parsePayload(payload, catchupRequestSchema);
  if (!parsed) {
    log.warn("Malformed catch-up request dropped", { bytes: payload.length });
    emit({ type: "error", where: "catchup_request", error: "malformed request" });
    return;
  }
  catchup.republish(parsed).catch((err) => {
    log.warn("Catch-up request failed", { error: err });
    emit({ type: "error", where: "catchup_request", error: err });
  });
}
