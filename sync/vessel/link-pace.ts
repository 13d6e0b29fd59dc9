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
 * It starts at `floorBytes` a horizon and never goes below. From there it probes up as TCP's
 * slow start and BBR's start-up do: until the link is full, what may be in flight is two round
 * trips of the measured rate, so each round trip's samples are up to twice the last (a horizon
 * above the round trip, as after start-up, grew them by 1.3-1.4× a round trip on the satellite
 * hop). Start-up ends when a whole round trip's PUBACKs come back later than the round trip by a
 * quarter horizon (a queue formed and lasted: HyStart's test), or after three round trips whose
 * best sample grew less than a quarter (BBR's); it begins again when nothing above the floor is
 * remembered. Two more things kept the satellite drain at 0.7-0.85 of the link: changes were
 * counted at 200 bytes each until publishes taught better (they carry 26), and a lost segment's
 * retransmission held the PUBACKs, and with them the budget, while the link went on carrying:
 * see {@linkcode LinkPace.byteBudget}.
 */

const WINDOW_MS = 10_000;
/** The round trip is the least of this long: see {@linkcode LinkPace.roundTripMs}. */
const RTT_WINDOW_MS = 60_000;
/** Start-up: what may be in flight is this many round trips of the measured rate (BBR's cwnd gain). */
const STARTUP_GAIN = 2;
/** Start-up ends after this many round trips in a row whose best sample grew less than 25 %. */
const STARTUP_FLAT_ROUNDS = 3;

/** Options for {@linkcode LinkPace}. */
export interface LinkPaceOptions {
  /**
   * How far ahead of the broker's PUBACKs to claim, ms of the link's measured bytes: at least
   * this, and at least the round trip and a third of it (see {@linkcode LinkPace.byteBudget}).
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
  /** Payload bytes per change (a guess until the first publish): turns a byte budget into rows. */
  bytesPerRow = 200;
  // Bytes and rows of recent publishes, each sum decaying by 7/8 a publish: weighted by rows,
  // so a lone alert's frame (188 bytes for one row) does not shrink the next claim.
  #rowBytes = 0;
  #rows = 0;
  #now: () => number;
  #acked = 0;
  #ackedAt = 0;
  #firstSentAt = 0;
  #inFlight = 0;
  #delivery: Samples = [];
  #rtt: Samples = [];
  #startup = true;
  // A round trip ends with the PUBACK of a publish sent after it began.
  #roundStart = -Infinity;
  #roundBest = 0;
  #roundLeastDelay = Infinity;
  #startupBest = 0;
  #flatRounds = 0;

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

  /** Still probing up from the floor (see {@linkcode LinkPace.byteBudget}). */
  get startingUp(): boolean {
    return this.#startup;
  }

  /** A publish of `bytes` carrying `rows` changes left. */
  sent(bytes: number, rows: number): Sent {
    if (rows > 0) {
      this.#rowBytes = this.#rowBytes * 7 / 8 + bytes;
      this.#rows = this.#rows * 7 / 8 + rows;
      this.bytesPerRow = this.#rowBytes / this.#rows;
    }
    const at = this.#now();
    // Nothing on its way: the link was idle, its clock starts at this send.
    if (this.#inFlight++ === 0) {
      this.#ackedAt = this.#firstSentAt = at;
      // Nothing measured above the floor for a while (a trickle, an outage): probe up again.
      if (!this.#startup && this.rate <= this.floorBytes) this.#restart();
    }
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
    this.#roundLeastDelay = Math.min(this.#roundLeastDelay, now - sent.at);
    this.#ackedAt = now;
    this.#firstSentAt = sent.at;
    // Under 20 ms the clock says little (and on such a link the budget is large anyway).
    const interval = Math.max(now - sent.ackedAt, sent.at - sent.firstSentAt);
    if (interval >= 20) {
      const rate = (this.#acked - sent.ackedBefore) * 1_000 / interval;
      keep(this.#delivery, now, rate, Math.max, WINDOW_MS);
      this.#roundBest = Math.max(this.#roundBest, rate);
    }
    if (this.#startup && sent.at >= this.#roundStart) this.#roundEnded(now);
  }

  #restart() {
    this.#startup = true;
    this.#roundStart = -Infinity;
    this.#roundBest = this.#startupBest = this.#flatRounds = 0;
    this.#roundLeastDelay = Infinity;
  }

  /**
   * Start-up ends as BBR's does: once three round trips in a row failed to raise the best
   * sample by a quarter, the budget, not the link, no longer limits the samples: the link is
   * full.
   */
  #roundEnded(now: number) {
    // Every PUBACK of the round later than the round trip by a quarter horizon: a queue
    // formed and lasted a whole round trip, so the link is full (as HyStart ends slow start).
    const queued = this.#roundLeastDelay > this.roundTripMs + this.horizonMs / 4;
    if (queued) this.#startup = false;
    else if (this.#roundStart > -Infinity) {
      if (this.#roundBest >= this.#startupBest * 1.25) {
        this.#startupBest = this.#roundBest;
        this.#flatRounds = 0;
      } else if (++this.#flatRounds >= STARTUP_FLAT_ROUNDS) this.#startup = false;
    }
    this.#roundStart = now;
    this.#roundBest = 0;
    this.#roundLeastDelay = Infinity;
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
   * is a good part of that, the round trip's worth, so the link stays full, and a third of the
   * horizon more, which queue ahead of an alert. (The round trip alone in a second's budget
   * left 0.4 s of queue on the 600 ms satellite hop, and on a loaded machine, whose PUBACKs
   * take 0.75-1.2 s there, none: the estimate then never climbed above its floor; start-up now
   * climbs it. Half a horizon instead of a third kept the satellite link no fuller, for 0.1-0.2
   * s more of every alert's delay.) In start-up, at least two round trips' worth; between
   * PUBACKs, plus what the link carried since the last.
   */
  byteBudget(): number {
    const rtt = this.roundTripMs;
    let ahead = Math.max(this.horizonMs, rtt + this.horizonMs / 3);
    if (this.#startup) ahead = Math.max(ahead, STARTUP_GAIN * rtt);
    return Math.max(this.floorBytes, this.rate * ahead / 1_000 + this.#carried(rtt));
  }

  /**
   * What the link carried since the last PUBACK, at the measured rate, for up to the round trip
   * and half the horizon: bytes no longer queued ahead of an alert claimed now, so the budget
   * may send that many more. A lost segment holds back every PUBACK behind it for a
   * retransmission (a round trip and more), but not the link, which goes on carrying its queue:
   * counting only PUBACKs, the budget ran out half a second into such a stall and the link
   * idled for the rest of it. Nothing at a PUBACK (the budget is then what the PUBACKs allow),
   * nothing before the first (no round trip known), and bounded, so that PUBACKs that stopped
   * for good (a dead link) stop the sending too.
   */
  #carried(rtt: number): number {
    if (this.#inFlight === 0 || rtt === 0) return 0;
    const since = Math.max(0, this.#now() - this.#ackedAt);
    return this.rate * Math.min(since, rtt + this.horizonMs / 2) / 1_000;
  }

  /**
   * How long until the budget has grown by `bytes` with no PUBACK (the link carrying its queue,
   * see {@linkcode LinkPace.byteBudget}); Infinity where only a PUBACK can open it.
   */
  msUntilRoom(bytes: number): number {
    const rtt = this.roundTripMs;
    if (this.#inFlight === 0 || rtt === 0) return Infinity;
    const ms = Math.max(0, bytes) * 1_000 / this.rate;
    const since = Math.max(0, this.#now() - this.#ackedAt);
    return since + ms > rtt + this.horizonMs / 2 ? Infinity : ms;
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
