/**
 * Hybrid logical clocks for two-way sync (Kulkarni, Demirbas et al., "Logical Physical Clocks
 * and Consistent Snapshots in Globally Distributed Databases", 2014), encoded as short strings
 * whose plain string order is the clocks' total order.
 *
 * A timestamp is (wall ms, counter, origin). The origin is the last tie-break and the vessel's
 * sorts after the shore's, so on a tie of wall and counter "the later clock wins" means "the
 * vessel wins" (docs/two-way-sync.md). That document says what these clocks guarantee and what
 * they do not; sync/merge.ts is where they decide.
 */

/** Which side of one vessel's two-way stream wrote a change. */
export type Origin = "vessel" | "shore";

/** An encoded timestamp: compare with `<`, `>` or {@linkcode compareClocks}. */
export type Clock = string;

/** A decoded timestamp. */
export interface Timestamp {
  wall: number;
  counter: number;
  origin: Origin;
}

// 12 hex digits of milliseconds last until the year 10889; 6 of counter allow 16.7 million
// events within one millisecond of wall time before the counter borrows a millisecond.
const WALL_DIGITS = 12;
const COUNTER_DIGITS = 6;
const MAX_WALL = 16 ** WALL_DIGITS - 1;
const MAX_COUNTER = 16 ** COUNTER_DIGITS - 1;
const CLOCK = /^([0-9a-f]{12})([0-9a-f]{6})([sv])$/;

/** Default bound on how far a clock may run ahead of this machine's time: five minutes. */
export const DEFAULT_MAX_DRIFT_MS = 5 * 60_000;

/** Encodes a timestamp; the string order of encodings is the order of timestamps. */
export function encodeClock({ wall, counter, origin }: Timestamp): Clock {
  if (!Number.isInteger(wall) || wall < 0 || wall > MAX_WALL) {
    throw new RangeError(`Wall time "${wall}" is out of range`);
  }
  if (!Number.isInteger(counter) || counter < 0 || counter > MAX_COUNTER) {
    throw new RangeError(`Counter "${counter}" is out of range`);
  }
  return wall.toString(16).padStart(WALL_DIGITS, "0") +
    counter.toString(16).padStart(COUNTER_DIGITS, "0") + (origin === "vessel" ? "v" : "s");
}

/** True when `text` is an encoded clock (for zod at the edges). */
export function isClock(text: string): text is Clock {
  return CLOCK.test(text);
}

/** Decodes a clock from {@linkcode encodeClock}. */
export function decodeClock(clock: Clock): Timestamp {
  const m = CLOCK.exec(clock);
  if (!m) throw new RangeError(`"${clock}" is not a clock`);
  return {
    wall: parseInt(m[1]!, 16),
    counter: parseInt(m[2]!, 16),
    origin: m[3] === "v" ? "vessel" : "shore",
  };
}

/** -1, 0 or 1 as `a` sorts before, with or after `b`. */
export function compareClocks(a: Clock, b: Clock): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The greater of two clocks; `null` stands for "no clock yet" and loses to any clock. */
export function maxClock(a: Clock | null, b: Clock | null): Clock | null {
  if (a === null) return b;
  if (b === null) return a;
  return a > b ? a : b;
}

/** The smallest timestamp of `origin` that sorts after `clock` whatever `clock`'s origin. */
export function successor(clock: Clock, origin: Origin): Clock {
  const { wall, counter } = decodeClock(clock);
  return counter < MAX_COUNTER
    ? encodeClock({ wall, counter: counter + 1, origin })
    : encodeClock({ wall: wall + 1, counter: 0, origin });
}

/** A clock for human eyes: `2026-11-30T10:00:00.000Z+3 vessel`. */
export function describeClock(clock: Clock): string {
  const { wall, counter, origin } = decodeClock(clock);
  return `${new Date(wall).toISOString()}+${counter} ${origin}`;
}

/** Options for {@linkcode Hlc}. */
export interface HlcOptions {
  origin: Origin;
  /** This machine's time in ms (default `Date.now`); tests pass a skewed one. */
  now?: () => number;
  /** How far a remote clock may be ahead of this machine before it is clamped (ms). */
  maxDriftMs?: number;
}

/** What {@linkcode Hlc.receive} saw. */
export interface Receipt {
  /** The local clock after the receipt. */
  clock: Clock;
  /** How far the remote clock was ahead of local time beyond the accepted drift (ms), or 0. */
  aheadMs: number;
}

/**
 * One side's hybrid logical clock. Not persisted: after a restart it starts again from the
 * machine's time, which is safe because every write also takes a clock after its record's own
 * (see {@linkcode Hlc.after}), so causality per record never depends on this state surviving.
 */
export class Hlc {
  readonly origin: Origin;
  readonly maxDriftMs: number;
  #now: () => number;
  #wall = 0;
  #counter = 0;

  constructor({ origin, now = Date.now, maxDriftMs = DEFAULT_MAX_DRIFT_MS }: HlcOptions) {
    if (!(maxDriftMs >= 0)) throw new RangeError(`maxDriftMs "${maxDriftMs}" must be >= 0`);
    this.origin = origin;
    this.maxDriftMs = maxDriftMs;
    this.#now = now;
  }

  /** A timestamp for a local event: after every earlier one of this clock. */
  now(): Clock {
    const pt = this.#physical();
    if (pt > this.#wall) {
      this.#wall = pt;
      this.#counter = 0;
    } else {
      this.#tick();
    }
    return this.#encode();
  }

  /**
   * Takes in a clock from the other side (the HLC paper's receive). A remote wall time beyond
   * local time + maxDriftMs is clamped to that bound, so a peer whose clock runs hours fast
   * cannot drag this side's clock (and so every later write here) hours into the future; the
   * excess is reported for the caller to count. The remote clock itself is never altered:
   * both sides must compare the same clocks to converge.
   */
  receive(remote: Clock): Receipt {
    const r = decodeClock(remote);
    const pt = this.#physical();
    const bound = pt + this.maxDriftMs;
    const aheadMs = r.wall > bound ? r.wall - bound : 0;
    const rWall = Math.min(r.wall, bound);
    const rCounter = aheadMs > 0 ? 0 : r.counter;
    const wall = Math.max(this.#wall, rWall, pt);
    if (wall === this.#wall && wall === rWall) {
      this.#counter = Math.max(this.#counter, rCounter);
      this.#tick();
    } else if (wall === this.#wall) {
      this.#tick();
    } else if (wall === rWall) {
      this.#wall = wall;
      this.#counter = rCounter;
      this.#tick();
    } else {
      this.#wall = wall;
      this.#counter = 0;
    }
    return { clock: this.#encode(), aheadMs };
  }

  /**
   * A timestamp for a local write over state whose newest clock is `latest`: strictly after
   * it whatever the clocks' skew, so an edit made after seeing another always wins over it.
   * A `latest` within the drift bound advances this clock (as a receipt would); one beyond it
   * does not, and the write takes the successor of `latest` instead.
   */
  after(latest: Clock | null): Clock {
    if (latest === null) return this.now();
    this.receive(latest);
    const mine = this.now();
    return mine > latest ? mine : successor(latest, this.origin);
  }

  #physical(): number {
    return Math.max(0, Math.floor(this.#now()));
  }

  // A logical step within the same wall millisecond; a full counter borrows the next one.
  #tick(): void {
    if (this.#counter < MAX_COUNTER) {
      this.#counter++;
    } else {
      this.#wall++;
      this.#counter = 0;
    }
  }

  #encode(): Clock {
    return encodeClock({ wall: this.#wall, counter: this.#counter, origin: this.origin });
  }
}
