/**
 * bosun: parses flags and config, opens the database, builds one role, serves, handles
 * signals. Nothing else connects, reads the environment or starts a timer.
 */
import { type Config, ConfigError, parseConfig, redactConfig, redactUrl } from "./config.ts";
import { createLogger, type Logger } from "./core/log.ts";
import { guardProcess } from "./core/guard.ts";
import { RecentEvents } from "./core/recent-events.ts";
import { claimDataDir } from "./core/data-dir.ts";
import { isDatabaseUnavailable, isPermanentDatabaseError, StartupError } from "./core/errors.ts";
import { parseArgs, usageText, versionText } from "./core/usage.ts";
import type { Role } from "./roles/role.ts";
import type { TlsFiles } from "./sync/tls.ts";

// Everything that opens, connects or pulls in a driver is imported inside start(): `--help`
// then loads no npm package (mqtt.js's readable-stream reads the environment at import and
// would need --allow-env), and the first log line comes before the heavy modules load.
const load = () =>
  Promise.all([
    import("./core/metrics.ts"),
    import("./db/connection.ts"),
    import("./db/migrations.ts"),
    import("./http/auth.ts"),
    import("./http/request-drain.ts"),
    import("./roles/role.ts"),
    import("./roles/vessel.ts"),
    import("./roles/shore.ts"),
  ]);

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
  /** The recent warnings and errors for the status page, fed by the same logger. */
  recent?: RecentEvents;
}

/**
 * Starts a gateway from `config`: the database, the role, the HTTP listener, and only once
 * the port is bound, sync (so a taken port fails before anything talks to the broker).
 */
export async function start(
  config: Config,
  log: Logger,
  options: StartOptions = {},
): Promise<Gateway> {
  // An unreadable or non-PEM TLS file stops start-up naming its variable (a ConfigError), as
  // any bad setting does: before anything is written, the DATA_DIR lock included.
  const { readTlsFiles } = await import("./sync/tls.ts");
  const tls = await readTlsFiles(config.mqtt);
  // Then, before the embedded database or the token file is opened: one process owns a
  // DATA_DIR (README, "Configuration").
  const usesDataDir = config.databaseUrl === undefined || config.apiTokens === undefined;
  const lock = usesDataDir ? await claimDataDir(config.dataDir) : undefined;
  try {
    const gateway = await startRetrying(config, log, options, tls);
    return {
      port: gateway.port,
      async close() {
        await gateway.close();
        lock?.release();
      },
    };
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/**
 * {@linkcode startClaimed}, again from the top while the database goes away under it: one that
 * answered and then restarted (during the migrations, or while the role starts) is unreachable,
 * which is retried (CONTRACT §1), not a failed start. The fault suite saw the shore exit 1
 * ("start-up failed: write CONNECTION_CLOSED") when its PostgreSQL restarted mid-start.
 */
async function startRetrying(
  config: Config,
  log: Logger,
  options: StartOptions,
  tls: TlsFiles,
): Promise<Gateway> {
  for (let delay = 500;; delay = Math.min(delay * 2, 30_000)) {
    try {
      return await startClaimed(config, log, options, tls);
    } catch (err) {
      // A StartupError (a refused login, an unknown database, a held DATA_DIR) is for good.
      const transient = !(err instanceof StartupError) && isDatabaseUnavailable(err) &&
        !isPermanentDatabaseError(err);
      if (!transient || options.signal?.aborted) throw err;
      log.warn("Database lost during start-up, starting again", { retryInMs: delay, error: err });
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, delay);
        options.signal?.addEventListener("abort", () => {
          clearTimeout(t);
          resolve();
        }, { once: true });
      });
      if (options.signal?.aborted) throw err;
    }
  }
}

