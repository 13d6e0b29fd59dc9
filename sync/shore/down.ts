/**
 * The shore's down publisher (contract §4, §6): drains each vessel's down outbox
 * (db/shore/down-outbox.ts) to `vessel/<id>/down/frames` (or one envelope per change on
 * `vessel/<id>/down/<entity>`, LINK_MODE=messages) and applies each vessel's retained
 * `vessel/<id>/down/ack`.
 *
 * A small loop of its own, not sync/vessel/publisher.ts made generic (docs/two-way-sync.md
 * says why and what it lacks): every vessel has its own stream state, and a step serves each
 * vessel with work independently, one batch at most in flight per vessel, so a vessel that
 * never acknowledges only backs off its own re-sends. Unacknowledged changes are re-sent
 * (same seq and messageId) once the oldest send is `ackTimeoutMs` old, the delay doubling per
 * vessel while it stays silent and reset by its ack's progress.
 */
import type { Sql } from "../../db/connection.ts";
import {
  applyDownAck,
  claimDownChanges,
  type DownRow,
  pendingDownAfter,
} from "../../db/shore/down-outbox.ts";
import type { Logger } from "../../core/log.ts";
import type { Session } from "../session.ts";
import {
  ackSchema,
  DOWN_ACK_FILTER,
  downAckVessel,
  parsePayload,
  qosOf,
  toEnvelope,
  topicsOf,
} from "../protocol.ts";
import { cutFrames, FRAME_CONTENT_TYPE } from "../frame.ts";

/** Options for {@linkcode createDownPublisher}. */
export interface DownPublisherOptions {
  sql: Sql;
  session: Session;
  log: Logger;
  /** `ACK_TIMEOUT_S` in ms: first re-send delay. */
  ackTimeoutMs: number;
  /** Ceiling of the doubling re-send delay; default 32 × ackTimeoutMs. */
  maxResendMs?: number;
  linkMode?: "frames" | "messages";
  /** Rows claimed (or re-sent) per vessel per step. */
  batch?: number;
  /** How often the loop looks for new down changes without being woken. */
  pollMs?: number;
}

/** The running down publisher. */
export interface DownPublisher {
  /** Subscribes to the down acks and starts the loop. */
  start(): Promise<void>;
  /** A shore write was committed: look for work now. */
  wake(): void;
  /** Per vessel: seq last published and last acknowledged (this process's view). */
  streams(): { vesselId: string; publishedSeq: number; ackedSeq: number }[];
  stop(): Promise<void>;
}

interface Stream {
  busy: boolean;
  epoch: string;
  publishedSeq: number;
  ackedSeq: number;
  /** When the oldest unacknowledged send went out (0: nothing awaits an ack). */
  oldestSentAt: number;
  resendDelay: number;
}

