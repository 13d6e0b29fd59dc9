/**
 * Batching and scheduling of the shore's writes, with every vessel's failures kept to itself.
 *
 * Envelopes wait in one lane per (vessel, epoch) for a few milliseconds and are written in
 * batches, one batch of a vessel at a time (whatever its epochs: a vessel inventing epochs
 * gets one slot, not one per epoch), at most `concurrency` at once fleet-wide. Lanes take
 * turns: a lane that was just written goes to the back. A failed batch goes back to the front
 * of its lane and the lane waits out its own back-off with no slot held (a slot is a database
 * connection's worth of work: sleeping in one took capacity from every other vessel), so a
 * vessel whose data or epoch keeps failing delays only itself. A vessel may hold at most
 * `maxPerVessel` envelopes in memory: one flooding vessel cannot shed another's.
 */
import type { Envelope } from "../protocol.ts";

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
    if (this.#buffered >= this.#o.maxBuffered || held >= this.#o.maxPerVessel) return false;
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

  /** Starts every batch that may start now. */
  flush(now = Date.now()): void {
    let nextRetry = Infinity;
    for (const [key, lane] of [...this.#lanes]) {
      if (this.#running >= this.#o.concurrency) break;
      if (lane.items.length === 0 || this.#writing.has(lane.vesselId)) continue;
      if (lane.retryAt > now) {
        nextRetry = Math.min(nextRetry, lane.retryAt);
        continue;
      }
      // To the back: the lanes behind this one go first next time.
      this.#lanes.delete(key);
      this.#lanes.set(key, lane);
      this.#start(key, lane);
    }
    if (nextRetry < Infinity && !this.#closed) this.#wake(nextRetry - now);
  }

  #start(key: string, lane: Lane) {
    const batch = lane.items.splice(0, this.#o.maxBatch);
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
      if (this.#buffered > 0 && !this.#closed) this.#wake(0);
      if (this.#running === 0) { for (const fn of this.#idle) fn(); }
    });
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
