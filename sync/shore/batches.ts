/**
 * Batching and scheduling of the shore's writes, with every vessel's failures and backlog
 * kept to itself.
 *
 * Envelopes wait in one lane per (vessel, epoch) for a few milliseconds and are written in
 * batches, one batch of a vessel at a time (whatever its epochs: a vessel inventing epochs
 * gets one slot, not one per epoch), at most `concurrency` at once fleet-wide.
 *
 * Vessels share the slots by what they were given, not by turns (start-time fair queueing):
 * each vessel carries a tag that grows by the cost of every batch it is given (a fixed
 * transaction overhead plus one per change), a vessel returning from idle starts at the
 * fleet's current tag, and a free slot goes to the waiting vessel with the lowest tag. A quiet
 * vessel's one change thus goes before the next 1,000-change batch of a vessel draining a
 * backlog, and before a chatty vessel that was just served: with round-robin turns it waited
 * for a turn of every busy vessel first (p99 11 s with 200 vessels, docs/scaling.md). A busy
 * vessel still gets every slot nobody else wants.
 *
 * A failed batch goes back to the front of its lane and the lane waits out its own back-off
 * with no slot held (a slot is a database connection's worth of work: sleeping in one took
 * capacity from every other vessel), so a vessel whose data or epoch keeps failing delays only
 * itself. A vessel may hold `maxPerVessel` envelopes in memory, and more only while the shore
 * holds less than `maxBuffered - maxPerVessel`: one flooding vessel cannot shed another's, and a
 * vessel draining a backlog alone may use the room nobody else needs. Shedding is dear: a shed
 * frame leaves a gap, every later frame of the vessel waits in the inbox behind it (written with
 * its envelope, read back, updated: off the inbox's fast path) and the gap is asked for again
 * 1,000 changes a request; a 100,000-change drain that held 20,000 shed 2,048 changes and took
 * 9.9 s to be acknowledged where it was PUBACKed in 6.3 s (bench/drain.ts).
 */
import type { Envelope } from "../protocol.ts";

/**
 * What one batch costs a vessel's tag beyond one per change: a transaction's fixed work (its
 * round trips, the position row) in changes. Measured on the build machine, a one-change batch
 * took about a tenth of a 1,000-change one.
 */
export const BATCH_OVERHEAD = 100;

/** What to do with a batch whose write threw. */
export type FailurePlan = { retryInMs: number } | "drop";

/** Options for {@linkcode BatchQueue}. */
export interface BatchQueueOptions {
  /** Writes one batch of one (vessel, epoch); throwing hands the batch to `onFailure`. */
  write: (batch: Envelope[]) => Promise<void>;
  /** Decides, from the error and the lane's consecutive failures, to retry later or drop. */
  onFailure: (batch: Envelope[], err: unknown, failures: number) => FailurePlan;
  batchDelayMs: number;
  maxBatch: number;
  concurrency: number;
  maxBuffered: number;
  maxPerVessel: number;
}

interface Lane {
  vesselId: string;
  items: Envelope[];
  failures: number;
  /** Not written again before this time (ms since the epoch). */
  retryAt: number;
}

/** The shore's in-memory queue of envelopes not yet written. */
export class BatchQueue {
  #o: BatchQueueOptions;
  #lanes = new Map<string, Lane>();
  #perVessel = new Map<string, number>();
  #writing = new Set<string>(); // vessels with a batch in flight
  /** Per vessel, the tag its next batch starts at (kept while it is ahead of `#now`). */
  #tags = new Map<string, number>();
  /** The fleet's tag: that of the batch started last. */
  #now = 0;
  #buffered = 0;
  #running = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #timerAt = Infinity;
  #idle = new Set<() => void>();
  #closed = false;

  constructor(options: BatchQueueOptions) {
    this.#o = options;
  }

  /** Envelopes held and not yet written. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Queues an envelope; false when it was shed (its vessel, or the shore, holds too many). */
  push(e: Envelope): boolean {
    return this.pushAll([e]);
  }

