/**
 * The shore's down streams in `/health` and `/metrics` (contract §3, §6): per vessel, what
 * waits (backlog), what was published (the watermark), what the vessel acknowledged, read from
 * the database, so a restarted shore or a second shore instance reports the same.
 */
import type { Sql } from "../../db/connection.ts";
import { type DownFigures, downFigures } from "../../db/shore/down-outbox.ts";
import type { ShoreMetrics } from "../../core/metrics.ts";

/** The `down` member of the shore's `/health`. */
export interface DownHealth {
  /** Vessels with a down stream. */
  vessels: number;
  /** Changes made ashore not yet acknowledged, fleet-wide: queued plus unacked. */
  backlog: number;
  queued: number;
  unacked: number;
  /** The oldest change any vessel has not acknowledged, or null. */
  oldestUnackedAgeSeconds: number | null;
  /** The latest down ack of any vessel, or null. */
  lastAckAt: string | null;
  /** Per vessel (db/shore/down-outbox.ts's DownFigures). */
  streams: DownFigures[];
}

/** Reads the down streams' figures for `/health`. */
export async function downHealth(sql: Sql): Promise<DownHealth> {
  const streams = await downFigures(sql);
  const sum = (f: (s: DownFigures) => number) => streams.reduce((n, s) => n + f(s), 0);
  const ages = streams.map((s) => s.oldestUnackedAgeSeconds).filter((a) => a !== null);
  const acks = streams.map((s) => s.lastAckAt).filter((a) => a !== null).sort();
  return {
    vessels: streams.length,
    backlog: sum((s) => s.backlog),
    queued: sum((s) => s.queued),
    unacked: sum((s) => s.unacked),
    oldestUnackedAgeSeconds: ages.length ? Math.max(...ages) : null,
    lastAckAt: acks.at(-1) ?? null,
    streams,
  };
}

/** Sets the per-vessel down gauges from the database, before a scrape. */
export async function refreshDownMetrics(sql: Sql, metrics: ShoreMetrics): Promise<void> {
  const streams = await downFigures(sql);
  const gauges = [
    [metrics.downBacklog, (s: DownFigures) => s.backlog],
    [metrics.downUnacked, (s: DownFigures) => s.unacked],
    [metrics.downPublishedSeq, (s: DownFigures) => s.publishedSeq],
    [metrics.downAckedSeq, (s: DownFigures) => s.ackedSeq],
    [metrics.downOldestUnackedAge, (s: DownFigures) => s.oldestUnackedAgeSeconds ?? 0],
  ] as const;
  for (const [gauge, value] of gauges) {
    gauge.reset();
    for (const s of streams) gauge.set({ vessel: s.vesselId }, value(s));
  }
}
