/**
 * The shore role's ingest: subscribes to the fleet's sync topics, validates every message and
 * hands envelopes to the batch queue (sync/shore/batches.ts), which writes them
 * (sync/shore/batch-writer.ts) through the inbox (db/shore/inbox.ts, exactly once and in seq
 * order); acks what is applied
 * (sync/shore/acks.ts), asks vessels to re-send what a gap holds back (sync/shore/gaps.ts),
 * and records presence (sync/shore/presence.ts).
 *
 * Nothing here decides "applied" from memory: acks and gap requests are read from the
 * database, so they are right across restarts and with several shore processes.
 */
import type { Sql } from "../../db/connection.ts";
import type { MessageMeta, Session } from "../session.ts";
import type { Logger } from "../../core/log.ts";
import type { ShoreMetrics } from "../../core/metrics.ts";
import {
  catchupRequestPayload,
  FLEET_FILTER,
  FLEET_STATUS_FILTER,
  sharedFilter,
  topicsOf,
} from "../protocol.ts";
import { classify, type MalformedReason } from "./classify.ts";
import { DEFAULT_LIMITS, type IngestLimits } from "../../db/shore/inbox.ts";
import { GapMonitor } from "./gaps.ts";
import { BatchQueue } from "./batches.ts";
import { BatchWriter } from "./batch-writer.ts";
import { EpochAdmission } from "./epochs.ts";
import { AckPublisher } from "./acks.ts";
import { PresenceRecorder } from "./presence.ts";
import { type Hearing, watchHearing } from "./hearing.ts";

/** Options for {@linkcode createShore}; the timings default to production values. */
export interface ShoreOptions {
  sql: Sql;
  session: Session;
  log: Logger;
  metrics: ShoreMetrics;
  /** `SHORE_SHARED_GROUP`: subscribe as `$share/<group>/…`. */
  sharedGroup?: string;
  /** How long envelopes are gathered before a batch is written. */
  batchDelayMs?: number;
  /** Envelopes per transaction at most. */
  maxBatch?: number;
  /** Transactions in flight at once (one per vessel at a time). */
  concurrency?: number;
  /** Envelopes held in memory at most; past it new ones are shed (vessels re-send them). */
  maxBuffered?: number;
  /** Envelopes of one vessel held in memory while others need the room (so one vessel cannot
   * shed another's); past it only while the shore holds less than `maxBuffered` minus this. */
  maxBufferedPerVessel?: number;
  /** Acks are published at most this often per vessel. */
  ackDebounceMs?: number;
  /** A gap that has not moved for this long is asked for. */
  gapWaitMs?: number;
  /** Longest wait between two catch-up requests for one vessel. */
  gapMaxBackoffMs?: number;
  /** A database call still unanswered after this is given up (and retried where it matters). */
  writeTimeoutMs?: number;
  /** What one vessel may park ashore (db/shore/inbox.ts). */
  limits?: IngestLimits;
  /**
   * Silence on the fleet subscription before the shore probes it, and renews it when the probe
   * does not come back either (sync/shore/hearing.ts); not with a shared subscription, where the
   * probe may go to another instance.
   */
  hearingQuietMs?: number;
}

/** A running shore ingest. */
export interface Shore {
  /** Subscribes; messages flow from then on. */
  start(): Promise<void>;
  /** Envelopes received and not yet written. */
  readonly buffered: number;
  /** Stops timers, writes what is buffered, publishes the last acks. */
  close(): Promise<void>;
}

