/**
 * How much the link carries in a second, measured from PUBACK timing, and so how many changes
 * the publisher may hold claimed but not yet acknowledged by the broker.
 *
 * Why: a change gets its seq when it is claimed, and alerts are claimed first. A claim that
 * runs a thousand rows ahead of a slow link puts an alert committed meanwhile behind all of
 * them. Claiming no further ahead than about a second of the link's bytes lets the alert ride
 * a frame that leaves within about a second.
 *
 * The estimate: bytes PUBACKed per second over the time something was in flight (an idle
 * link says nothing about its capacity), sampled every `SAMPLE_MS` or when in-flight drains.
 * It starts at `floorBytes` a horizon and grows quickly (half-way to a higher sample); it
 * falls slowly (an eighth of the way), and only on samples taken while the budget was
 * binding: a trickle of live writes measures the writer, not the link. While the budget
 * binds on a link faster than the horizon's round trip, each sample carries more than the
 * budget (rate ≈ budget / RTT), so the budget grows until the link, not the budget, limits.
 */

const SAMPLE_MS = 250;

/** Options for {@linkcode LinkPace}. */
export interface LinkPaceOptions {
  /** How far ahead of the broker's PUBACKs to claim, ms of the link's bytes. */
  horizonMs?: number;
  /** The budget before anything was measured, and never less: bytes. */
  floorBytes?: number;
  /** A clock (tests). */
  now?: () => number;
}

/** The link's measured pace and the claim budget it allows. */
export class LinkPace {
  readonly horizonMs: number;
  readonly floorBytes: number;
  /** Bytes per second the broker acknowledged, smoothed. */
  rate: number;
  /** Payload bytes per change, smoothed: turns a byte budget into rows. */
  bytesPerRow = 200;
  #now: () => number;
  #inFlightBytes = 0;
  #acked = 0;
  #sample: { at: number; acked: number } | null = null;
  #limited = false;

  constructor(options: LinkPaceOptions = {}) {
    this.horizonMs = options.horizonMs ?? 1_000;
    this.floorBytes = options.floorBytes ?? 16 * 1024;
    this.#now = options.now ?? Date.now;
    this.rate = this.floorBytes * 1_000 / this.horizonMs;
  }

  /** A publish of `bytes` carrying `rows` changes left. */
  sent(bytes: number, rows: number): void {
    if (this.#inFlightBytes <= 0) this.#sample = { at: this.#now(), acked: this.#acked };
    this.#inFlightBytes += bytes;
    if (rows > 0) this.bytesPerRow += (bytes / rows - this.bytesPerRow) / 8;
  }

  /** The broker acknowledged a publish of `bytes`. */
  acked(bytes: number): void {
    this.#inFlightBytes -= bytes;
    this.#acked += bytes;
    const idle = this.#inFlightBytes <= 0;
    const s = this.#sample;
    const now = this.#now();
    if (s && (now - s.at >= SAMPLE_MS || (idle && now - s.at >= 5))) {
      const sample = (this.#acked - s.acked) * 1_000 / (now - s.at);
      if (sample > this.rate) this.rate += (sample - this.rate) / 2;
      else if (this.#limited) this.rate += (sample - this.rate) / 8;
      this.rate = Math.max(this.rate, this.floorBytes * 1_000 / this.horizonMs);
      this.#sample = { at: now, acked: this.#acked };
      this.#limited = false;
    }
    if (idle) this.#idle();
  }

  /** A publish of `bytes` failed (a drop, a refusal): it is no longer in flight. */
  failed(bytes: number): void {
    this.#inFlightBytes -= bytes;
    if (this.#inFlightBytes <= 0) this.#idle();
  }

  /** The publisher wanted to claim more than the budget allowed. */
  limited(): void {
    this.#limited = true;
  }

  /** Changes that may be claimed and not yet PUBACKed at once. */
  rowBudget(): number {
    const bytes = Math.max(this.floorBytes, this.rate * this.horizonMs / 1_000);
    return Math.max(1, Math.floor(bytes / Math.max(1, this.bytesPerRow)));
  }

  #idle() {
    this.#inFlightBytes = 0;
    this.#sample = null; // the next send starts a new sample: idle time is not the link's
  }
}
