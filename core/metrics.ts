/**
 * The Prometheus series the README lists, in one registry built by `main.ts` and passed down.
 * prom-client runs on Deno unchanged, so it is used rather than a hand-written exposition.
 *
 * A series is registered only in the role where it can move: a vessel exposes no
 * `bosun_shore_*` series stuck at zero, a shore no outbox gauges. The objects exist in both
 * (the code that counts needs no role test); unregistered ones are simply never exposed.
 */
import process from "node:process";
import client from "prom-client";
import { VERSION } from "./version.ts";

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
  oldestUnackedAge: client.Gauge;
  /** Seconds since the broker link went down, 0 while up. */
  linkDown: client.Gauge;
  /** MQTT payload bytes, `direction` "sent" or "received" (counted in sync/session.ts). */
  linkBytes: client.Counter<"direction">;
  /** Conflicts two-way sync recorded on this side (docs/two-way-sync.md). */
  conflicts: client.Counter;
  shore: ShoreMetrics;
  down: VesselDownMetrics;
}

/** The shore role's series (registered only in the shore role). */
export interface ShoreMetrics {
  applied: client.Counter;
  duplicates: client.Counter;
  malformed: client.Counter<"reason">;
  acksPublished: client.Counter;
  catchupRequests: client.Counter;
  shed: client.Counter;
  deadLetters: client.Counter<"reason">;
  forgeries: client.Counter;
  refused: client.Counter<"reason">;
  vesselAppliedSeq: client.Gauge<"vessel">;
  vesselLag: client.Gauge<"vessel">;
  /** The role-wide conflicts counter (Metrics.conflicts), for the ingest to count into. */
  conflicts: client.Counter;
  /** Down stream (sync/shore/down.ts): changes PUBACKed by the broker. */
  downPublished: client.Counter;
  /** Changes re-sent because the vessel had not acknowledged them in time. */
  downResent: client.Counter;
  /** Down catch-up requests received from vessels. */
  downCatchupRequests: client.Counter;
  /** Changes published in answer to down catch-up requests. */
  downCatchupPublished: client.Counter;
  /** Per vessel, set at scrape time from db/shore/down-outbox.ts's downFigures. */
  downBacklog: client.Gauge<"vessel">;
  downUnacked: client.Gauge<"vessel">;
  downPublishedSeq: client.Gauge<"vessel">;
  downAckedSeq: client.Gauge<"vessel">;
  downOldestUnackedAge: client.Gauge<"vessel">;
}

/** The vessel role's down stream series (registered only in the vessel role). */
export interface VesselDownMetrics {
  /** Shore changes applied by this process. */
  applied: client.Counter;
  /** Down messages dropped as malformed, by reason. */
  dropped: client.Counter<"reason">;
  /** Down catch-up requests published (gaps, restarts). */
  catchupRequests: client.Counter;
  /** Set at scrape time: the highest contiguous down seq applied (current epoch). */
  appliedSeq: client.Gauge;
  /** Set at scrape time: down changes received past a gap, waiting for it. */
  waiting: client.Gauge;
}

/** Options for {@linkcode createMetrics}. */
export interface MetricsOptions {
  /** Registers only the series this role moves; unset registers every series (tests). */
  role?: "vessel" | "shore";
}

