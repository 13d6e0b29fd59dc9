/**
 * The publisher: drains the change log to MQTT while connected, and only then.
 *
 * Delivery states of a change row: pending (no seq) → claimed (seq, epoch) → published (on
 * PUBACK/PUBCOMP; kept as a watermark, `vessel_state.published_seq`: every seq up to it was
 * PUBACKed) → acknowledged (`vessel_state.acked_seq`, when shore's retained ack covers its seq). A row stays
 * until acknowledged. Above the watermark, after a restart, everything is re-sent: a
 * duplicate, which shore discards, where a `published_at` per row cost a second update of
 * every row. PUBACK is not delivery: Mosquitto answers
 * before writing to disk and a broker restarted without persistence forgets everything, so
 * unacknowledged rows are re-sent (same seq and messageId) after `ACK_TIMEOUT_S`, doubling
 * while shore stays silent, and at once from the first unacknowledged seq when the broker
 * says it holds no session for us.
 *
 * `LINK_MODE=frames`: the same rows, states and watermark, but a contiguous run of buffered
 * rows leaves as one frame, and all its rows are published on its PUBACK. How rows leave, in
 * messages or frames, and what a PUBACK does is the send window's (sync/vessel/send-window.ts);
 * this module decides which rows to read and when.
 *
 * Re-sends count from the send, not from the last ack: a row is re-sent once it went out
 * `ACK_TIMEOUT_S` ago (connected time: the clock restarts at every connect, since shore could
 * not ack while the link was down) with no ack covering it since. Shore's ack also raises the
 * published watermark: a PUBACK lost to a link reset must not hold it back for ever.
 *
 * Alerts overtake a backlog on any link: what is claimed but not yet PUBACKed (buffered or in
 * flight) stays within about a second of what the link carries, measured from PUBACK timing
 * (sync/vessel/link-pace.ts), and a frame holds at most a quarter of that. Claims take alerts
 * first, into frames of their own, so an alert committed during a drain leaves within a second.
 */
import type { Sql } from "../../db/connection.ts";
import { claimChanges, type OutboxRow, pendingAfter, vesselState } from "../../db/vessel/outbox.ts";
import type { Logger } from "../../core/log.ts";
import type { Session } from "../session.ts";
import type { Entity } from "../../core/entities.ts";
import { LinkPace } from "./link-pace.ts";
import { SendWindow } from "./send-window.ts";
import { Watermark } from "./watermark.ts";
import { type WakeOn, WakeSignals } from "./wake.ts";
import { ResendClock } from "./sent-log.ts";

/** What the publisher reports as it goes. */
export type PublisherEvent =
  | { type: "published"; entity: Entity; qos: 1 | 2; seq: number }
  | { type: "publish_failed"; seq: number; error: unknown }
  | { type: "acked_by_broker"; released: number }
  /** Shore stayed silent past the re-send delay: unacknowledged changes go out again. */
  | { type: "resending"; fromSeq: number; toSeq: number }
  /**
   * Shore not heard on this connection past the re-send delay: it is away, or we are deaf to
   * its acks. Nothing is re-sent (its session queues what we sent); the listener asks again.
   */
  | { type: "shore_silent" };

