/**
 * The shore's down publisher (contract §4, §6): drains each vessel's down outbox
 * (db/shore/down-outbox.ts) to `vessel/<id>/down/frames` (or one envelope per change on
 * `vessel/<id>/down/<entity>`, LINK_MODE=messages), applies each vessel's retained
 * `vessel/<id>/down/ack`, and answers each vessel's `vessel/<id>/down/catchup/request`.
 *
 * Each vessel has its own stream (sync/shore/down-stream.ts: watermark, sent log, passes,
 * window) and its own serve loop, started without awaiting any other vessel's, so a vessel
 * that never acknowledges only holds its own window and backs off its own re-sends. A loop
 * runs while its vessel has something to send: a pass over claimed rows (after a start, a
 * reconnect or a due re-send), a catch-up request, new rows within the window. Up to
 * `sendsPerVessel` publishes await their PUBACK at once per vessel.
 */
import type { Sql } from "../../db/connection.ts";
import {
  advanceDownPublished,
  applyDownAck,
  claimDownChanges,
  downChangesSince,
  type DownRow,
  downStreamState,
  pendingDownAfter,
} from "../../db/shore/down-outbox.ts";
import type { Logger } from "../../core/log.ts";
import type { ShoreMetrics } from "../../core/metrics.ts";
import type { Session } from "../session.ts";
import {
  ackSchema,
  DOWN_ACK_FILTER,
  DOWN_CATCHUP_FILTER,
  downAckVessel,
  type DownCatchupRequest,
  downCatchupRequestSchema,
  downCatchupVessel,
  MAX_CATCHUP_LIMIT,
  parsePayload,
} from "../protocol.ts";
import { downParts } from "./down-parts.ts";
import { DownStream } from "./down-stream.ts";

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
  /** Rows claimed or read per database round trip (default 500). */
  batch?: number;
  /** Claimed rows a vessel may have beyond its ack (default 2,000; see down-stream.ts). */
  window?: number;
  /** Publishes awaiting PUBACK at once per vessel (default 8 frames, or 256 messages). */
  sendsPerVessel?: number;
  /** How often the loop looks for work without being woken (default 1 s). */
  pollMs?: number;
  /** The shore's series; the down counters are counted into them. */
  metrics?: ShoreMetrics;
}

/** One vessel's down stream as this process sees it. */
export interface DownStreamView {
  vesselId: string;
  epoch: string;
  lastSeq: number;
  publishedSeq: number;
  ackedSeq: number;
}

/** The running down publisher. */
export interface DownPublisher {
  /** Subscribes to the down acks and requests and starts the loop. */
  start(): Promise<void>;
  /** A shore write was committed: look for work now. */
  wake(): void;
  /** Per vessel: this process's view of its stream. */
  streams(): DownStreamView[];
  stop(): Promise<void>;
}

const DEFAULT_CATCHUP_LIMIT = 1_000;