  /**
   * Queues changes of one vessel and epoch (a frame's) whole, or none of them: a frame is
   * admitted while the bounds are not yet reached, so it may overshoot them by its own size.
   */
  pushAll(es: Envelope[]): boolean {
    const e = es[0];
    if (!e) return true;
    const held = this.#perVessel.get(e.vesselId) ?? 0;
    const { maxBuffered, maxPerVessel } = this.#o;
    if (this.#buffered >= maxBuffered) return false;
    if (held >= maxPerVessel && this.#buffered >= maxBuffered - maxPerVessel) return false;
    const key = `${e.vesselId}|${e.epoch}`;
    let lane = this.#lanes.get(key);
    if (!lane) {
      lane = { vesselId: e.vesselId, items: [], failures: 0, retryAt: 0 };
      this.#lanes.set(key, lane);
    }
    for (const x of es) lane.items.push(x);
    this.#perVessel.set(e.vesselId, held + es.length);
    this.#buffered += es.length;
    if (!this.#closed) {
      this.#wake(this.#buffered >= this.#o.maxBatch ? 0 : this.#o.batchDelayMs);
    }
    return true;
  }

  /**
   * Starts every batch that may start now: lowest tag first; among equal tags (every vessel
   * behind the fleet's tag is brought up to it) the lane holding fewest changes, then the one
   * waiting longest.
   */
  flush(now = Date.now()): void {
    let nextRetry = Infinity;
    while (this.#running < this.#o.concurrency) {
      let best: [string, Lane] | undefined;
      let bestTag = Infinity;
      let bestSize = Infinity;
      for (const [key, lane] of this.#lanes) {
        if (lane.items.length === 0 || this.#writing.has(lane.vesselId)) continue;
        if (lane.retryAt > now) {
          nextRetry = Math.min(nextRetry, lane.retryAt);
          continue;
        }
        const tag = this.#tagOf(lane.vesselId);
        if (tag < bestTag || (tag === bestTag && lane.items.length < bestSize)) {
          [best, bestTag, bestSize] = [[key, lane], tag, lane.items.length];
        }
      }
      if (!best) break;
      // To the back: among equal tags, the lanes behind this one go first next time.
      this.#lanes.delete(best[0]);
      this.#lanes.set(best[0], best[1]);
      this.#now = bestTag;
      this.#start(best[0], best[1]);
    }
    if (nextRetry < Infinity && !this.#closed) this.#wake(nextRetry - now);
  }

  /** A vessel's tag: where it left off, or the fleet's tag if it is behind (back from idle). */
  #tagOf(vesselId: string): number {
    return Math.max(this.#tags.get(vesselId) ?? 0, this.#now);
  }

  #start(key: string, lane: Lane) {
    const batch = lane.items.splice(0, this.#o.maxBatch);
    this.#tags.set(lane.vesselId, this.#tagOf(lane.vesselId) + BATCH_OVERHEAD + batch.length);
    this.#take(lane.vesselId, batch.length);
    this.#writing.add(lane.vesselId);
    this.#running++;
    this.#o.write(batch).then(
      () => {
        lane.failures = 0;
        lane.retryAt = 0;
      },
      (err) => {
        lane.failures++;
        const plan = this.#o.onFailure(batch, err, lane.failures);
        if (plan === "drop") {
          lane.failures = 0;
          return;
        }
        lane.items.unshift(...batch);
        this.#give(lane.vesselId, batch.length);
        lane.retryAt = Date.now() + plan.retryInMs;
      },
    ).finally(() => {
      this.#writing.delete(lane.vesselId);
      this.#running--;
      if (lane.items.length === 0 && lane.failures === 0) this.#lanes.delete(key);
      if (this.#tags.size > 64 + 2 * this.#lanes.size) this.#forgetTags();
      if (this.#buffered > 0 && !this.#closed) this.#wake(0);
      if (this.#running === 0) { for (const fn of this.#idle) fn(); }
    });
  }

  /** Drops the tags the fleet has passed: they say nothing #tagOf would not. */
  #forgetTags() {
    for (const [vesselId, tag] of this.#tags) {
      if (tag <= this.#now && !this.#perVessel.has(vesselId)) this.#tags.delete(vesselId);
    }
  }

  #take(vesselId: string, n: number) {
    this.#buffered -= n;
    const left = (this.#perVessel.get(vesselId) ?? 0) - n;
    if (left > 0) this.#perVessel.set(vesselId, left);
    else this.#perVessel.delete(vesselId);
  }

  #give(vesselId: string, n: number) {
    this.#buffered += n;
    this.#perVessel.set(vesselId, (this.#perVessel.get(vesselId) ?? 0) + n);
  }

  #wake(inMs: number) {
    const at = Date.now() + inMs;
    if (this.#timer !== undefined && this.#timerAt <= at) return;
    clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.flush();
    }, Math.max(0, inMs));
  }

  /**
   * Stops the timers and writes what is held until `deadlineMs` passes, retries included
   * (their back-off ignored: this is the last chance). What is left is re-sent by vessels.
   */
  async close(deadlineMs: number): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const deadline = Date.now() + deadlineMs;
    while ((this.#buffered > 0 || this.#running > 0) && Date.now() < deadline) {
      for (const lane of this.#lanes.values()) lane.retryAt = 0;
      this.flush();
      if (this.#running > 0) await new Promise<void>((resolve) => this.#idle.add(resolve));
      this.#idle.clear();
    }
  }
}