/** Builds a fresh registry (one per gateway, so tests never share counters). */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const { role } = options;
  const registry = new client.Registry();
  const registers = [registry];
  const vesselOnly = role === "shore" ? [] : registers;
  const shoreOnly = role === "vessel" ? [] : registers;
  new client.Gauge({
    name: "bosun_build_info",
    help: "Always 1; the labels say which bosun runs",
    labelNames: ["version"],
    registers,
  }).set({ version: VERSION }, 1);
  registerProcessMetrics(registry);
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
      registers: vesselOnly,
    }),
    unacked: new client.Gauge({
      name: "bosun_unacked_changes",
      help: "Published changes not yet acknowledged by shore",
      registers: vesselOnly,
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
      registers: vesselOnly,
    }),
    publishFailures: new client.Counter({
      name: "bosun_publish_failures_total",
      help: "Publishes that failed and will be retried",
      registers: vesselOnly,
    }),
    reconnectAttempts: new client.Counter({
      name: "bosun_reconnect_attempts_total",
      help: "Broker reconnection attempts",
      registers,
    }),
    lastAckedSeq: new client.Gauge({
      name: "bosun_last_acked_seq",
      help: "Highest seq acknowledged by shore in the current epoch",
      registers: vesselOnly,
    }),
    oldestUnackedAge: new client.Gauge({
      name: "bosun_oldest_unacked_age_seconds",
      help: "Age of the oldest change shore has not acknowledged, 0 when none",
      registers: vesselOnly,
    }),
    linkDown: new client.Gauge({
      name: "bosun_link_down_seconds",
      help: "Seconds since the broker link went down (or since start, never up), 0 while up",
      registers,
    }),
    linkBytes: new client.Counter({
      name: "bosun_link_bytes_total",
      help: "Bytes of MQTT payload sent and received",
      labelNames: ["direction"],
      registers,
    }),
    conflicts,
    shore: {
      conflicts,
      applied: new client.Counter({
        name: "bosun_shore_applied_total",
        help: "Changes applied at shore by this process",
        registers: shoreOnly,
      }),
      duplicates: new client.Counter({
        name: "bosun_shore_duplicates_total",
        help: "Changes received again and discarded",
        registers: shoreOnly,
      }),
      malformed: new client.Counter({
        name: "bosun_shore_malformed_total",
        help: "Messages dropped as malformed, by reason",
        labelNames: ["reason"],
        registers: shoreOnly,
      }),
      acksPublished: new client.Counter({
        name: "bosun_shore_acks_published_total",
        help: "Acks published to vessels",
        registers: shoreOnly,
      }),
      catchupRequests: new client.Counter({
        name: "bosun_shore_catchup_requests_total",
        help: "Catch-up requests published for gaps",
        registers: shoreOnly,
      }),
      shed: new client.Counter({
        name: "bosun_shore_shed_total",
        help: "Changes dropped unapplied because the ingest buffer was full (re-sent by vessels)",
        registers: shoreOnly,
      }),
      deadLetters: new client.Counter({
        name: "bosun_shore_dead_letters_total",
        help:
          "Changes the shore's database refused on their own, kept and stepped over, by SQLSTATE",
        labelNames: ["reason"],
        registers: shoreOnly,
      }),
      forgeries: new client.Counter({
        name: "bosun_shore_forgeries_total",
        help: "Messages refused: their (vessel, epoch, seq) is held under another messageId",
        registers: shoreOnly,
      }),
      refused: new client.Counter({
        name: "bosun_shore_refused_total",
        help: "Changes refused past a vessel's bounds (seq window, live epochs, parked rows)",
        labelNames: ["reason"],
        registers,
      }),
      vesselAppliedSeq: new client.Gauge({
        name: "bosun_shore_vessel_applied_seq",
        help: "Highest contiguous seq applied, per vessel (current epoch)",
        labelNames: ["vessel"],
        registers: shoreOnly,
      }),
      vesselLag: new client.Gauge({
        name: "bosun_shore_vessel_lag",
        help: "Seqs received past the applied one and waiting on a gap, per vessel",
        labelNames: ["vessel"],
        registers: shoreOnly,
      }),
      downPublished: new client.Counter({
        name: "bosun_shore_down_published_total",
        help: "Changes made ashore published to vessels and acknowledged by the broker",
        registers: shoreOnly,
      }),
      downResent: new client.Counter({
        name: "bosun_shore_down_resent_total",
        help: "Changes re-sent to vessels that had not acknowledged them in time",
        registers: shoreOnly,
      }),
      downCatchupRequests: new client.Counter({
        name: "bosun_shore_down_catchup_requests_total",
        help: "Down catch-up requests received from vessels",
        registers: shoreOnly,
      }),
      downCatchupPublished: new client.Counter({
        name: "bosun_shore_down_catchup_published_total",
        help: "Changes published in answer to down catch-up requests",
        registers: shoreOnly,
      }),
      downBacklog: new client.Gauge({
        name: "bosun_shore_down_backlog",
        help: "Changes made ashore not yet acknowledged by the vessel, per vessel",
        labelNames: ["vessel"],
        registers: shoreOnly,
      }),
      downUnacked: new client.Gauge({
        name: "bosun_shore_down_unacked",
        help: "Down changes published (PUBACKed) but not yet acknowledged, per vessel",
        labelNames: ["vessel"],
        registers: shoreOnly,
      }),
      downPublishedSeq: new client.Gauge({
        name: "bosun_shore_down_published_seq",
        help: "Published watermark of the vessel's down stream (current epoch), per vessel",
        labelNames: ["vessel"],
        registers: shoreOnly,
      }),
      downAckedSeq: new client.Gauge({
        name: "bosun_shore_down_acked_seq",
        help: "Highest down seq the vessel acknowledged (current epoch), per vessel",
        labelNames: ["vessel"],
        registers: shoreOnly,
      }),
      downOldestUnackedAge: new client.Gauge({
        name: "bosun_shore_down_oldest_unacked_age_seconds",
        help: "Age of the oldest down change the vessel has not acknowledged, 0 when none",
        labelNames: ["vessel"],
        registers: shoreOnly,
      }),
    },
    down: {
      applied: new client.Counter({
        name: "bosun_down_applied_total",
        help: "Changes made ashore applied on board by this process",
        registers: vesselOnly,
      }),
      dropped: new client.Counter({
        name: "bosun_down_dropped_total",
        help: "Down messages dropped as malformed, by reason",
        labelNames: ["reason"],
        registers: vesselOnly,
      }),
      catchupRequests: new client.Counter({
        name: "bosun_down_catchup_requests_total",
        help: "Down catch-up requests published to shore (gaps, restarts)",
        registers: vesselOnly,
      }),
      appliedSeq: new client.Gauge({
        name: "bosun_down_applied_seq",
        help: "Highest contiguous seq of the shore's stream applied on board (current epoch)",
        registers: vesselOnly,
      }),
      waiting: new client.Gauge({
        name: "bosun_down_waiting",
        help: "Down changes received past a gap and waiting for it",
        registers: vesselOnly,
      }),
    },
  };
}

/**
 * The process series Prometheus's own exporters name the same way. prom-client's
 * collectDefaultMetrics runs under Deno, but its event-loop series come out as NaN and a
 * minimum of 9.2e9 s there, so the few that mean something are read here at scrape time.
 */
function registerProcessMetrics(registry: client.Registry): void {
  const registers = [registry];
  const startedAt = Date.now() / 1000 - performance.now() / 1000;
  new client.Gauge({
    name: "process_resident_memory_bytes",
    help: "Resident memory size in bytes",
    registers,
    collect() {
      this.set(Deno.memoryUsage().rss);
    },
  });
  new client.Gauge({
    name: "process_heap_bytes",
    help: "JavaScript heap in use, in bytes",
    registers,
    collect() {
      this.set(Deno.memoryUsage().heapUsed);
    },
  });
  new client.Counter({
    name: "process_cpu_seconds_total",
    help: "User and system CPU time spent, in seconds",
    registers,
    collect() {
      const { user, system } = process.cpuUsage();
      this.reset();
      this.inc((user + system) / 1e6);
    },
  });
  new client.Gauge({
    name: "process_start_time_seconds",
    help: "Start time of the process since the Unix epoch, in seconds",
    registers,
  }).set(Math.round(startedAt));
}
