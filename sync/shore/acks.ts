/**
 * The shore's acks: each vessel's retained `<root>/ack`, published at most every
 * `debounceMs` per vessel, read from the database (never from memory) so that it is right
 * across restarts and with several shore processes.
 */
import type { Sql } from "../../db/connection.ts";
import type { Session } from "../session.ts";
import type { Logger } from "../../core/log.ts";
import type { ShoreMetrics } from "../../core/metrics.ts";
import { ackPayload, topicsOf } from "../protocol.ts";
import { ackPositions } from "../../db/shore/positions.ts";
import { within } from "../deadline.ts";

/** Options for {@linkcode AckPublisher}. */
export interface AckPublisherOptions {
  sql: Sql;
  session: Session;
  log: Logger;
  metrics: ShoreMetrics;
  debounceMs: number;
  timeoutMs: number;
}

/** Publishes vessels' acks, debounced. */
export class AckPublisher {
  #o: AckPublisherOptions;
  #dirty = new Set<string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: AckPublisherOptions) {
    this.#o = options;
  }

  /** Publishes `vesselId`'s ack soon (its position moved, or it re-sent what was applied). */
  schedule(vesselId: string): void {
    this.#dirty.add(vesselId);
    if (!this.#closed) this.#timer ??= setTimeout(() => this.publish(), this.#o.debounceMs);
  }

  /** Publishes the scheduled acks now, or every vessel's with `all` (after a connect). */
  async publish(all = false): Promise<void> {
    const { sql, session, log, metrics, timeoutMs } = this.#o;
    this.#timer = undefined;
    const vessels = all ? undefined : [...this.#dirty];
    if (!all) this.#dirty.clear();
    if (!session.connected) return; // the next connect publishes every vessel's ack
    try {
      const positions = await within(ackPositions(sql, vessels), timeoutMs);
      await Promise.all(positions.map(async ({ vesselId, epoch, seq }) => {
        await session.publish(topicsOf(vesselId).ack, ackPayload({ epoch, seq }), {
          qos: 1,
          retain: true,
        });
        metrics.acksPublished.inc();
      }));
      // Another instance may have applied more and published its ack before ours landed,
      // leaving ours, the older, retained. Re-read after the PUBACKs: whatever moved meanwhile
      // is published again, so the last retained ack is never behind the database.
      const sent = new Map(positions.map((p) => [p.vesselId, `${p.epoch}/${p.seq}`]));
      const now = await within(ackPositions(sql, [...sent.keys()]), timeoutMs);
      for (const p of now) {
        if (sent.get(p.vesselId) !== `${p.epoch}/${p.seq}`) this.schedule(p.vesselId);
      }
    } catch (err) {
      log.warn("Acks not published, retrying", { error: err });
      for (const v of vessels ?? []) this.#dirty.add(v);
      if (!this.#closed && vessels) {
        this.#timer ??= setTimeout(() => this.publish(), this.#o.debounceMs * 4);
      }
    }
  }

  /** Stops the timer and publishes what is still scheduled. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#dirty.size > 0) await this.publish();
  }
}
