/**
 * One vessel's down stream as the shore's down publisher (sync/shore/down.ts) tracks it: the
 * bookkeeping of sync/vessel/publisher.ts, per vessel, with no I/O of its own, so that its
 * arithmetic is tested with fake time.
 *
 * - The published watermark: every seq up to `mark.seq` got its PUBACK (`above` holds the
 *   PUBACKed seqs past it). It is written to `shore_down_state.published_seq`, so a restart
 *   sends at once only what was never PUBACKed, and gives the rest a full `ACK_TIMEOUT_S`
 *   from the restart for the vessel to acknowledge it.
 * - The sent log: bursts `{seq, at}` (the highest seq sent within a second, and when). A
 *   re-send covers the rows up to the newest burst sent more than the re-send delay ago with
 *   no ack covering it since: time since the send, not since the last ack. The delay doubles
 *   while the vessel stays silent, and resets when its ack moves.
 * - Passes: a walk over every claimed, unacknowledged row, in seq order, before any new claim;
 *   rows up to `resendUntil` go out again whatever their PUBACK said, the rest only if they
 *   never got one. A pass always runs to the last claimed row (the lesson of the vessel
 *   publisher's stall, commit 3871a78: a claimed row must have a way out besides a re-send of
 *   what was sent).
 * - The window: at most `window` claimed rows beyond the vessel's ack. A vessel that is away
 *   gets a window's worth queued at the broker, not its whole backlog, and what is committed
 *   meanwhile stays unclaimed, so an alert (claims take alerts first) overtakes the backlog
 *   the moment the vessel's ack opens the window.
 */
import type { DownStreamState } from "../../db/shore/down-outbox.ts";
import type { DownCatchupRequest } from "../protocol.ts";

/** Options for {@linkcode DownStream}. */
export interface DownStreamOptions {
  /** `ACK_TIMEOUT_S` in ms: the first re-send delay. */
  ackTimeoutMs: number;
  /** Ceiling of the doubling re-send delay. */
  maxResendMs: number;
}

type PassKind = "unpublished" | "all";

/** One vessel's down stream state (this process's view). */
export class DownStream {
  readonly vesselId: string;
  epoch = "";
  /** The last seq claimed. */
  lastSeq = 0;
  /** The highest seq the vessel acknowledged in `epoch`. */
  ackedSeq = 0;
  /** The published watermark (see the module's header). */
  mark = { seq: 0, above: new Set<number>() };
  /** The watermark as last written to the database. */
  savedSeq = 0;
  /** Seqs being published right now. */
  readonly inFlight = new Set<number>();
  /** Publishes awaiting their PUBACK. */
  sends = 0;
  sentLog: { seq: number; at: number }[] = [];
  resendDelay: number;
  pass: { afterSeq: number; resendUntil: number } | null = null;
  passRequest: PassKind | null = "unpublished"; // the first thing after a (re)start
  passUntil = Infinity;
  /** A catch-up request waiting to be served (several merge into one). */
  catchup: DownCatchupRequest | null = null;
  /** The serve loop runs. */
  running = false;
  /** Unclaimed rows may wait (a step found some; the last claim was cut by the window). */
  unclaimed = false;
  /** When the vessel's ack last moved (ms), or 0. */
  lastAckAt = 0;
  #opts: DownStreamOptions;
  #earlyAck: { epoch: string; seq: number } | null = null;

  constructor(vesselId: string, options: DownStreamOptions) {
    this.vesselId = vesselId;
    this.#opts = options;
    this.resendDelay = options.ackTimeoutMs;
  }

  /** Something to do besides claiming: a pass, a catch-up, sends whose re-send may fall due. */
  get hasWork(): boolean {
    return this.passRequest !== null || this.pass !== null || this.catchup !== null ||
      this.sentLog.length > 0;
  }

  /** Claimed rows beyond the vessel's ack that the window still allows. */
  room(window: number): number {
    return window - (this.lastSeq - this.ackedSeq);
  }

  /** Takes the database's state: a new epoch starts over, the same one never goes back. */
  seed(state: DownStreamState): void {
    if (state.epoch !== this.epoch) {
      this.#reset(state.epoch);
      this.lastSeq = state.lastSeq;
      this.ackedSeq = state.ackedSeq;
      this.mark.seq = state.publishedSeq;
    } else {
      this.lastSeq = Math.max(this.lastSeq, state.lastSeq);
      this.ackedSeq = Math.max(this.ackedSeq, state.ackedSeq);
      this.#raiseMark(state.publishedSeq);
    }
    this.savedSeq = Math.max(this.savedSeq, state.publishedSeq);
    const early = this.#earlyAck;
    if (early && early.epoch === this.epoch) this.acked(early.epoch, early.seq, 0);
    this.#earlyAck = null;
  }

  /** Asks for a pass; an "all" pass re-sends up to `untilSeq`. */
  requestPass(kind: PassKind, untilSeq = Infinity): void {
    if (kind === "all") {
      this.passUntil = this.passRequest === "all" ? Math.max(this.passUntil, untilSeq) : untilSeq;
    }
    if (this.passRequest !== "all") this.passRequest = kind;
  }

  /** Starts the requested pass (after {@linkcode seed}). */
  startPass(now: number): void {
    const all = this.passRequest === "all";
    const resendUntil = all ? this.passUntil : 0;
    this.pass = {
      afterSeq: all ? this.ackedSeq : Math.max(this.ackedSeq, this.mark.seq),
      resendUntil,
    };
    // What the broker took before a restart or a drop: the vessel gets a full delay from now
    // to acknowledge it before it is sent again.
    if (!all && this.mark.seq > this.ackedSeq) this.noteSent(this.mark.seq, now);
    this.passRequest = null;
    this.passUntil = Infinity;
  }

