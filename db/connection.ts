/**
 * The database connection: a `postgres` pool on `DATABASE_URL`, or an embedded PostgreSQL
 * (PGlite, persisted under `DATA_DIR`) served over a loopback socket (db/pglite-wire.ts) so
 * that one SQL path serves both.
 */
import postgres from "postgres";
import type { Logger } from "../core/log.ts";
import { restrictToOwner } from "../core/data-dir.ts";
import { isPermanentDatabaseError, StartupError } from "../core/errors.ts";

/** The tagged-template SQL client used everywhere. */
export type Sql = postgres.Sql;

/** An open database and how to close it. */
export interface Database {
  sql: Sql;
  kind: "postgres" | "pglite";
  close(): Promise<void>;
}

/** Options for {@linkcode openDatabase}. */
export interface OpenOptions {
  /** A PostgreSQL URL; unset opens the embedded database under `dataDir`. */
  url?: string;
  dataDir: string;
  log: Logger;
  /** Pool size for a real PostgreSQL; the embedded one serves one session at a time. */
  max?: number;
  /** Stops the start-up retries (a shutdown during start). */
  signal?: AbortSignal;
}

// bigint columns (seq, counts) stay below 2^53: numbers are easier on every caller.
const types = {
  bigint: {
    to: 20,
    from: [20],
    serialize: (x: number | bigint) => x.toString(),
    parse: (x: string) => Number(x),
  },
};

/**
 * Seconds before a pool connection reconnects after `retries` failed attempts in a row.
 * postgres.js's default grows to 20 s (3^retries / 100, shared by the whole pool, so 16
 * connections reach it within one outage): while it waits, queries queue instead of failing
 * with a 503, and for up to 20 s after the database is back no write goes through. A short,
 * capped delay answers 503 during an outage and resumes within a second after it.
 */
export function reconnectDelayS(retries: number): number {
  return Math.min(0.05 * 2 ** retries, 1);
}

function client(url: string, max: number): Sql {
  return postgres(url, {
    max,
    types,
    backoff: reconnectDelayS,
    onnotice: () => {},
    connect_timeout: 5,
    idle_timeout: 60,
    connection: { application_name: "bosun" },
  }) as unknown as Sql;
}

/**
 * Opens the database and waits until it answers, retrying with back-off (0.5 s doubling to
 * 30 s) while it is unreachable, so a gateway started before its database does not crash-loop.
 * A server that answers but refuses (unknown database, refused login) throws a
 * {@linkcode StartupError} at once: retrying it only hid the mistake behind "unreachable".
 */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  const { url, dataDir, log, max = 16, signal } = options;
  const db = url === undefined ? await openEmbedded(dataDir, log) : {
    sql: client(url, max),
    kind: "postgres" as const,
    close: async () => {},
  };
  const close = async () => {
    await db.sql.end({ timeout: 5 });
    await db.close();
  };
  let delay = 500;
  for (let attempt = 1;; attempt++) {
    try {
      await db.sql`select 1`;
      return { sql: db.sql, kind: db.kind, close };
    } catch (err) {
      if (signal?.aborted) {
        await close();
        throw err;
      }
      if (url !== undefined && isPermanentDatabaseError(err)) {
        await close();
        const { message, code } = err as Error & { code: string };
        throw new StartupError(
          `The database at "DATABASE_URL" ${
            redacted(url)
          } refused the connection: ${message} (${code})`,
        );
      }
      log.warn("Database unreachable, retrying", { attempt, retryInMs: delay, error: err });
      await sleep(delay, signal);
      // A stop during the wait ends the loop now rather than after one more connect attempt.
      if (signal?.aborted) {
        await close();
        throw err;
      }
      delay = Math.min(delay * 2, 30_000);
    }
  }
}

/** `url` as it may be shown: the password replaced. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return `"${u.toString()}"`;
  } catch {
    return "(unparsable)";
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

async function openEmbedded(dataDir: string, log: Logger) {
  const { openPglite } = await import("./pglite-template.ts");
  const { serveWire } = await import("./pglite-wire.ts");
  const path = `${dataDir.replace(/\/$/, "")}/pgdata`;
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const started = performance.now();
  const pglite = await openPglite(path, log);
  // Record text sits in these files (the WAL): owner-only, as PostgreSQL keeps its own.
  const repaired = await restrictToOwner(dataDir);
  if (repaired) log.debug("DATA_DIR made owner-only", { path: dataDir, changed: repaired });
  const server = serveWire(pglite);
  log.info("Embedded PostgreSQL open", {
    path,
    ms: Math.round(performance.now() - started),
  });
  // PGlite runs one backend: a larger pool deadlocks (measured with pglite-socket: a pool of 4
  // running 8 concurrent transactions finished nothing in 90 s; a pool of 1 took 0.5 s).
  const sql = client(server.url, 1);
  return {
    sql,
    kind: "pglite" as const,
    close: async () => {
      await server.stop();
      await pglite.close();
      await restrictToOwner(dataDir);
    },
  };
}