/** Options for {@linkcode createPublisher}. */
export interface PublisherOptions {
  sql: Sql;
  session: Session;
  vesselId: string;
  log: Logger;
  /** Largest number of publishes awaiting PUBACK/PUBCOMP at once. */
  window?: number;
  /** First re-send delay for unacknowledged changes (`ACK_TIMEOUT_S` in ms). */
  ackTimeoutMs: number;
  /** Ceiling of the doubling re-send delay; default 32 × ackTimeoutMs. */
  maxResendMs?: number;
  /**
   * ACK_MODE=shore: changes claimed at most this far past shore's ack (default 16,000). Past it
   * the backlog waits in our database, not in the broker's queue or the shore's memory: a shore
   * that takes a vessel's changes faster than it can write them drops what it cannot hold
   * (sync/shore/batches.ts), and a million-change drain then crawled through gap requests.
   */
  aheadOfAck?: number;
  /** `broker`: PUBACK/PUBCOMP also acknowledges (ACK_MODE=broker). */
  ackMode: "shore" | "broker";
  /** A slow safety-net wake-up, in case a signal is missed (e.g. a write by another process). */
  pollMs?: number;
  /** `LINK_MODE`: one frame per contiguous run, or one message per change. */
  linkMode?: "frames" | "messages";
  /** `LINK_LINGER_MS`: how long live rows may wait to fill a frame. */
  lingerMs?: number;
  /** How far ahead of the broker's PUBACKs to claim, in ms of the link's measured bytes. */
  claimHorizonMs?: number;
  onEvent?: (event: PublisherEvent) => void;
}

/** The running drain loop. */
export interface Publisher {
  /** Wakes the loop (a change was committed, the connection came back). */
  wake(): void;
  /** Shore's ack advanced: reset the re-send back-off. */
  ackProgress(): void;
  /** Shore acknowledged `epoch` up to `seq`: those were published, whatever PUBACKs were lost. */
  acked(epoch: string, seq: number): void;
  /** Re-send every unacknowledged change, from the first, now (a session loss, a new epoch). */
  resendAll(): void;
  /** Publishes in flight right now. */
  readonly inFlight: number;
  /** Highest seq this process saw PUBACKed. */
  readonly lastPublishedSeq: number;
  stop(): Promise<void>;
}