async function startClaimed(
  config: Config,
  log: Logger,
  options: StartOptions,
  tls: TlsFiles,
): Promise<Gateway> {
  // Said before anything slow (loading the drivers, PGlite's first open) so that a first start
  // is never a silent wait. (A PostgreSQL that refuses bosun is told in one line by itself,
  // tests/db/start-errors.test.ts; the "Started" line names the database in use.)
  if (config.databaseUrl === undefined) {
    const created = await exists(`${config.dataDir}/pgdata/PG_VERSION`);
    log.info(
      created ? "Opening embedded database" : "Opening embedded database (first start creates it)",
      { dataDir: config.dataDir },
    );
  }
  const [
    { createMetrics },
    { openDatabase },
    { migrate },
    { resolveApiTokens },
    { Drain },
    { gatewayApp },
    { createVesselRole },
    { createShoreRole },
  ] = await load();
  const aborted = new AbortController();
  options.signal?.addEventListener("abort", () => aborted.abort(), { once: true });
  const db = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir,
    log: log.child({ module: "db" }),
    signal: aborted.signal,
  });
  let role: Role;
  let tokens: string[];
  const metrics = createMetrics({ role: config.role });
  try {
    const applied = await migrate(db.sql);
    if (applied.length) log.info("Migrations applied", { versions: applied });
    tokens = await resolveApiTokens({
      configured: config.apiTokens,
      dataDir: config.dataDir,
      log,
    });
    const deps = { config, sql: db.sql, log, metrics, tls };
    role = config.role === "shore" ? createShoreRole(deps) : await createVesselRole(deps);
  } catch (err) {
    await db.close();
    throw err;
  }

  const app = gatewayApp({ config, role, log, metrics, tokens, recent: options.recent });
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
  try {
    await role.start();
  } catch (err) {
    // Everything this attempt opened is closed, so that a retry can bind and open again.
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      server.shutdown(),
      new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
    ]);
    clearTimeout(timer);
    await role.close().catch(() => {});
    await db.close().catch(() => {});
    throw err;
  }
  log.info("Started", {
    role: config.role,
    vesselId: config.vesselId,
    broker: redactUrl(config.mqtt.url),
    port: server.addr.port,
    config: redactConfig(config),
  });

  return {
    port: server.addr.port,
    async close() {
      aborted.abort();
      // A request still uploading its body when the stop comes gets this long to finish.
      await drain.drain(10_000);
      // shutdown() also waits for connections whose request body never finished arriving (a
      // stalled upload answered 408 stays open, Deno does not close it), and waited for ever:
      // past the drain, such a client gets no more of our time.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        server.shutdown(),
        new Promise((resolve) => timer = setTimeout(resolve, 2_000)),
      ]);
      clearTimeout(timer);
      await role.close();
      await db.close();
    },
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

if (import.meta.main) {
  // Flags first: `--help` and `--version` answer before anything is read or opened.
  const invocation = parseArgs(Deno.args);
  if (invocation.kind === "help") {
    console.log(usageText());
    Deno.exit(0);
  }
  if (invocation.kind === "version") {
    console.log(versionText());
    Deno.exit(0);
  }
  if (invocation.kind === "bad") {
    console.error(`bosun: ${invocation.message} (try --help)`);
    Deno.exit(2);
  }
  let config: Config;
  try {
    config = parseConfig(Deno.env.toObject());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`bosun: ${err.message}`);
    Deno.exit(2);
  }
  // Owner-only from here on: the embedded database's files (record text sits in its WAL) and
  // DATA_DIR itself, like the token file, must not be readable by other local users.
  Deno.umask(0o077);
  const recent = new RecentEvents();
  const log = createLogger({ level: config.logLevel, observe: (e) => recent.record(e) });
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
    gateway = await start(config, log, { signal: abort.signal, recent });
  } catch (err) {
    if (abort.signal.aborted) {
      log.info("Stopped during start-up");
      Deno.exit(0);
    }
    if (err instanceof StartupError) {
      // Waiting would not help (DATA_DIR held, unknown database, refused login): one line.
      console.error(`bosun: ${err.message}`);
      Deno.exit(1);
    }
    if (err instanceof ConfigError) {
      // A TLS file that cannot be read or parsed: named like any other bad variable.
      console.error(`bosun: ${err.message}`);
      Deno.exit(2);
    }
    // A start-up failure (port taken, DATA_DIR not writable) is told in one line, not a
    // trace: the message names what to fix, and a stack would only bury it.
    console.error(`bosun: start-up failed: ${(err as Error).message ?? err}`);
    Deno.exit(1);
  }
  if (stopping) {
    await gateway.close();
    log.info("Stopped");
    Deno.exit(0);
  }
}
