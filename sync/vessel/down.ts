/**
 * The vessel's end of the down stream (docs/two-way-sync.md): takes the shore's changes for this
 * vessel from `vessel/<id>/down/frames` (or `…/down/<entity>`, one envelope each), applies
 * them exactly once through db/vessel/down-inbox.ts (no change row: no echo), and states how
 * far it got on the retained `vessel/<id>/down/ack`, debounced. It also drains the conflicts
 * the merge recorded (db/conflicts.ts) to `<root>/conflicts`.
 *
 * A bad message (undecodable frame, envelope failing its schema, a change without `sync`, a
 * frame of another vessel) is counted and dropped, never applied.
 */
import type { Sql } from "../../db/connection.ts";
import { downAckPosition, type DownChange, ingestDown } from "../../db/vessel/down-inbox.ts";
import { markConflictsPublished, unpublishedConflicts } from "../../db/conflicts.ts";
import type { Hlc } from "../../core/hlc.ts";
import type { Logger } from "../../core/log.ts";
import type { Metrics } from "../../core/metrics.ts";
import { ENTITIES } from "../../core/entities.ts";
import type { Session } from "../session.ts";
import { decodeFrame } from "../frame.ts";
import {
  ackPayload,
  conflictPayload,
  type Envelope,
  envelopeSchema,
  parsePayload,
  topicsOf,
} from "../protocol.ts";

/** Options for {@linkcode createDownReceiver}. */
export interface DownReceiverOptions {
  sql: Sql;
  session: Session;
  vesselId: string;
  hlc: Hlc;
  log: Logger;
  /** Debounce of the retained down ack (default 50 ms). */
  ackDebounceMs?: number;
  /** How often unpublished conflicts are looked for without a wake-up (default 5 s). */
  pollMs?: number;
  /** Counts applied and dropped down changes and the conflicts recorded. */
  metrics?: Metrics;
  /** An ingest left changes waiting past a missing seq (sync/vessel/down-gaps.ts watches). */
  onWaiting?: () => void;
}

/** The running receiver. */
export interface DownReceiver {
  /** Messages dropped as malformed so far. */
  readonly dropped: number;
  /** Down changes applied so far by this process. */
  readonly applied: number;
  stop(): Promise<void>;
}

/** Subscribes to this vessel's down topics and applies what arrives. */
export function createDownReceiver(options: DownReceiverOptions): DownReceiver {
  const { sql, session, vesselId, hlc, log, metrics } = options;
  const topics = topicsOf(vesselId);
  const entityTopics = new Map(ENTITIES.map((e) => [topics.downData(e), e]));
  const ackDebounceMs = options.ackDebounceMs ?? 50;
  let dropped = 0;
  let applied = 0;
  let stopped = false;
  let chain = Promise.resolve();
  let ackTimer: ReturnType<typeof setTimeout> | undefined;
  let conflictsRunning = false;

  const drop = (reason: string, detail?: string) => {
    dropped++;
    metrics?.down.dropped.inc({ reason });
    log.warn("Malformed down message dropped", { reason, detail });
  };

  function ingest(envelopes: Envelope[]) {
    const epoch = envelopes[0]!.epoch;
    const changes: DownChange[] = [];
    for (const e of envelopes) {
      if (e.vesselId !== vesselId || e.epoch !== epoch) return drop("mismatch");
      if (!e.sync) return drop("no_sync", `seq ${e.seq}`);
      changes.push({ ...e, sync: e.sync });
    }
    chain = chain.then(async () => {
      const r = await ingestDown(sql, { vesselId, epoch, changes, hlc });
      applied += r.applied;
      metrics?.down.applied.inc(r.applied);
      metrics?.conflicts.inc(r.conflicts);
      if (r.clockAhead) {
        log.warn("Shore clock ahead of ours beyond the drift bound", { changes: r.clockAhead });
      }
      scheduleAck();
      if (r.waiting) options.onWaiting?.();
      if (r.conflicts) void drainConflicts();
    }).catch((err) => {
      // Not applied and not acknowledged: the shore re-sends it.
      log.warn("Applying down changes failed", { error: err });
    });
  }

  function scheduleAck() {
    ackTimer ??= setTimeout(async () => {
      ackTimer = undefined;
      try {
        const position = await downAckPosition(sql);
        if (position && session.connected) {
          await session.publish(topics.downAck, ackPayload(position), { qos: 1, retain: true });
        }
      } catch (err) {
        log.warn("Publishing the down ack failed", { error: err });
      }
    }, ackDebounceMs);
  }

  async function drainConflicts() {
    if (conflictsRunning || !session.connected) return;
    conflictsRunning = true;
    try {
      for (;;) {
        const batch = await unpublishedConflicts(sql, 100);
        if (batch.length === 0) break;
        await Promise.all(
          batch.map((c) => session.publish(topics.conflicts, conflictPayload(c), { qos: 1 })),
        );
        await markConflictsPublished(sql, batch.map((c) => c.id));
        if (batch.length < 100) break;
      }
    } catch (err) {
      // Left unpublished: the next drain sends them again.
      log.warn("Publishing conflicts failed", { error: err });
    } finally {
      conflictsRunning = false;
    }
  }

  const offMessage = session.onMessage((topic, payload, meta) => {
    if (stopped) return;
    if (topic === topics.downFrames) {
      const frame = decodeFrame(payload, { contentType: meta.contentType, vesselId });
      if (!frame.ok) return drop(frame.reason, frame.detail);
      // The frame's envelopes meet the schema a message's does.
      if (!frame.envelopes.every((e) => envelopeSchema.safeParse(e).success)) {
        return drop("envelope", "in a frame");
      }
      return ingest(frame.envelopes);
    }
    const entity = entityTopics.get(topic);
    if (!entity) return;
    const envelope = parsePayload(payload, envelopeSchema);
    if (!envelope || envelope.entity !== entity) return drop("envelope");
    ingest([envelope as Envelope]);
  });
  const offEvent = session.onEvent((e) => {
    if (e.type === "connected") {
      scheduleAck(); // a broker without persistence lost the retained ack
      void drainConflicts();
    }
  });
  const timer = setInterval(() => void drainConflicts(), options.pollMs ?? 5_000);
  // One filter for the down stream; the ACL (mosquitto.acl) delivers none of this vessel's
  // own down ack or request, and a topic other than frames or an entity is ignored above.
  session.subscribe(`${topics.down}/#`, 1).catch((err) =>
    log.warn("Subscribe failed", { error: err })
  );

  return {
    get dropped() {
      return dropped;
    },
    get applied() {
      return applied;
    },
    async stop() {
      stopped = true;
      offMessage();
      offEvent();
      clearInterval(timer);
      await chain;
      clearTimeout(ackTimer);
    },
  };
}