/** Starts the drain loop; it idles while the session is disconnected. */
export function createPublisher(options: PublisherOptions): Publisher {
  const { sql, session, vesselId, log, ackMode, onEvent = () => {} } = options;
  const frames = options.linkMode === "frames";
  const window = options.window ?? 256;
  const pace = new LinkPace({ horizonMs: options.claimHorizonMs });
  const pollMs = options.pollMs ?? 5_000;
  const maxResendMs = options.maxResendMs ?? options.ackTimeoutMs * 32;
  const aheadOfAck = ackMode === "shore" ? options.aheadOfAck ?? 16_000 : Infinity;
  // Shore's ack and the last seq claimed, of one epoch: what is claimed ahead of the ack.
  let ahead = { epoch: "", acked: 0, claimed: 0 };
  let stopped = false;
  // A pass walks every claimed, unacknowledged row (they have a seq), in seq order, before any
  // new claim: rows up to `resendUntil` go out again whatever their PUBACK said, the rest only
  // if they never got one. A pass always runs to the last claimed row: a claimed row dropped
  // from the buffer (a pass clears it) has no other way out, since re-sends cover only rows
  // that were sent.
  let pass: { epoch: string; afterSeq: number; resendUntil: number } | null = null;
  let passRequest: "unpublished" | "all" | null = "unpublished"; // after a crash: first thing
  let passUntil = Infinity; // an "all" pass re-sends up to this seq
  // What went out and when, for re-sends counted from the send (sync/vessel/sent-log.ts).
  const resends = new ResendClock({
    baseMs: options.ackTimeoutMs,
    maxMs: maxResendMs,
    shoreAcks: ackMode === "shore",
  });
  // The published watermark and the seqs the broker refused (sync/vessel/watermark.ts).
  const watermark = new Watermark({
    sql,
    log,
    ackMode,
    maxAbove: 16 * window,
    onReleased(released) {
      resends.brokerAcked();
      onEvent({ type: "acked_by_broker", released });
    },
  });
  let generation = 0; // bumped whenever a pass is requested: buffered rows are then stale
  // The loop fetches more once the buffer is down to `lowWater` rows, up to `highWater`.
  const lowWater = 2 * window;
  const highWater = 4 * window;
  // Wake-ups of the loop: "work" and "slot" (sync/vessel/wake.ts).
  const signals = new WakeSignals();
  const sleep = (ms: number, on: WakeOn) => signals.sleep(ms, on);
  const wake = () => signals.signal("work");
  const sender = new SendWindow({
    session,
    vesselId,
    frames,
    window,
    lingerMs: options.lingerMs ?? 50,
    lowWater,
    pace,
    watermark,
    resends,
    onEvent,
    onLow: () => signals.signal("slot"),
  });
  const inFlightSeqs = sender.inFlightSeqs;
  const requestPass = (kind: "unpublished" | "all", untilSeq = Infinity) => {
    if (kind === "all") {
      passUntil = passRequest === "all" ? Math.max(passUntil, untilSeq) : untilSeq;
    }
    if (passRequest !== "all") passRequest = kind;
    generation++;
    sender.clear(); // the pass re-reads these rows
    wake();
  };

  async function nextRows(room: number): Promise<OutboxRow[]> {
    if (passRequest) {
      const { epoch, publishedSeq, ackedSeq, lastSeq } = await vesselState(sql);
      watermark.seed(epoch, publishedSeq);
      ahead = { epoch, acked: ackedSeq, claimed: lastSeq };
      const resendUntil = passRequest === "all" ? passUntil : 0;
      pass = { epoch, afterSeq: 0, resendUntil };
      passRequest = null;
      // What this process did not send itself but the broker took (PUBACKed before a restart
      // or a drop): shore gets a full delay from now to ack it before it is sent again.
      const { mark } = watermark;
      if (resendUntil === 0 && mark.seq > 0) resends.noteSent(epoch, mark.seq);
    }
    if (pass) {
      const { epoch, resendUntil } = pass;
      const { mark, refused } = watermark;
      const skip = epoch === mark.epoch ? mark : null;
      // Past the re-send range, every seq up to the watermark was PUBACKed: start above it.
      if (skip && pass.afterSeq >= resendUntil) pass.afterSeq = Math.max(pass.afterSeq, skip.seq);
      const rows = await pendingAfter(sql, {
        epoch,
        afterSeq: pass.afterSeq,
        limit: room,
        vesselId,
        forFrames: frames,
      });
      if (rows.length === 0) {
        pass = null;
      } else {
        pass.afterSeq = rows.at(-1)!.seq;
        // Skipped: what is on its way, and past the re-send range what this process saw
        // PUBACKed or the broker refused.
        return rows.filter((r) =>
          !inFlightSeqs.has(r.seq) &&
          (r.seq <= resendUntil ||
            !(skip && (r.seq <= skip.seq || skip.above.has(r.seq) || refused.has(r.seq))))
        );
      }
    }
    const claimRoom = Math.min(room, ahead.acked + aheadOfAck - ahead.claimed);
    // A sliver of room waits for the next ack (which wakes the loop), so claims stay batches.
    if (claimRoom < Math.min(room, aheadOfAck / 16)) return [];
    const claimed = await claimChanges(sql, claimRoom, vesselId, { forFrames: frames });
    const last = claimed.at(-1);
    if (last && last.epoch !== ahead.epoch) ahead = { epoch: last.epoch, acked: 0, claimed: 0 };
    if (last) ahead.claimed = Math.max(ahead.claimed, last.seq);
    // Fewer than asked for: the backlog is drained, these are live writes.
    if (claimed.length > 0 && claimed.length < claimRoom && sender.buffered === 0) sender.linger();
    return claimed;
  }

  // Rows are fetched ahead into a buffer of up to `highWater` rows while earlier publishes
  // are in flight, so the database round trips overlap the broker's.
  async function loop() {
    while (!stopped) {
      try {
        if (!session.connected) {
          sender.clear();
          await sleep(pollMs, "work");
          continue;
        }
        if (pass === null && passRequest === null) await checkResend();
        let exhausted = false;
        if (sender.buffered <= lowWater) {
          // Claimed but not PUBACKed stays within the link's second (see the header); a
          // sliver of room waits for more, so claims stay batches.
          const budget = pace.rowBudget();
          const byBudget = budget - sender.buffered - inFlightSeqs.size;
          const room = Math.min(highWater - sender.buffered, byBudget);
          const sliver = Math.max(1, budget / 8);
          if (byBudget < highWater - sender.buffered && byBudget < sliver) {
            sender.pump();
            // The budget also grows while PUBACKs are overdue (the link carries on): wake then.
            const quiet = pace.msUntilRoom((sliver - byBudget) * pace.bytesPerRow);
            await sleep(Math.min(pollMs, Math.max(10, quiet)), "slot");
            continue;
          }
          const gen = generation;
          const rows = await nextRows(room);
          if (gen !== generation) continue; // a pass was requested meanwhile: it re-reads them
          sender.push(rows);
          exhausted = rows.length === 0 && pass === null && passRequest === null;
        }
        sender.pump();
        // Nothing more to fetch: wait for a commit (the buffer drains by itself). Enough
        // buffered: wait until it runs low.
        if (exhausted) await sleep(Math.min(pollMs, resends.delayMs), "work");
        else if (sender.buffered > lowWater) await sleep(pollMs, "slot");
      } catch (err) {
        log.warn("Publisher step failed, retrying", { error: err });
        await sleep(1_000, "work");
      }
    }
  }

  // Sends older than the delay with no ack covering them since: walk the unacknowledged rows
  // up to the newest such send again, and wait twice as long before the next walk.
  async function checkResend() {
    const { silent, expired } = resends.due();
    // Only a question: a SUBSCRIBE to the ack topic again gets the retained ack from a broker
    // that lost the subscription's live copy (docs/scaling.md).
    if (silent) onEvent({ type: "shore_silent" });
    if (expired.length === 0) return;
    const { epoch } = await vesselState(sql);
    const untilSeq = Math.max(...expired.filter((e) => e.epoch === epoch).map((e) => e.seq));
    const [waiting] = await pendingAfter(sql, { epoch, afterSeq: 0, limit: 1, vesselId });
    if (!waiting || waiting.seq > untilSeq) return; // acked meanwhile (or ACK_MODE=broker)
    requestPass("all", untilSeq);
    log.info("Re-sending unacknowledged changes", {
      fromSeq: waiting.seq,
      toSeq: untilSeq,
      delayMs: resends.delayMs,
    });
    onEvent({ type: "resending", fromSeq: waiting.seq, toSeq: untilSeq });
    resends.backOff();
  }

  const unsubscribe = session.onEvent((e) => {
    if (e.type === "connected") {
      resends.connected();
      // No session at the broker: whatever it held for us is gone, so re-send every
      // unacknowledged change from the first. With a session: only what never got a PUBACK.
      requestPass(!e.sessionPresent && ackMode === "shore" ? "all" : "unpublished");
    }
  });
  const running = loop();

  return {
    wake,
    ackProgress() {
      resends.progress();
    },
    acked(epoch, seq) {
      resends.acked(epoch, seq);
      if (epoch === ahead.epoch && seq > ahead.acked) {
        const blocked = ahead.claimed - ahead.acked > aheadOfAck * (15 / 16);
        ahead.acked = seq;
        if (blocked) wake();
      }
      // An ack covers what it acknowledges as published too: the watermark cannot stick
      // below a row whose PUBACK was lost.
      watermark.acked(epoch, seq);
    },
    resendAll() {
      resends.clear();
      requestPass("all");
    },
    get inFlight() {
      return inFlightSeqs.size;
    },
    get lastPublishedSeq() {
      return sender.lastPublishedSeq;
    },
    async stop() {
      stopped = true;
      sender.stop();
      unsubscribe();
      wake();
      await running;
      await watermark.stop();
    },
  };
}
