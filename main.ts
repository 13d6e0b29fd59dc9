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
import { countPending, outboxStats } from "./db/outbox.ts";
import { createMetrics } from "./metrics.ts";
import { resolveApiTokens } from "./auth.ts";
import { createApp } from "./app.ts";
import { recordRoutes } from "./routes/records.ts";
import { healthRoutes } from "./routes/health.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { VERSION } from "./version.ts";
import { readTlsFiles } from "./sync/tls.ts";

/** A running gateway. */
export interface Gateway {
  /** The port the HTTP API listens on (useful with `PORT=0`). */
  port: number;
  /** Stops accepting, finishes in-flight requests, stops sync, closes the database. */
  close(): Promise<void>;
}

/** Starts a gateway from `config`. */
export async function start(config: Config, log: Logger): Promise<Gateway> {
  const startedAt = Date.now();
  // Before anything else: an unreadable or non-PEM TLS file stops start-up naming its
  // variable (a ConfigError), rather than surfacing later as a reconnect loop.
  const _tls = await readTlsFiles(config.mqtt);
  const aborted = new AbortController();
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

  const status = config.localMode ? "disconnected" : "disabled";
  const report = async () => {
    const s = await outboxStats(db.sql);
    return {
      status,
      epoch: s.epoch,
      queuedMessages: s.queued,
      unackedMessages: s.unacked,
      oldestUnackedAgeSeconds: s.oldestUnackedAgeSeconds,
      lastPublishedSeq: s.lastPublishedSeq,
      lastAckedSeq: s.lastAckedSeq,
      reconnectAttempts: 0,
      activeSubscriptions: 0,
      topics: [],
      qosLevel: 1,
    };
  };
  const refresh = async () => {
    const s = await outboxStats(db.sql);
    metrics.queueDepth.set(s.queued);
    metrics.unacked.set(s.unacked);
    metrics.lastAckedSeq.set(s.lastAckedSeq);
    metrics.mqttConnected.set(0);
  };

  const app = createApp({
    log,
    metrics,
    tokens,
    api: recordRoutes({ records }),
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

  const server = Deno.serve({
    hostname: config.host,
    port: config.port,
    onListen: ({ hostname, port }) => log.info("Listening", { hostname, port, role: config.role }),
  }, app.fetch);

  return {
    port: server.addr.port,
    async close() {
      aborted.abort();
      await server.shutdown();
      await db.close();
    },
  };
}

if (import.meta.main) {
  const log = createLogger({ level: Deno.env.get("LOG_LEVEL") === "debug" ? "debug" : "info" });
  let config: Config;
  try {
    config = parseConfig(Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`bosun: ${err.message}`);
    Deno.exit(2);
  }
  let gateway: Gateway;
  try {
    gateway = await start(config, log);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`bosun: ${err.message}`);
    Deno.exit(2);
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("Stopping", { signal });
    await gateway.close();
    log.info("Stopped");
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => stop("SIGTERM"));
}
