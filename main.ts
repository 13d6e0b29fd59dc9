/**
 * bosun: builds everything from the resolved config and starts it. Nothing else connects,
 * reads the environment or starts a timer.
 */
import { type Config, ConfigError, parseConfig, redactUrl } from "./config.ts";
import { createLogger, type Logger } from "./log.ts";
import { openDatabase } from "./db/connection.ts";
import { migrate } from "./db/migrations.ts";
import { createRecordStore } from "./db/records.ts";
import { OutboxGate } from "./db/outbox-gate.ts";
import { countPending, outboxHealth, outboxStats } from "./db/outbox.ts";
import { createMetrics } from "./metrics.ts";
import { resolveApiTokens } from "./auth.ts";
import { createApp } from "./app.ts";
import { recordRoutes } from "./routes/records.ts";
import { healthRoutes } from "./routes/health.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { VERSION } from "./version.ts";
import { guardProcess } from "./guard.ts";
import { Drain } from "./request-drain.ts";
import { createSession } from "./sync/session.ts";
import { createShore } from "./sync/shore.ts";
import { fleetSummary, vesselProgress } from "./db/shore.ts";
import { vesselRoutes } from "./routes/vessels.ts";
import { shoreRecordRoutes } from "./routes/shore-records.ts";
import { createVesselEngine, type VesselEngine } from "./sync/engine.ts";
import { readTlsFiles } from "./sync/tls.ts";
import { catchupRoutes } from "./routes/catchup.ts";
import { Hono } from "hono";

/** A running gateway. */
export interface Gateway {
  /** The port the HTTP API listens on (useful with `PORT=0`). */
  port: number;
  /** Stops accepting, finishes in-flight requests, stops sync, closes the database. */
  close(): Promise<void>;
}

/** Options for {@linkcode start}. */
export interface StartOptions {
  /** Aborting it during start-up (a SIGTERM while the database is unreachable) stops start. */
  signal?: AbortSignal;
}

