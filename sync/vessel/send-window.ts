/**
 * The publisher's send side: the buffer of rows it read (claimed, or re-read by a pass), the
 * publishes in flight, and what a PUBACK or a failure does. The publisher's loop
 * (sync/vessel/publisher.ts) decides which rows to read and when; this decides when they leave
 * and how.
 *
 * `LINK_MODE=messages`: one message per row on its entity's topic, at most `window` in flight.
 * `LINK_MODE=frames`: a contiguous run of buffered rows leaves as one frame (sync/frame.ts) on
 * `<root>/frames` at QoS 1, and all its rows are published on its PUBACK. Rows claimed from an
 * empty backlog (live writes) leave at once when no frame is in flight, and otherwise wait for
 * its PUBACK (at most `lingerMs`) for company, as Nagle's algorithm does: no wait on a fast
 * link, full frames on a slow one.
 */
import type { OutboxRow } from "../../db/vessel/outbox.ts";
import { priorityOf } from "../../db/vessel/records.ts";
import type { Session } from "../session.ts";
import { qosOf, topicsOf } from "../protocol.ts";
import { cutFrames, FRAME_CONTENT_TYPE, type FrameChange } from "../frame.ts";
import type { LinkPace } from "./link-pace.ts";
import type { Watermark } from "./watermark.ts";
import type { ResendClock } from "./sent-log.ts";
import type { PublisherEvent } from "./publisher.ts";

/** Options for {@linkcode SendWindow}. */
export interface SendWindowOptions {
  session: Session;
  vesselId: string;
  /** `LINK_MODE=frames`. */
  frames: boolean;
  /** Publishes awaiting PUBACK/PUBCOMP at once (messages mode). */
  window: number;
  /** `LINK_LINGER_MS` (frames mode). */
  lingerMs: number;
  /** At or below this many buffered rows, the loop may read more (`onLow`). */
  lowWater: number;
  /** The link's measured rate: what a send costs and what a frame may hold. */
  pace: LinkPace;
  /** Raised by every PUBACK; told of the broker's refusals. */
  watermark: Watermark;
  /** Told of every send, for re-sends counted from the send. */
  resends: ResendClock;
  onEvent: (event: PublisherEvent) => void;
  /** A publish completed with the buffer at or below `lowWater`: room to read more. */
  onLow: () => void;
}

/** The buffer and the publishes in flight. */
export class SendWindow {
  #o: SendWindowOptions;
  #topics: ReturnType<typeof topicsOf>;
  #buffer: OutboxRow[] = [];
  /** Seqs published and not yet PUBACKed (or failed). */
  readonly inFlightSeqs = new Set<number>();
  #framesInFlight = 0;
  #lingerUntil = 0;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;
  #lastPublishedSeq = 0;
  #stopped = false;

  constructor(options: SendWindowOptions) {
    this.#o = options;
    this.#topics = topicsOf(options.vesselId);
  }

  /** Rows read and not yet sent. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Highest seq this process saw PUBACKed. */
  get lastPublishedSeq(): number {
    return this.#lastPublishedSeq;
  }

  /** Queues rows (in seq order within an epoch) behind what is buffered. */
  push(rows: OutboxRow[]): void {
    for (const row of rows) this.#buffer.push(row);
  }

  /** Drops what is buffered (a pass re-reads it, or the link is down); in flight stays. */
  clear(): void {
    this.#buffer = [];
  }

  /**
   * Sends what the window has room for. Called on every completion as well as by the loop:
   * the window stays full while the loop awaits the database, instead of draining during
   * every claim.
   */
  pump(): void {
    const { session, frames, window, lowWater } = this.#o;
    if (frames) {
      // Live rows wait for company only while a frame is on its way (as Nagle's algorithm does):
      // with nothing in flight they leave at once; otherwise the PUBACK or the timer pumps.
      if (
        Date.now() < this.#lingerUntil && this.#framesInFlight > 0 &&
        this.#buffer.length < lowWater
      ) return;
      while (
        this.#buffer.length && this.#framesInFlight < this.#frameWindow() && session.connected &&
        !this.#stopped
      ) this.#sendFrames(this.#takeRun());
      return;
    }
    while (
      this.#buffer.length && this.inFlightSeqs.size < window && session.connected &&
      !this.#stopped
    ) this.#send(this.#buffer.shift()!);
  }

