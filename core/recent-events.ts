/**
 * The last warnings and errors the gateway logged, kept in memory for the status page: the
 * engineer on watch sees what went wrong lately without reading a journal.
 */
import type { Level } from "./log.ts";

/** One logged event, as the status page shows it. */
export interface RecentEvent {
  t: string;
  level: Level;
  msg: string;
  /** The event's error, when it carried one (already a message, core/log.ts). */
  error?: string;
}

/** A ring buffer of the last `capacity` warn and error events. */
export class RecentEvents {
  #events: RecentEvent[] = [];
  #capacity: number;

  constructor(capacity = 20) {
    this.#capacity = capacity;
  }

  /** Keeps `event` when it is a warning or an error; drops the oldest past capacity. */
  record(event: RecentEvent): void {
    if (event.level !== "warn" && event.level !== "error") return;
    this.#events.push(event);
    if (this.#events.length > this.#capacity) this.#events.shift();
  }

  /** Newest first. */
  list(): RecentEvent[] {
    return [...this.#events].reverse();
  }
}