/** Starts a gateway from `config`. */
export async function start(
  config: Config,
  log: Logger,
  options: StartOptions = {},
): Promise<Gateway> {
  const startedAt = Date.now();
  // Before anything else: an unreadable or non-PEM TLS file stops start-up naming its
  // variable (a ConfigError), rather than surfacing later as a reconnect loop.
  const tls = await readTlsFiles(config.mqtt);
  const aborted = new AbortController();
  options.signal?.addEventListener("abort", () => aborted.abort(), { once: true });
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    log: log.child({ module: "db" }),
    signal: aborted.signal,
  });
  const applied = await migrate(db.sql);
  if (applied.length) log.info("Migrations applied", { versions: applied });

  const metrics = createMetrics();
  const gate = new OutboxGate(config.outboxMaxPending);
  gate.reset(await countPending(db.sql));
  const records = createRecordStore({ sql: db.sql, gate });
  const tokens = await resolveApiTokens({
    configured: config.apiTokens,
    dataDir: config.dataDir,
    log,
  });

  // ---- shore role: ingest the fleet's changes, serve what was applied -------------------
  if (config.role === "shore") {
    const shoreFixed = {
      role: config.role,
      vesselId: config.vesselId,
      broker: redactUrl(config.mqtt.url),
      version: VERSION,
    };
    // "bosun.shore-<VESSEL_ID>": no VESSEL_ID holds a dot, so this never equals a vessel's
    // "bosun-<VESSEL_ID>" (a vessel named "shore-a" would clash with "bosun-shore-a").
    const session = config.localMode
      ? createSession({
        mqtt: config.mqtt,
        clientId: `bosun.shore-${config.vesselId}`,
        // In a shared group the group is the durable consumer: a member's session must end
        // with its connection, or the broker keeps queueing its share of the fleet's messages
        // for it while it is down (Mosquitto 2.0 does, measured) instead of handing them to
        // the members that are up. A lone shore keeps a persistent session (7 days).
        sessionExpiryS: config.shoreSharedGroup ? 0 : undefined,
        tls,
        log: log.child({ module: "mqtt" }),
        metrics,
      })
      : undefined;
    const shore = session && createShore({
      sql: db.sql,
      session,
      log: log.child({ module: "shore" }),
      metrics: metrics.shore,
      sharedGroup: config.shoreSharedGroup,
      inboxRetentionDays: config.catchupRetentionDays,
    });
    await shore?.start();
    const api = new Hono();
    api.route("/", vesselRoutes({ sql: db.sql }));
    api.route("/", shoreRecordRoutes({ sql: db.sql }));
    const report = async () => ({
      status: !session ? "disabled" : session.connected ? "connected" : "disconnected",
      fleet: await fleetSummary(db.sql),
      queuedMessages: shore?.buffered ?? 0,
      unackedMessages: 0,
      oldestUnackedAgeSeconds: null,
      lastPublishedSeq: 0,
      lastAckedSeq: 0,
      reconnectAttempts: session?.reconnectAttempts ?? 0,
      activeSubscriptions: session?.subscriptions.length ?? 0,
      subscriptions: session?.subscriptions ?? [],
      topics: ["vessel/+/sync/ack", "vessel/+/sync/catchup/request"],
      qosLevel: 1,
    });
    const refresh = async () => {
      metrics.mqttConnected.set(session?.connected ? 1 : 0);
      const progress = await vesselProgress(db.sql);
      metrics.shore.vesselAppliedSeq.reset();
      metrics.shore.vesselLag.reset();
      for (const p of progress) {
        metrics.shore.vesselAppliedSeq.set({ vessel: p.vesselId }, p.lastSeq);
        metrics.shore.vesselLag.set({ vessel: p.vesselId }, p.lag);
      }
    };
    const app = createApp({
      log,
      metrics,
      tokens,
      api,
      health: healthRoutes({ fixed: shoreFixed, startedAt, report, log }),
      metricsRoute: metricsRoutes({ metrics, refresh, log }),
    });
    const server = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: ({ hostname, port }) =>
        log.info("Listening", { hostname, port, role: config.role }),
    }, app.fetch);
    return {
      port: server.addr.port,
      async close() {
        await server.shutdown();
        await shore?.close();
        await session?.close();
        aborted.abort();
        await db.close();
      },
    };
  }
  // ---- end of the shore role -------------------------------------------------------------

  const status = config.localMode ? "disconnected" : "disabled";
  let report = async (): Promise<Record<string, unknown>> => {
    return {
      status,
      ...outboxHealth(await outboxStats(db.sql)),
      reconnectAttempts: 0,
      activeSubscriptions: 0,
      topics: [],
      qosLevel: 1,
    };
  };
  let refresh = async () => {
    const s = await outboxStats(db.sql);
    metrics.queueDepth.set(s.queued);
    metrics.unacked.set(s.unacked);
    metrics.lastAckedSeq.set(s.lastAckedSeq);
    metrics.mqttConnected.set(0);
  };

  // The vessel sync engine. Started without waiting for the broker: an unreachable broker
  // never delays start-up or refuses writes.
  let engine: VesselEngine | undefined;
  let catchup: Hono | undefined;
  if (config.role === "vessel" && config.localMode) {
    engine = createVesselEngine({ sql: db.sql, config, gate, metrics, log, tls });
    engine.start();
    report = engine.report;
    refresh = engine.refreshMetrics;
    catchup = catchupRoutes({ catchup: engine.catchup });
  }

  const app = createApp({
    log,
    metrics,
    tokens,
    api: recordRoutes({ records }),
    catchup,
    health: healthRoutes({
      fixed: {
        role: config.role,
        vesselId: config.vesselId,
        broker: redactUrl(config.mqtt.url),
        version: VERSION,
      },
      startedAt,
      report,
      log,
    }),
    metricsRoute: metricsRoutes({ metrics, refresh, log }),
  });

  const drain = new Drain();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: config.host,
      port: config.port,
      onListen: ({ hostname, port }) =>
        log.info("Listening", { hostname, port, role: config.role }),
    }, drain.wrap(app.fetch));
  } catch (err) {
    await db.close();
    // Not a ConfigError: the values are valid, the port is taken (exit 1, not 2).
    throw new Error(
      `Cannot listen on "HOST" "${config.host}", "PORT" ${config.port}: ${(err as Error).message}`,
    );
  }

  return {
    port: server.addr.port,
    async close() {
      aborted.abort();
      // A request still uploading its body when the stop comes gets this long to finish.
      await drain.drain(10_000);
      await server.shutdown();
      await engine?.stop();
      await db.close();
    },
  };
}

if (import.meta.main) {
  let config: Config;
  try {
    config = parseConfig(Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`bosun: ${err.message}`);
    Deno.exit(2);
  }
  const log = createLogger({ level: config.logLevel });
  guardProcess(log);
  // Signals are handled from the first moment, so a stop while start-up still waits for the
  // database ends the retry loop instead of being ignored until the database answers.
  const abort = new AbortController();
  let gateway: Gateway | undefined;
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Stopping", { signal });
    abort.abort();
    if (!gateway) return; // start() sees the abort and throws; handled below
    await gateway.close();
    log.info("Stopped");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
  try {
    gateway = await start(config, log, { signal: abort.signal });
  } catch (err) {
    if (abort.signal.aborted) {
      log.info("Stopped during start-up");
      Deno.exit(0);
    }
    if (err instanceof ConfigError) {
      // A TLS file that cannot be read or parsed: named like any other bad variable.
      console.error(`bosun: ${err.message}`);
      Deno.exit(2);
    }
    // A start-up failure (port taken, DATA_DIR not writable) is told in one line, not a trace.
    console.error(`bosun: start-up failed: ${(err as Error).message ?? err}`);
    log.error("Start-up failed", { error: err, stack: (err as Error).stack });
    Deno.exit(1);
  }
  if (stopping) {
    await gateway.close();
    log.info("Stopped");
    Deno.exit(0);
  }
}
