/**
 * How much the link carries in a second, measured from PUBACK timing, and so how many changes
 * the publisher may hold claimed but not yet acknowledged by the broker.
 *
 * Why: a change gets its seq when it is claimed, and alerts are claimed first. A claim that
 * runs a thousand rows ahead of a slow link puts an alert committed meanwhile behind all of
 * them. Claiming no further ahead than about a second of the link's bytes lets the alert ride
 * a frame that leaves within about a second.
 *
 * The estimate is the highest delivery rate of the last `WINDOW_MS`, each sample taken as TCP's
 * BBR takes it: the bytes PUBACKed while a publish was on its way, over the longer of the time
 * between the PUBACK before its send and its own PUBACK (PUBACKs held back by a lost segment and
 * then read together do not inflate it: their time counts from the PUBACK before the stall) and
 * the time its send took after the publish PUBACKed before it. While the budget, not the link,
 * limits what is in flight, a sample is the budget over the round trip; a budget of a second
 * over a round trip shorter than that is more than the last sample, so the estimate climbs until
 * the link, not the budget, limits the samples. Two earlier estimators stuck below the link and
 * did not climb: medians (a budget-limited median is the budget over the round trip, and the
 * median of PUBACK spacings needed publishes sent together, which a full budget never sends) and
 * a delivery rate counted from the send (one stall's PUBACKs read together gave 1.47 MB/s on a
 * 54 KB/s link, hence the medians). Measured: docs/frames.md.
 *
 * It starts at `floorBytes` a horizon and never goes below.
 */

const WINDOW_MS = 10_000;
/** The round trip is the least of this long: see {@linkcode LinkPace.roundTripMs}. */
const RTT_WINDOW_MS = 60_000;

/** Options for {@linkcode LinkPace}. */
export interface LinkPaceOptions {
  /**
   * How far ahead of the broker's PUBACKs to claim, ms of the link's measured bytes: at least
   * this, and at least the round trip and half of it (see {@linkcode LinkPace.byteBudget}).
   */
  horizonMs?: number;
  /** The budget before anything was measured, and never less: bytes. */
  floorBytes?: number;
  /** A clock (tests). */
  now?: () => number;
}

/** What {@linkcode LinkPace.sent} hands back, for the publish's PUBACK or failure. */
export interface Sent {
  bytes: number;
  at: number;
  /** Bytes PUBACKed before the send, and when the last of them was. */
  ackedBefore: number;
  ackedAt: number;
  /** When the publish PUBACKed last before the send had been sent. */
  firstSentAt: number;
}

/** The link's measured pace and the claim budget it allows. */
export class LinkPace {
  readonly horizonMs: number;
  readonly floorBytes: number;
  /** Payload bytes per change, smoothed: turns a byte budget into rows. */
  bytesPerRow = 200;
  #now: () => number;
  #acked = 0;
  #ackedAt = 0;
  #firstSentAt = 0;
  #inFlight = 0;
  #delivery: Samples = [];
  #rtt: Samples = [];

  constructor(options: LinkPaceOptions = {}) {
    this.horizonMs = options.horizonMs ?? 1_000;
    this.floorBytes = options.floorBytes ?? 16 * 1024;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes per second the link carries, as measured (see the header). */
  get rate(): number {
    prune(this.#delivery, this.#now(), WINDOW_MS);
    let best = this.floorBytes; // a second's worth
    for (const s of this.#delivery) best = Math.max(best, s.value);
    return best;
  }

  /** A publish of `bytes` carrying `rows` changes left. */
  sent(bytes: number, rows: number): Sent {
    if (rows > 0) this.bytesPerRow += (bytes / rows - this.bytesPerRow) / 8;
    const at = this.#now();
    // Nothing on its way: the link was idle, its clock starts at this send.
    if (this.#inFlight++ === 0) this.#ackedAt = this.#firstSentAt = at;
    return {
      bytes,
      at,
      ackedBefore: this.#acked,
      ackedAt: this.#ackedAt,
      firstSentAt: this.#firstSentAt,
    };
  }

  /** The publish will not be PUBACKed (the link dropped, the broker refused it). */
  failed(_sent: Sent): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
  }

  /** The broker acknowledged a publish. */
  acked(sent: Sent): void {
    this.#inFlight = Math.max(0, this.#inFlight - 1);
    this.#acked += sent.bytes;
    const now = this.#now();
    keep(this.#rtt, now, now - sent.at, Math.min, RTT_WINDOW_MS);
    this.#ackedAt = now;
    this.#firstSentAt = sent.at;
    // Under 20 ms the clock says little (and on such a link the budget is large anyway).
    const interval = Math.max(now - sent.ackedAt, sent.at - sent.firstSentAt);
    if (interval >= 20) {
      const rate = (this.#acked - sent.ackedBefore) * 1_000 / interval;
      keep(this.#delivery, now, rate, Math.max, WINDOW_MS);
    }
  }

  /**
   * The least PUBACK delay of the last `RTT_WINDOW_MS`: the link's round trip with nothing
   * queued (and the publish's own bytes: so a little more). Not a recent window: a full
   * budget keeps a queue on a slow link, and a round trip measured through that queue would
   * grow the budget, which grows the queue. A link whose round trip grows by more than half
   * of `horizonMs` is underused until the old samples age out.
   */
  get roundTripMs(): number {
    prune(this.#rtt, this.#now(), RTT_WINDOW_MS);
    let least = Infinity;
    for (const s of this.#rtt) least = Math.min(least, s.value);
    return least === Infinity ? 0 : least;
  }

  /**
   * Bytes that may be claimed and not yet PUBACKed at once: `horizonMs` of the link's bytes
   * (about a second: what an alert claimed now waits behind), and on a link whose round trip
   * is a good part of that, the round trip's worth, so the link stays full, and half the
   * horizon more, which queue ahead of an alert. (The round trip alone in a second's budget
   * left 0.4 s of queue on the 600 ms satellite hop, and on a loaded machine, whose PUBACKs
   * take 0.75-1.2 s there, none: the estimate then never climbed above its floor.)
   */
  byteBudget(): number {
    const ahead = Math.max(this.horizonMs, this.roundTripMs + this.horizonMs / 2);
    return Math.max(this.floorBytes, this.rate * ahead / 1_000);
  }

  /** Changes that may be claimed and not yet PUBACKed at once. */
  rowBudget(): number {
    return Math.max(1, Math.floor(this.byteBudget() / Math.max(1, this.bytesPerRow)));
  }
}

type Samples = { at: number; value: number }[];

/**
 * Keeps a sample in one-second buckets, each the `pick` (Math.min or Math.max) of its samples,
 * forgetting buckets older than `windowMs`: a window's least or highest without keeping every
 * PUBACK (256 a second in messages mode).
 */
function keep(
  samples: Samples,
  now: number,
  value: number,
  pick: (a: number, b: number) => number,
  windowMs: number,
) {
  const last = samples.at(-1);
  if (last && now - last.at < 1_000) last.value = pick(last.value, value);
  else samples.push({ at: now, value });
  prune(samples, now, windowMs);
}

function prune(samples: Samples, now: number, windowMs: number) {
  while (samples.length && now - samples[0]!.at > windowMs) samples.shift();
}
