/**
 * The shore role's ingest: subscribes to the fleet's sync topics, validates every message,
 * buffers envelopes for a few milliseconds and applies them in per-vessel batches through
 * the inbox (db/inbox.ts, exactly once and in seq order), acknowledges what is applied,
 * asks vessels to re-send what a gap holds back, and records presence.
 *
 * Nothing here decides "applied" from memory: acks and gap requests are read from the
 * database, so they are right across restarts and with several shore processes.
 */
import type { Sql } from "../../db/connection.ts";
import type { Session } from "../session.ts";
import type { Logger } from "../../core/log.ts";
import type { ShoreMetrics } from "../../core/metrics.ts";
import {
  ackPayload,
  catchupRequestPayload,
  type Envelope,
  FLEET_FILTER,
  FLEET_STATUS_FILTER,
  sharedFilter,
  topicsOf,
} from "../protocol.ts";
import { classify, type MalformedReason } from "./classify.ts";
import { ackPositions, ingest, pruneInbox } from "../../db/shore/inbox.ts";
import { recordPresence } from "../../db/shore/fleet.ts";
import { isDatabaseUnavailable } from "../../core/errors.ts";
import { GapMonitor } from "./gaps.ts";
import { DeadlineError, within } from "../deadline.ts";

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
  /** Acks are published at most this often per vessel. */
  ackDebounceMs?: number;
  /** A gap that has not moved for this long is asked for. */
  gapWaitMs?: number;
  /** Longest wait between two catch-up requests for one vessel. */
  gapMaxBackoffMs?: number;
  /** Applied inbox rows are kept this many days (`CATCHUP_RETENTION_DAYS`), pruned hourly. */
  inboxRetentionDays?: number;
  /** A database call still unanswered after this is given up (and retried where it matters). */
  writeTimeoutMs?: number;
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