  /** Of a pass's rows (seq order), those that go out; advances the pass past them. */
  select<T extends { seq: number }>(rows: T[]): T[] {
    const pass = this.pass!;
    pass.afterSeq = rows.at(-1)!.seq;
    const { seq: markSeq, above } = this.mark;
    return rows.filter((r) =>
      !this.inFlight.has(r.seq) &&
      (r.seq <= pass.resendUntil || !(r.seq <= markSeq || above.has(r.seq)))
    );
  }

  /** New rows were claimed (seq order). */
  claimed(epoch: string, lastSeq: number): void {
    if (epoch !== this.epoch) this.#reset(epoch);
    this.lastSeq = Math.max(this.lastSeq, lastSeq);
  }

  /** Rows up to `seq` were handed to the broker at `now`. */
  noteSent(seq: number, now: number): void {
    const last = this.sentLog.at(-1);
    if (last && now - last.at < 1_000) last.seq = Math.max(last.seq, seq);
    else this.sentLog.push({ seq, at: now });
  }

  /** `seq` of `epoch` got its PUBACK. */
  published(epoch: string, seq: number): void {
    if (epoch !== this.epoch || seq <= this.mark.seq) return;
    this.mark.above.add(seq);
    while (this.mark.above.delete(this.mark.seq + 1)) this.mark.seq++;
  }

  /**
   * The vessel acknowledged `epoch` up to `seq` at `now`; true when its ack moved (the re-send
   * delay then starts over).
   */
  acked(epoch: string, seq: number, now: number): boolean {
    if (epoch !== this.epoch) {
      this.#earlyAck = { epoch, seq };
      return false;
    }
    this.sentLog = this.sentLog.filter((e) => e.seq > seq);
    this.#raiseMark(seq); // acknowledged is published, whatever PUBACK was lost
    if (seq <= this.ackedSeq) return false;
    this.ackedSeq = seq;
    this.lastSeq = Math.max(this.lastSeq, seq);
    this.resendDelay = this.#opts.ackTimeoutMs;
    if (now) this.lastAckAt = now;
    return true;
  }

  /** The shore's stream for this vessel started a new epoch (a restored shore database). */
  newEpoch(epoch: string): void {
    this.#reset(epoch);
    this.pass = null;
    this.passRequest = null;
  }

  /**
   * Sends older than the re-send delay with no ack since: requests an "all" pass up to the
   * newest of them and doubles the delay. Returns the range re-sent, or null.
   */
  dueResend(now: number): { fromSeq: number; toSeq: number; delayMs: number } | null {
    const expired = this.sentLog.filter((e) => now - e.at >= this.resendDelay);
    if (expired.length === 0) return null;
    this.sentLog = this.sentLog.filter((e) => now - e.at < this.resendDelay);
    const untilSeq = Math.max(...expired.map((e) => e.seq));
    if (untilSeq <= this.ackedSeq) return null;
    const delayMs = this.resendDelay;
    this.requestPass("all", untilSeq);
    this.resendDelay = Math.min(this.resendDelay * 2, this.#opts.maxResendMs);
    return { fromSeq: this.ackedSeq + 1, toSeq: untilSeq, delayMs };
  }

  /**
   * The shore (re)connected: the vessel could not ack while it was away, so every send's
   * clock restarts. Without a session at the broker, whatever it queued for the vessel may be
   * gone: re-send every unacknowledged row now; with one, only what never got a PUBACK.
   */
  connected(sessionPresent: boolean, now: number): void {
    for (const e of this.sentLog) e.at = now;
    this.resendDelay = this.#opts.ackTimeoutMs;
    this.requestPass(sessionPresent ? "unpublished" : "all");
  }

  /**
   * The database's stream has claims up to `lastSeq` beyond the vessel's ack. Those this
   * process did not make (another shore instance's, perhaps dead before it sent them) are
   * timed as sent now: unacknowledged after the delay, the re-send covers them. Before the
   * stream's first pass (`epoch` unknown) the pass decides instead.
   */
  claimedElsewhere(epoch: string, lastSeq: number, now: number): void {
    if (epoch !== this.epoch || lastSeq <= this.lastSeq) return;
    this.lastSeq = lastSeq;
    this.noteSent(lastSeq, now);
  }

  /** The vessel is offline (its status says so): its sends' clocks stand still. */
  away(now: number): void {
    for (const e of this.sentLog) e.at = Math.max(e.at, now);
  }

  /** Merges a catch-up request into the one waiting (the earliest `since` wins). */
  askCatchup(request: DownCatchupRequest): void {
    const waiting = this.catchup;
    if (!waiting || typeof request.since !== typeof waiting.since) {
      this.catchup = request;
      return;
    }
    const earlier = request.since < waiting.since ? request : waiting;
    this.catchup = {
      ...earlier,
      limit: Math.max(request.limit ?? 0, waiting.limit ?? 0) || undefined,
      entity: request.entity === waiting.entity ? request.entity : undefined,
    };
  }

  #raiseMark(seq: number) {
    if (seq <= this.mark.seq) return;
    this.mark.seq = seq;
    for (const s of this.mark.above) if (s <= seq) this.mark.above.delete(s);
    while (this.mark.above.delete(this.mark.seq + 1)) this.mark.seq++;
  }

  #reset(epoch: string) {
    this.epoch = epoch;
    this.lastSeq = 0;
    this.ackedSeq = 0;
    this.mark = { seq: 0, above: new Set() };
    this.savedSeq = 0;
    this.sentLog = [];
    this.resendDelay = this.#opts.ackTimeoutMs;
  }
}