/** Builds the shore ingest over a session and a database. */
export function createShore(options: ShoreOptions): Shore {
  const {
    sql,
    session,
    log,
    metrics,
    sharedGroup,
    batchDelayMs = 5,
    maxBatch = 1_000,
    concurrency = 8,
    maxBuffered = 100_000,
    maxBufferedPerVessel = 20_000,
    ackDebounceMs = 250,
    writeTimeoutMs = 30_000,
    limits = DEFAULT_LIMITS,
  } = options;
  let closed = false;
  const lastWarned = new Map<MalformedReason, { at: number; suppressed: number }>();
  const epochs = new EpochAdmission(limits.maxLiveEpochs);
  const acks = new AckPublisher({
    sql,
    session,
    log,
    metrics,
    debounceMs: ackDebounceMs,
    timeoutMs: writeTimeoutMs,
  });
  const presence = new PresenceRecorder({ sql, log, timeoutMs: writeTimeoutMs });
  const writer = new BatchWriter({
    sql,
    log,
    metrics,
    acks,
    epochs,
    limits,
    timeoutMs: writeTimeoutMs,
  });
  const queue = new BatchQueue({
    write: writer.write,
    onFailure: writer.onFailure,
    batchDelayMs,
    maxBatch,
    concurrency,
    maxBuffered,
    maxPerVessel: maxBufferedPerVessel,
  });
  const gapMonitor = new GapMonitor({
    sql,
    log,
    waitMs: options.gapWaitMs ?? 2_000,
    maxBackoffMs: options.gapMaxBackoffMs ?? 60_000,
    timeoutMs: writeTimeoutMs,
    request: async (vesselId, body) => {
      if (!session.connected) return false;
      await session.publish(topicsOf(vesselId).catchupRequest, catchupRequestPayload(body), {
        qos: 1,
      });
      metrics.catchupRequests.inc();
      return true;
    },
  });

  function warnMalformed(reason: MalformedReason, detail: string, vesselId?: string) {
    metrics.malformed.inc({ reason });
    const now = Date.now();
    const w = lastWarned.get(reason);
    if (w && now - w.at < 10_000) {
      w.suppressed++;
      return;
    }
    log.warn("Malformed message dropped", { reason, detail, vesselId, suppressed: w?.suppressed });
    lastWarned.set(reason, { at: now, suppressed: 0 });
  }

  let hearing: Hearing | undefined;

  function receive(topic: string, payload: Uint8Array, meta: MessageMeta = {}) {
    // Only the fleet subscription's own messages say it delivers (not the down acks).
    if (topic.split("/", 3)[2] === "sync") hearing?.heard();
    if (closed) return;
    const m = classify(topic, payload, meta);
    if (m.kind === "malformed") return warnMalformed(m.reason, m.detail, m.vesselId);
    if (m.kind === "presence") return presence.record(m.presence);
    const envelopes = m.kind === "envelope" ? [m.envelope] : m.kind === "frame" ? m.envelopes : [];
    const first = envelopes[0];
    if (!first) return;
    const { vesselId, epoch } = first;
    if (epochs.refuses(vesselId, epoch)) {
      metrics.refused.inc({ reason: "epoch_limit" });
      return;
    }
    if (!queue.pushAll(envelopes)) {
      metrics.shed.inc(envelopes.length);
      gapMonitor.shed(vesselId, epoch, Math.max(...envelopes.map((e) => e.seq)));
    }
  }

  const offMessage = session.onMessage(receive);
  const offEvent = session.onEvent((event) => {
    if (event.type === "connected" && !closed) {
      // A new broker (or a lost session) has no retained acks: restate every vessel's.
      acks.publish(true);
    }
  });

  return {
    async start() {
      const filter = sharedGroup ? sharedFilter(sharedGroup, FLEET_FILTER) : FLEET_FILTER;
      await session.subscribe(filter, 1);
      // MQTT 5 sends no retained messages to a shared subscription: read presence directly.
      if (sharedGroup) await session.subscribe(FLEET_STATUS_FILTER, 1);
      else {
        hearing = watchHearing({
          session,
          filter,
          log,
          quietMs: options.hearingQuietMs ?? 30_000,
        });
      }
      gapMonitor.start();
      if (session.connected) await acks.publish(true);
    },
    get buffered() {
      return queue.buffered;
    },
    async close() {
      offMessage();
      closed = true;
      hearing?.stop();
      gapMonitor.stop();
      // Write what is buffered, for a few seconds at most: anything left is re-sent by vessels.
      await queue.close(5_000);
      await acks.close();
      await presence.settled();
      offEvent();
    },
  };
}