const TRANSIENT = new Set(["40001", "40P01"]); // serialization failure, deadlock

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
    ackDebounceMs = 250,
    writeTimeoutMs = 30_000,
  } = options;
  const buffer = new Map<string, Envelope[]>(); // by vessel and epoch
  const inFlight = new Set<string>();
  const failures = new Map<string, number>();
  let buffered = 0;
  let running = 0;
  let flushTimer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;
  const idle = new Set<() => void>();
  const dirtyAcks = new Set<string>();
  let presence = Promise.resolve();
  let pruneTimer: ReturnType<typeof setInterval> | undefined;
  const prune = () =>
    pruneInbox(sql, options.inboxRetentionDays ?? 30).then(
      (n) => n > 0 && log.info("Inbox pruned", { rows: n }),
      (err) => log.warn("Inbox prune failed", { error: err }),
    );
  let ackTimer: ReturnType<typeof setTimeout> | undefined;
  const lastWarned = new Map<MalformedReason, { at: number; suppressed: number }>();
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

  function receive(topic: string, payload: Uint8Array) {
    if (closed) return;
    const m = classify(topic, payload);
    if (m.kind === "malformed") return warnMalformed(m.reason, m.detail, m.vesselId);
    if (m.kind === "presence") {
      // One at a time, in arrival order: an `offline` must not overtake the `online` before it.
      presence = presence.then(() => within(recordPresence(sql, m.presence), writeTimeoutMs))
        .catch((err) =>
          log.warn("Presence not recorded", { vesselId: m.presence.vesselId, error: err })
        );
      return;
    }
    if (m.kind !== "envelope") return;
    if (buffered >= maxBuffered) {
      metrics.shed.inc();
      return;
    }
    const key = `${m.envelope.vesselId}|${m.envelope.epoch}`;
    let list = buffer.get(key);
    if (!list) buffer.set(key, list = []);
    list.push(m.envelope);
    buffered++;
    flushTimer ??= setTimeout(flush, buffered >= maxBatch ? 0 : batchDelayMs);
  }

  function flush() {
    flushTimer = undefined;
    for (const [key, list] of buffer) {
      if (running >= concurrency) break;
      if (inFlight.has(key)) continue;
      const batch = list.splice(0, maxBatch);
      if (list.length === 0) buffer.delete(key);
      buffered -= batch.length;
      inFlight.add(key);
      running++;
      write(key, batch).finally(() => {
        inFlight.delete(key);
        running--;
        if (buffered > 0 && !closed) flushTimer ??= setTimeout(flush, 0);
        if (running === 0) { for (const fn of idle) fn(); }
      });
    }
  }

  async function write(key: string, batch: Envelope[]) {
    const { vesselId, epoch } = batch[0]!;
    for (let attempt = 1;; attempt++) {
      try {
        const result = await within(ingest(sql, vesselId, epoch, batch), writeTimeoutMs);
        failures.delete(key);
        metrics.applied.inc(result.applied);
        metrics.duplicates.inc(result.duplicates);
        // Duplicates mean the vessel re-sent: it has not seen our ack, so send it again.
        if (result.applied > 0 || result.duplicates > 0) scheduleAck(vesselId);
        return;
      } catch (err) {
        const code = (err as { code?: string }).code ?? "";
        if (TRANSIENT.has(code) && attempt < 5) continue;
        const failed = (failures.get(key) ?? 0) + 1;
        failures.set(key, failed);
        const unavailable = err instanceof DeadlineError || isDatabaseUnavailable(err);
        if (!unavailable && failed >= 5) {
          // Dropping is safe: nothing was acked, so the vessel re-sends and the gap is asked for.
          log.error("Batch dropped after repeated failures", { vesselId, error: err });
          failures.delete(key);
          return;
        }
        log.warn("Batch not written, retrying", { vesselId, attempt: failed, error: err });
        const list = buffer.get(key) ?? [];
        buffer.set(key, [...batch, ...list]);
        buffered += batch.length;
        await new Promise((r) => setTimeout(r, Math.min(250 * 2 ** failed, 10_000)));
        return;
      }
    }
  }

  function scheduleAck(vesselId: string) {
    dirtyAcks.add(vesselId);
    if (!closed) ackTimer ??= setTimeout(publishAcks, ackDebounceMs);
  }

  async function publishAcks(all = false) {
    ackTimer = undefined;
    const vessels = all ? undefined : [...dirtyAcks];
    if (!all) dirtyAcks.clear();
    if (!session.connected) return; // the next connect publishes every vessel's ack
    try {
      const positions = await within(ackPositions(sql, vessels), writeTimeoutMs);
      await Promise.all(positions.map(async ({ vesselId, epoch, seq }) => {
        await session.publish(topicsOf(vesselId).ack, ackPayload({ epoch, seq }), {
          qos: 1,
          retain: true,
        });
        metrics.acksPublished.inc();
      }));
      // Another instance may have applied more and published its ack before ours landed,
      // leaving ours, the older, retained. Re-read after the PUBACKs: whatever moved meanwhile
      // is published again, so the last retained ack is never behind the database.
      const sent = new Map(positions.map((p) => [p.vesselId, `${p.epoch}/${p.seq}`]));
      const now = await within(ackPositions(sql, [...sent.keys()]), writeTimeoutMs);
      for (const p of now) {
        if (sent.get(p.vesselId) !== `${p.epoch}/${p.seq}`) scheduleAck(p.vesselId);
      }
    } catch (err) {
      log.warn("Acks not published, retrying", { error: err });
      for (const v of vessels ?? []) dirtyAcks.add(v);
      if (!closed && vessels) ackTimer ??= setTimeout(publishAcks, ackDebounceMs * 4);
    }
  }

  const offMessage = session.onMessage(receive);
  const offEvent = session.onEvent((event) => {
    if (event.type === "connected" && !closed) {
      // A new broker (or a lost session) has no retained acks: restate every vessel's.
      publishAcks(true);
    }
  });

  return {
    async start() {
      const filter = sharedGroup ? sharedFilter(sharedGroup, FLEET_FILTER) : FLEET_FILTER;
      await session.subscribe(filter, 1);
      // MQTT 5 sends no retained messages to a shared subscription: read presence directly.
      if (sharedGroup) await session.subscribe(FLEET_STATUS_FILTER, 1);
      gapMonitor.start();
      pruneTimer = setInterval(prune, 3_600_000);
      prune();
      if (session.connected) await publishAcks(true);
    },
    get buffered() {
      return buffered;
    },
    async close() {
      offMessage();
      closed = true;
      gapMonitor.stop();
      clearInterval(pruneTimer);
      clearTimeout(flushTimer);
      // Write what is buffered, for a few seconds at most: anything left is re-sent by vessels.
      const deadline = Date.now() + 5_000;
      while ((buffered > 0 || running > 0) && Date.now() < deadline) {
        flush();
        if (running > 0) await new Promise<void>((resolve) => idle.add(resolve));
        idle.clear();
      }
      clearTimeout(ackTimer);
      if (dirtyAcks.size > 0) await publishAcks();
      await presence;
      offEvent();
    },
  };
}