  /** Live rows (claimed from an empty backlog) wait up to `lingerMs` to fill a frame. */
  linger(): void {
    const { frames, lingerMs } = this.#o;
    if (!frames || lingerMs <= 0 || this.#lingerUntil > Date.now()) return;
    this.#lingerUntil = Date.now() + lingerMs;
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = setTimeout(() => {
      this.#lingerUntil = 0;
      this.pump();
    }, lingerMs);
  }

  /** Sends nothing more; publishes in flight complete on their own. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#lingerTimer);
  }

  /**
   * Frames in flight at once: each holds up to a buffer's worth of rows. Where the round trip
   * is long the claim budget is what should limit them: at 8, lone alerts' frames and the small
   * frames claimed from slivers of the budget filled the slots with less than the budget in
   * them and held the satellite hop below its rate (simulated: 0.95 of it at 8, 0.99 at 16).
   * Where it is short, 8 gather live writes into fuller frames: 16 raised commit-to-PUBACK at
   * 500 writes/s on loopback from p99 17-18 to 22-26 ms.
   */
  #frameWindow(): number {
    return this.#o.pace.roundTripMs >= 200 ? 16 : 8;
  }

  #send(row: OutboxRow) {
    const { session, pace, watermark, resends, onEvent } = this.#o;
    // Built by PostgreSQL from the jsonb text and fixed-format fields: it cannot fail, so no
    // row can block the queue behind it (see envelopeSql).
    const payload = row.json;
    const qos = qosOf(row.entity);
    this.inFlightSeqs.add(row.seq);
    resends.noteSent(row.epoch, row.seq);
    const paced = pace.sent(payload.length, 1);
    session.publish(this.#topics.data(row.entity), payload, { qos }).then(() => {
      pace.acked(paced);
      this.#lastPublishedSeq = Math.max(this.#lastPublishedSeq, row.seq);
      watermark.published(row);
      onEvent({ type: "published", entity: row.entity, qos, seq: row.seq });
    }, (err) => {
      pace.failed(paced);
      // The row holds the watermark below it. After a drop, the next connect's pass sends it again;
      // a broker refusal (a PUBACK reason code) waits for the backed-off re-send pass, so one
      // refused row neither blocks the rows behind it nor spins.
      if (isRefusal(err)) watermark.refuse(row.epoch, [row.seq]);
      onEvent({ type: "publish_failed", seq: row.seq, error: err });
    }).finally(() => {
      this.inFlightSeqs.delete(row.seq);
      this.#settled();
    });
  }

  /** Publishes `rows` (one contiguous run of one epoch) as frames cut at the size cap. */
  #sendFrames(rows: OutboxRow[]) {
    const { session, pace, watermark, resends, onEvent } = this.#o;
    const envelopes = rows.map((r) => JSON.parse(r.json) as FrameChange);
    let at = 0;
    for (const frame of cutFrames(envelopes)) {
      const part = rows.slice(at, at + frame.count);
      at += frame.count;
      for (const row of part) this.inFlightSeqs.add(row.seq);
      resends.noteSent(part[0]!.epoch, frame.toSeq);
      this.#framesInFlight++;
      const paced = pace.sent(frame.payload.length, frame.count);
      session.publish(this.#topics.frames, frame.payload, {
        qos: 1,
        contentType: FRAME_CONTENT_TYPE,
      }).then(() => {
        pace.acked(paced);
        this.#lastPublishedSeq = Math.max(this.#lastPublishedSeq, frame.toSeq);
        for (const row of part) {
          watermark.published(row);
          onEvent({ type: "published", entity: row.entity, qos: 1, seq: row.seq });
        }
      }, (err) => {
        pace.failed(paced);
        if (isRefusal(err)) watermark.refuse(part[0]!.epoch, part.map((row) => row.seq));
        onEvent({ type: "publish_failed", seq: frame.fromSeq, error: err });
      }).finally(() => {
        this.#framesInFlight--;
        for (const row of part) this.inFlightSeqs.delete(row.seq);
        this.#settled();
      });
    }
  }

  /** A publish completed: fill the window again, and let the loop read more when low. */
  #settled() {
    this.pump();
    if (this.#buffer.length <= this.#o.lowWater) this.#o.onLow();
  }

  /**
   * The longest prefix of the buffer that runs on by seq within one epoch, at most a quarter
   * of the claim budget: several frames share the link's second, so room for an alert's
   * claim opens as each is PUBACKed rather than once per second. Alerts (claimed first) leave
   * in a frame of their own: sharing one with the backlog rows claimed behind them, they
   * waited for all of those to cross the link (a quarter second on the satellite hop) and to
   * be applied ashore before them.
   */
  #takeRun(): OutboxRow[] {
    const buffer = this.#buffer;
    const most = Math.max(1, Math.ceil(this.#o.pace.rowBudget() / 4));
    const urgent = (row: OutboxRow) => priorityOf(row.entity) === 0;
    let n = 1;
    while (
      n < buffer.length && n < most && buffer[n]!.epoch === buffer[0]!.epoch &&
      buffer[n]!.seq === buffer[n - 1]!.seq + 1 && urgent(buffer[n]!) === urgent(buffer[0]!)
    ) n++;
    return buffer.splice(0, n);
  }
}

/** A PUBACK/PUBREC reason code (mqtt.js's ErrorWithReasonCode), as against a dropped link. */
function isRefusal(err: unknown): boolean {
  return typeof (err as { code?: unknown } | null)?.code === "number";
}
