/**
 * The bound on unacknowledged changes (`OUTBOX_MAX_PENDING`) and the wake-up of the publisher.
 *
 * Counting a million-row outbox on every write would cost more than the write, so the count
 * lives here: seeded from the database at start, raised by every committed write, lowered by
 * every acknowledgement, and re-read from the database by the engine now and then.
 */
import { OutboxFullError } from "./errors.ts";

/** Admission of writes against the outbox bound, and the "a change was committed" signal. */
export class OutboxGate {
  #pending = 0;
  #limit: number;
  #listeners = new Set<() => void>();

  constructor(limit: number) {
    this.#limit = limit;
  }

  /** Changes committed and not yet acknowledged, as far as this process knows. */
  get pending(): number {
    return this.#pending;
  }

  /** Throws {@linkcode OutboxFullError} (503 with `Retry-After`) when the bound is reached. */
  admit(): void {
    if (this.#pending >= this.#limit) throw new OutboxFullError(this.#pending, this.#limit);
  }

  /** A write committed `n` changes: count them and wake whoever waits for work. */
  added(n = 1): void {
    this.#pending += n;
    for (const fn of this.#listeners) fn();
  }

  /** `n` changes were acknowledged and no longer count against the bound. */
  released(n: number): void {
    this.#pending = Math.max(0, this.#pending - n);
  }

  /** Replaces the count with the database's. */
  reset(pending: number): void {
    this.#pending = pending;
  }

  /** Calls `fn` after every committed write; returns the unsubscribe. */
  onAdded(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }
}
