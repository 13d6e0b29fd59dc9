/**
 * The Prometheus series the README lists, in one registry built by `main.ts` and passed down.
 * prom-client runs on Deno unchanged, so it is used rather than a hand-written exposition.
 */
import client from "prom-client";

/** Every series bosun exports; the gauges are set from real state at scrape time. */
export interface Metrics {
  registry: client.Registry;
  httpRequests: client.Counter<"method" | "route" | "status">;
  queueDepth: client.Gauge;
  unacked: client.Gauge;
  mqttConnected: client.Gauge;
  published: client.Counter<"entity" | "qos">;
  publishFailures: client.Counter;
  reconnectAttempts: client.Counter;
  lastAckedSeq: client.Gauge;
  /** Conflicts two-way sync recorded on this side (docs/two-way-sync.md). */
  conflicts: client.Counter;
  shore: ShoreMetrics;
}

/** The shore role's series (registered in every role; they stay at zero on a vessel). */
export interface ShoreMetrics {
  applied: client.Counter;
  duplicates: client.Counter;
  malformed: client.Counter<"reason">;
  acksPublished: client.Counter;
  catchupRequests: client.Counter;
  shed: client.Counter;
  deadLetters: client.Counter<"reason">;
  forgeries: client.Counter;
  vesselAppliedSeq: client.Gauge<"vessel">;
  vesselLag: client.Gauge<"vessel">;
  /** The role-wide conflicts counter (Metrics.conflicts), for the ingest to count into. */
  conflicts: client.Counter;
}

/** Builds a fresh registry (one per gateway, so tests never share counters). */
export function createMetrics(): Metrics {
  const registry = new client.Registry();
  const registers = [registry];
  const conflicts = new client.Counter({
    name: "bosun_conflicts_total",
    help: "Conflicts two-way sync recorded on this side",
    registers,
  });
  return {
    registry,
    httpRequests: new client.Counter({
      name: "bosun_http_requests_total",
      help: "HTTP requests answered, by method, route pattern and status",
      labelNames: ["method", "route", "status"],
      registers,
    }),
    queueDepth: new client.Gauge({
      name: "bosun_queue_depth",
      help: "Committed changes not yet published",
      registers,
    }),
    unacked: new client.Gauge({
      name: "bosun_unacked_changes",
      help: "Published changes not yet acknowledged by shore",
      registers,
    }),
    mqttConnected: new client.Gauge({
      name: "bosun_mqtt_connected",
      help: "1 while connected to the broker",
      registers,
    }),
    published: new client.Counter({
      name: "bosun_messages_published_total",
      help: "Changes published and acknowledged by the broker (PUBACK/PUBCOMP)",
      labelNames: ["entity", "qos"],
      registers,
    }),
    publishFailures: new client.Counter({
      name: "bosun_publish_failures_total",
      help: "Publishes that failed and will be retried",
      registers,
    }),
    reconnectAttempts: new client.Counter({
      name: "bosun_reconnect_attempts_total",
      help: "Broker reconnection attempts",
      registers,
    }),
    lastAckedSeq: new client.Gauge({
      name: "bosun_last_acked_seq",
      help: "Highest seq acknowledged by shore in the current epoch",
      registers,
    }),
    conflicts,
    shore: {
      conflicts,
      applied: new client.Counter({
        name: "bosun_shore_applied_total",
        help: "Changes applied at shore by this process",
        registers,
      }),
      duplicates: new client.Counter({
        name: "bosun_shore_duplicates_total",
        help: "Changes received again and discarded",
        registers,
      }),
      malformed: new client.Counter({
        name: "bosun_shore_malformed_total",
        help: "Messages dropped as malformed, by reason",
        labelNames: ["reason"],
        registers,
      }),
      acksPublished: new client.Counter({
        name: "bosun_shore_acks_published_total",
        help: "Acks published to vessels",
        registers,
      }),
      catchupRequests: new client.Counter({
        name: "bosun_shore_catchup_requests_total",
        help: "Catch-up requests published for gaps",
        registers,
      }),
      shed: new client.Counter({
        name: "bosun_shore_shed_total",
        help: "Changes dropped unapplied because the ingest buffer was full (re-sent by vessels)",
        registers,
      }),
      deadLetters: new client.Counter({
        name: "bosun_shore_dead_letters_total",
        help:
          "Changes the shore's database refused on their own, kept and stepped over, by SQLSTATE",
        labelNames: ["reason"],
        registers,
      }),
      forgeries: new client.Counter({
        name: "bosun_shore_forgeries_total",
        help: "Messages refused: their (vessel, epoch, seq) is held under another messageId",
        registers,
      }),
      vesselAppliedSeq: new client.Gauge({
        name: "bosun_shore_vessel_applied_seq",
        help: "Highest contiguous seq applied, per vessel (current epoch)",
        labelNames: ["vessel"],
        registers,
      }),
      vesselLag: new client.Gauge({
        name: "bosun_shore_vessel_lag",
        help: "Seqs received past the applied one and waiting on a gap, per vessel",
        labelNames: ["vessel"],
        registers,
      }),
    },
  };
}