/** Builds the down publisher; nothing runs until `start()`. */
export function createDownPublisher(options: DownPublisherOptions): DownPublisher {
  const { sql, session, log, metrics } = options;
  const batch = options.batch ?? 500;
  const window = options.window ?? 2_000;
  const frames = (options.linkMode ?? "frames") === "frames";
  // A frame carries up to a batch; in messages mode each publish is one change.
  const sendsPerVessel = options.sendsPerVessel ?? (frames ? 8 : 256);
  const pollMs = options.pollMs ?? 1_000;
  const streamOptions = {
    ackTimeoutMs: options.ackTimeoutMs,
    maxResendMs: options.maxResendMs ?? options.ackTimeoutMs * 32,
  };
  const streams = new Map<string, DownStream>();
  const slotWaiters = new Map<DownStream, (() => void)[]>();
  const flushTimers = new Map<DownStream, ReturnType<typeof setTimeout>>();
  const loops = new Set<Promise<void>>();
  let stopped = false;
  let started = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();
  let ackChain = Promise.resolve();

  const streamOf = (vesselId: string): DownStream => {
    let s = streams.get(vesselId);
    if (!s) {
      s = new DownStream(vesselId, streamOptions);
      streams.set(vesselId, s);
    }
    return s;
  };

  /** Resolves once `s` has fewer than `sendsPerVessel` publishes awaiting PUBACK. */
  const slot = (s: DownStream): Promise<void> | undefined => {
    if (s.sends < sendsPerVessel) return undefined;
    return new Promise((resolve) => {
      const list = slotWaiters.get(s) ?? [];
      list.push(resolve);
      slotWaiters.set(s, list);
    });
  };
  const freeSlot = (s: DownStream) => {
    s.sends--;
    slotWaiters.get(s)?.shift()?.();
  };

  // The watermark is written at most every 100 ms per vessel, not once per PUBACK.
  const scheduleFlush = (s: DownStream) => {
    if (flushTimers.has(s)) return;
    flushTimers.set(
      s,
      setTimeout(async () => {
        flushTimers.delete(s);
        const { epoch } = s;
        const seq = s.mark.seq;
        if (seq <= s.savedSeq) return;
        try {
          await advanceDownPublished(sql, s.vesselId, epoch, seq);
          if (epoch === s.epoch) s.savedSeq = Math.max(s.savedSeq, seq);
        } catch (err) {
          // The watermark stays lower: after a restart those rows go out again, a duplicate.
          log.warn("Recording published down changes failed", { vesselId: s.vesselId, error: err });
        }
      }, 100),
    );
  };

  /**
   * Publishes `rows` (seq order, one epoch; sync/shore/down-parts.ts encodes them). Stops
   * where the session drops: what was not handed over stays above the watermark for the
   * reconnect's pass.
   */
  async function send(s: DownStream, rows: DownRow[], catchup = false) {
    for (const part of downParts(s.vesselId, rows, { frames, catchup })) {
      await slot(s);
      if (!session.connected || stopped) return;
      const { epoch, seqs } = part;
      s.sends++;
      if (!catchup) {
        for (const seq of seqs) s.inFlight.add(seq);
        s.noteSent(seqs.at(-1)!, Date.now());
      }
      session.publish(part.topic, part.payload, part.options).then(() => {
        if (catchup) return metrics?.downCatchupPublished.inc(seqs.length);
        for (const seq of seqs) s.published(epoch, seq);
        metrics?.downPublished.inc(seqs.length);
        scheduleFlush(s);
      }, (err) => {
        // Not PUBACKed: above the watermark, so the reconnect's pass (or, for a broker's
        // refusal, the timed re-send) sends it again.
        log.debug("Down publish failed", { vesselId: s.vesselId, error: err });
      }).finally(() => {
        if (!catchup) { for (const seq of seqs) s.inFlight.delete(seq); }
        freeSlot(s);
      });
    }
  }

  async function serveCatchup(s: DownStream, request: DownCatchupRequest) {
    const rows = await downChangesSince(sql, {
      vesselId: s.vesselId,
      since: request.since,
      epoch: request.epoch,
      entity: request.entity,
      limit: Math.min(request.limit ?? DEFAULT_CATCHUP_LIMIT, MAX_CATCHUP_LIMIT),
    });
    log.info("Down catch-up served", {
      vesselId: s.vesselId,
      since: request.since,
      fromSeq: rows[0]?.seq ?? null,
      toSeq: rows.at(-1)?.seq ?? null,
    });
    if (rows.length) await send(s, rows, true);
  }

  /** One vessel's loop: runs while it has something to send (see the module's header). */
  async function serve(s: DownStream) {
    if (s.running || stopped || !started) return;
    s.running = true;
    try {
      while (!stopped && session.connected) {
        const now = Date.now();
        if (!s.pass && !s.passRequest) {
          const due = s.dueResend(now);
          if (due) {
            log.info("Re-sending unacknowledged down changes", { vesselId: s.vesselId, ...due });
            metrics?.downResent.inc(due.toSeq - due.fromSeq + 1);
          }
        }
        if (s.passRequest) {
          const state = await downStreamState(sql, s.vesselId);
          if (state) {
            s.seed(state);
            s.startPass(now);
          } else s.passRequest = null;
          continue;
        }
        if (s.pass) {
          const rows = await pendingDownAfter(sql, {
            vesselId: s.vesselId,
            epoch: s.epoch,
            afterSeq: s.pass.afterSeq,
            limit: batch,
          });
          if (rows.length === 0) s.pass = null;
          else {
            const picked = s.select(rows);
            if (picked.length) await send(s, picked);
          }
          continue;
        }
        if (s.catchup) {
          const request = s.catchup;
          s.catchup = null;
          await serveCatchup(s, request);
          continue;
        }
        const room = Math.min(batch, s.room(window));
        if (room <= 0 || !s.unclaimed) break;
        const rows = await claimDownChanges(sql, s.vesselId, room);
        // Fewer than asked for: nothing is left to claim until a step finds more.
        if (rows.length < room) s.unclaimed = false;
        if (rows.length === 0) break;
        s.claimed(rows[0]!.epoch, rows.at(-1)!.seq);
        await send(s, rows);
      }
    } catch (err) {
      // Claimed rows keep their seq: the next pass or re-send picks them up again.
      log.warn("Down publish failed", { vesselId: s.vesselId, error: err });
    } finally {
      s.running = false;
    }
  }

  const spawn = (s: DownStream) => {
    if (s.running) return;
    const loop = serve(s);
    loops.add(loop);
    void loop.finally(() => loops.delete(loop));
  };

  async function step() {
    if (!session.connected) return;
    // A vessel whose status says offline cannot ack: its re-send clock stands still until it
    // is back (the up stream's clocks run on connected time the same way), so a month away
    // does not pile a re-send per back-off period into its queue at the broker.
    const away = await sql<{ vesselId: string }[]>`
      select vessel_id as "vesselId" from shore_vessels where status = 'offline'`;
    const now = Date.now();
    // Streams with claimed rows beyond the vessel's ack, whoever claimed them: this process
    // before a restart (the stream's first pass sends what was never PUBACKed), or another
    // shore instance (SHORE_SHARED_GROUP) that may have died before sending them (they fall
    // under this process's timed re-send).
    const open = await sql<{ vesselId: string; epoch: string; lastSeq: number }[]>`
      select vessel_id as "vesselId", epoch::text as epoch, last_seq as "lastSeq"
      from shore_down_state where last_seq > acked_seq`;
    for (const r of open) streamOf(r.vesselId).claimedElsewhere(r.epoch, r.lastSeq, now);
    for (const { vesselId } of away) streams.get(vesselId)?.away(now);
    // Vessels with unclaimed rows (a partial index), plus every stream with a pass, a request
    // or sends whose re-send may fall due.
    const ready = await sql<{ vesselId: string }[]>`
      select distinct vessel_id as "vesselId" from shore_down_changes where seq is null`;
    for (const r of ready) {
      const s = streamOf(r.vesselId);
      s.unclaimed = true;
      if (s.room(window) > 0 || s.hasWork) spawn(s);
    }
    for (const s of streams.values()) if (s.hasWork) spawn(s);
  }

  // One step timer; a wake-up while one is due sooner changes nothing (a burst of writes
  // makes one step, not one each).
  let dueAt = Infinity;
  function schedule(ms: number) {
    if (stopped) return;
    const at = Date.now() + ms;
    if (timer !== undefined && dueAt <= at) return;
    clearTimeout(timer);
    dueAt = at;
    timer = setTimeout(() => {
      timer = undefined;
      dueAt = Infinity;
      running = step().catch((err) => log.warn("Down publisher step failed", { error: err }))
        .finally(() => schedule(pollMs));
    }, ms);
  }

  const onAck = (vesselId: string, payload: Uint8Array) => {
    const ack = parsePayload(payload, ackSchema);
    if (!ack) {
      log.warn("Malformed down ack dropped", { vesselId, bytes: payload.length });
      metrics?.malformed.inc({ reason: "down_ack" });
      return;
    }
    ackChain = ackChain.then(async () => {
      const outcome = await applyDownAck(sql, vesselId, ack);
      if (outcome.kind === "ignored") return;
      const s = streamOf(vesselId);
      if (outcome.kind === "new_epoch") {
        log.warn("Vessel acknowledged past our last down seq: new down epoch", {
          vesselId,
          epoch: outcome.epoch,
        });
        s.newEpoch(outcome.epoch);
      } else if (outcome.behind) {
        // The vessel announces (at every connect) a position below what it acknowledged
        // before: its database was restored from a backup. Serve it from there, as if it had
        // asked (it asks itself only where its broker session is gone, which a restore does not
        // say), so a restarted vessel whose session holds its down stream asks nothing.
        log.info("Vessel's down ack went back (a restored database): serving from it", {
          vesselId,
          ...ack,
        });
        s.askCatchup({ since: ack.seq, epoch: ack.epoch });
      } else if (!s.acked(ack.epoch, ack.seq, Date.now())) return;
      spawn(s); // the window opened
    }).catch((err) => log.warn("Applying a down ack failed", { vesselId, error: err }));
  };

  const onCatchupRequest = (vesselId: string, payload: Uint8Array) => {
    const request = parsePayload(payload, downCatchupRequestSchema);
    if (!request) {
      log.warn("Malformed down catch-up request dropped", { vesselId, bytes: payload.length });
      metrics?.malformed.inc({ reason: "down_catchup_request" });
      return;
    }
    metrics?.downCatchupRequests.inc();
    const s = streamOf(vesselId);
    s.askCatchup(request);
    spawn(s);
  };

  const offMessage = session.onMessage((topic, payload) => {
    const acking = downAckVessel(topic);
    if (acking) return onAck(acking, payload);
    const asking = downCatchupVessel(topic);
    if (asking) onCatchupRequest(asking, payload);
  });
  // Recovery is event-driven: after a (re)connect, each stream's pass goes out at once.
  const offEvent = session.onEvent((e) => {
    if (e.type !== "connected") return;
    const now = Date.now();
    for (const s of streams.values()) s.connected(e.sessionPresent, now);
    schedule(0);
  });

  return {
    async start() {
      await session.subscribe(DOWN_ACK_FILTER, 1);
      await session.subscribe(DOWN_CATCHUP_FILTER, 1);
      started = true;
      schedule(0);
    },
    wake() {
      schedule(0);
    },
    streams() {
      return [...streams.values()].map((s) => ({
        vesselId: s.vesselId,
        epoch: s.epoch,
        lastSeq: s.lastSeq,
        publishedSeq: s.mark.seq,
        ackedSeq: s.ackedSeq,
      }));
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      offMessage();
      offEvent();
      for (const list of slotWaiters.values()) for (const resolve of list.splice(0)) resolve();
      await running;
      await Promise.all(loops);
      await ackChain;
      for (const t of flushTimers.values()) clearTimeout(t);
      flushTimers.clear();
      for (const s of streams.values()) {
        if (s.mark.seq <= s.savedSeq) continue;
        await advanceDownPublished(sql, s.vesselId, s.epoch, s.mark.seq).catch((err) =>
          log.warn("Recording published down changes failed", { error: err })
        );
      }
    },
  };
}
