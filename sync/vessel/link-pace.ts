/**
 * How much the link carries in a second, measured from PUBACK timing, and so how many changes
 * the publisher may hold claimed but not yet acknowledged by the broker.
 *
 * Why: a change gets its seq when it is claimed, and alerts are claimed first. A claim that
 * runs a thousand rows ahead of a slow link puts an alert committed meanwhile behind all of
 * them. Claiming no further ahead than about a second of the link's bytes lets the alert ride
 * a frame that leaves within about a second.
 *
 * The estimate, from two kinds of sample of the last `WINDOW_MS`, the median of each (one
 * lost segment holds a publish back and the PUBACKs behind it then come in a burst: a median
 * shrugs that off, a maximum would not):
 *
 * - the spacing of PUBACKs: of publishes sent together, each queued behind the one before on
 *   the link, so from the first one's PUBACK to the last one's the link carried the others
 *   (their bytes over that time; PUBACKs read together are one burst's span, not several). This measures the link even while the budget, not the link, limits
 *   what is in flight, where a delivery rate would measure the budget over the round trip
 *   (and a budget of rate × horizon would settle at a fraction of the link whenever the round
 *   trip is a good part of the horizon: 0.4 of it on a 600 ms satellite hop, measured).
 * - the delivery rate (bytes PUBACKed between a publish's send and its PUBACK, over that
 *   time): a floor for the first seconds, before spacings were seen.
 *
 * It starts at `floorBytes` a horizon and never goes below.
 */

const WINDOW_MS = 10_000;

/** Options for {@linkcode LinkPace}. */
export interface LinkPaceOptions {
  /** How far ahead of the broker's PUBACKs to claim, ms of the link's bytes. */
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
  ackedBefore: number;
}

/** The link's measured pace and the claim budget it allows. */
export class LinkPace {
  readonly horizonMs: number;
  readonly floorBytes: number;
  /** Payload bytes per change, smoothed: turns a byte budget into rows. */
  bytesPerRow = 200;
  #now: () => number;
  #acked = 0;
  // Publishes sent together, as their PUBACKs come: the first PUBACK's time, and the bytes
  // PUBACKed after it up to the latest.
  #burst = { sentAt: -Infinity, firstAckAt: 0, lastAckAt: 0, bytes: 0 };
  #delivery: { at: number; rate: number }[] = [];
  #spacing: { at: number; rate: number }[] = [];

  constructor(options: LinkPaceOptions = {}) {
    this.horizonMs = options.horizonMs ?? 1_000;
    this.floorBytes = options.floorBytes ?? 16 * 1024;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes per second the link carries, as measured (see the header). */
  get rate(): number {
    const floor = this.floorBytes * 1_000 / this.horizonMs;
    return Math.max(floor, median(this.#delivery), median(this.#spacing));
  }

  /** A publish of `bytes` carrying `rows` changes left. */
  sent(bytes: number, rows: number): Sent {
    if (rows > 0) this.bytesPerRow += (bytes / rows - this.bytesPerRow) / 8;
    return { bytes, at: this.#now(), ackedBefore: this.#acked };
  }

  /** The broker acknowledged a publish. */
  acked(sent: Sent): void {
    this.#acked += sent.bytes;
    const now = this.#now();
    add(
      this.#delivery,
      now,
      now,
      (this.#acked - sent.ackedBefore) * 1_000 / Math.max(1, now - sent.at),
    );
    const burst = this.#burst;
    if (Math.abs(sent.at - burst.sentAt) <= 2) {
      burst.bytes += sent.bytes;
      burst.lastAckAt = now;
      return;
    }
    // A burst is over: its later publishes took the link from its first PUBACK to its last.
    // Over less than 20 ms the clock says little (and on such a link the budget is large).
    const span = burst.lastAckAt - burst.firstAckAt;
    prune(this.#spacing, now);
    if (burst.bytes > 0 && span >= 20) {
      add(this.#spacing, burst.lastAckAt, now, burst.bytes * 1_000 / span);
    }
    this.#burst = { sentAt: sent.at, firstAckAt: now, lastAckAt: now, bytes: 0 };
  }

  /** Changes that may be claimed and not yet PUBACKed at once. */
  rowBudget(): number {
    const bytes = Math.max(this.floorBytes, this.rate * this.horizonMs / 1_000);
    return Math.max(1, Math.floor(bytes / Math.max(1, this.bytesPerRow)));
  }
}

/** Keeps a sample taken `at`, forgetting those older than `WINDOW_MS` (and more than 64). */
function add(samples: { at: number; rate: number }[], at: number, now: number, rate: number) {
  samples.push({ at, rate });
  prune(samples, now);
}

function prune(samples: { at: number; rate: number }[], now: number) {
  while (samples.length > 64 || (samples.length && now - samples[0]!.at > WINDOW_MS)) {
    samples.shift();
  }
}

function median(samples: { rate: number }[]): number {
  if (samples.length === 0) return 0;
  const sorted = samples.map((s) => s.rate).sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