/** Builds the down publisher; nothing runs until `start()`. */
export function createDownPublisher(options: DownPublisherOptions): DownPublisher {
  const { sql, session, log } = options;
  const batch = options.batch ?? 500;
  const pollMs = options.pollMs ?? 1_000;
  const maxResendMs = options.maxResendMs ?? options.ackTimeoutMs * 32;
  const frames = (options.linkMode ?? "frames") === "frames";
  const streams = new Map<string, Stream>();
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let ackChain = Promise.resolve();

  const streamOf = (vesselId: string): Stream => {
    let s = streams.get(vesselId);
    if (!s) {
      s = {
        busy: false,
        epoch: "",
        publishedSeq: 0,
        ackedSeq: 0,
        oldestSentAt: 0,
        resendDelay: options.ackTimeoutMs,
      };
      streams.set(vesselId, s);
    }
    return s;
  };

  async function publish(vesselId: string, rows: DownRow[]) {
    const topics = topicsOf(vesselId);
    const envelopes = rows.map((r) => toEnvelope(r, vesselId));
    if (frames) {
      await Promise.all(
        cutFrames(envelopes).map((f) =>
          session.publish(topics.downFrames, f.payload, {
            qos: 1,
            contentType: FRAME_CONTENT_TYPE,
          })
        ),
      );
    } else {
      await Promise.all(
        envelopes.map((e) =>
          session.publish(topics.downData(e.entity), JSON.stringify(e), { qos: qosOf(e.entity) })
        ),
      );
    }
  }

  /** One vessel's turn: re-send if its oldest send timed out, else claim and send new rows. */
  async function serve(vesselId: string) {
    const s = streamOf(vesselId);
    if (s.busy) return;
    s.busy = true;
    try {
      const now = Date.now();
      let rows: DownRow[] = [];
      if (s.oldestSentAt && now - s.oldestSentAt >= s.resendDelay) {
        const [state] = await sql<{ epoch: string }[]>`
          select epoch::text from shore_down_state where vessel_id = ${vesselId}`;
        if (state) {
          rows = await pendingDownAfter(sql, {
            vesselId,
            epoch: state.epoch,
            afterSeq: 0,
            limit: batch,
          });
        }
        if (rows.length === 0) s.oldestSentAt = 0;
        else {
          log.info("Re-sending unacknowledged down changes", {
            vesselId,
            fromSeq: rows[0]!.seq,
            toSeq: rows.at(-1)!.seq,
            delayMs: s.resendDelay,
          });
          s.resendDelay = Math.min(s.resendDelay * 2, maxResendMs);
        }
      }
      if (rows.length === 0) rows = await claimDownChanges(sql, vesselId, batch);
      if (rows.length === 0) return;
      if (!s.oldestSentAt) s.oldestSentAt = Date.now();
      await publish(vesselId, rows);
      s.epoch = rows[0]!.epoch;
      s.publishedSeq = Math.max(s.publishedSeq, rows.at(-1)!.seq);
    } catch (err) {
      // Claimed rows keep their seq: the re-send picks them up again.
      log.warn("Down publish failed", { vesselId, error: err });
    } finally {
      s.busy = false;
    }
  }

  async function step() {
    if (!session.connected) return;
    // Vessels with unclaimed rows, or with claimed rows awaiting an ack. Claimed rows that no
    // send of this process is timing (claimed before a restart) are due for a re-send now:
    // nothing else would ever send them again.
    const ready = await sql<{ vesselId: string; claimed: boolean }[]>`
      select vessel_id as "vesselId", bool_or(seq is not null) as claimed
      from shore_down_changes where acked_at is null group by vessel_id`;
    const names = new Set<string>();
    for (const r of ready) {
      names.add(r.vesselId);
      const s = streamOf(r.vesselId);
      if (r.claimed && !s.oldestSentAt && !s.busy) s.oldestSentAt = 1;
    }
    for (const [id, s] of streams) if (s.oldestSentAt) names.add(id);
    // Each vessel on its own: one slow or silent vessel is not awaited by another's turn.
    for (const id of names) void serve(id);
  }

  function schedule(ms: number) {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      running = step().catch((err) => log.warn("Down publisher step failed", { error: err }))
        .finally(() => schedule(pollMs));
    }, ms);
  }

  const onAck = (vesselId: string, payload: Uint8Array) => {
    const ack = parsePayload(payload, ackSchema);
    if (!ack) {
      log.warn("Malformed down ack dropped", { vesselId, bytes: payload.length });
      return;
    }
    ackChain = ackChain.then(async () => {
      const outcome = await applyDownAck(sql, vesselId, ack);
      const s = streamOf(vesselId);
      if (outcome.kind === "ignored") return;
      if (outcome.kind === "new_epoch") {
        log.warn("Vessel acknowledged past our last down seq: new down epoch", {
          vesselId,
          epoch: outcome.epoch,
        });
        Object.assign(s, { epoch: outcome.epoch, publishedSeq: 0, ackedSeq: 0, oldestSentAt: 0 });
        return;
      }
      if (ack.seq > s.ackedSeq || ack.epoch !== s.epoch) {
        s.resendDelay = options.ackTimeoutMs;
        s.ackedSeq = ack.seq;
      }
      // Everything sent is acknowledged: nothing awaits a re-send; otherwise the clock of
      // what remains starts again from this ack.
      s.oldestSentAt = ack.epoch === s.epoch && ack.seq >= s.publishedSeq ? 0 : Date.now();
    }).catch((err) => log.warn("Applying a down ack failed", { vesselId, error: err }));
  };

  const offMessage = session.onMessage((topic, payload) => {
    const vesselId = downAckVessel(topic);
    if (vesselId) onAck(vesselId, payload);
  });
  // Recovery is event-driven: after a (re)connect, whatever awaits an ack goes again at once
  // (the broker may have lost it with its session), instead of after a backed-off timer.
  const offEvent = session.onEvent((e) => {
    if (e.type !== "connected") return;
    for (const s of streams.values()) {
      if (!s.oldestSentAt) continue;
      s.oldestSentAt = 1;
      s.resendDelay = options.ackTimeoutMs;
    }
    schedule(0);
  });

  return {
    async start() {
      await session.subscribe(DOWN_ACK_FILTER, 1);
      schedule(0);
    },
    wake() {
      schedule(0);
    },
    streams() {
      return [...streams].map(([vesselId, s]) => ({
        vesselId,
        publishedSeq: s.publishedSeq,
        ackedSeq: s.ackedSeq,
      }));
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      offMessage();
      offEvent();
      await running;
      await ackChain;
    },
  };
}
