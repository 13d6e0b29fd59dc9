/**
 * What several benches share: a change log filled straight from SQL (one INSERT … SELECT
 * generate_series, far faster than the API and the same rows), an in-process vessel engine,
 * waits, and the CPU time of a process.
 */
import { parseConfig } from "../config.ts";
import type { Sql } from "../db/connection.ts";
import { OutboxGate } from "../core/outbox-gate.ts";
import { createLogger } from "../core/log.ts";
import { createMetrics } from "../core/metrics.ts";
import { createVesselEngine, type EngineEvent, type VesselEngine } from "../sync/vessel/engine.ts";
import { waitUntil } from "../tests/support/wait.ts";

/** Publishes awaiting PUBACK at once, in the engine and in every raw baseline. */
export const WINDOW = 256;

const log = createLogger({ level: "warn" });

// An equipment record of ~300 bytes, as the API would have stored it: its times as the API
// writes them (toISOString's form, not PostgreSQL's text of a timestamptz, which every check
// on the way takes the slow path for).
const NOW_ISO = `to_char(now() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
const RECORD = `jsonb_build_object('id', id, 'version', 1, 'createdAt', ${NOW_ISO},
  'updatedAt', ${NOW_ISO}, 'name', 'ballast pump ' || g, 'type', 'pump',
  'location', 'engine room, deck 2, frame ' || (g % 90), 'status', 'running',
  'runningHours', g % 20000)`;

/**
 * Inserts `n` equipment changes, 100,000 per statement. `published`: the rows also get their
 * seq (after the current last seq of the epoch) and `published_at`, as a change log the
 * publisher has long drained, and `vessel_state.last_seq` follows.
 */
export async function fillChangeLog(sql: Sql, n: number, published = false): Promise<void> {
  for (let done = 0; done < n; done += 100_000) {
    const k = Math.min(100_000, n - done);
    if (!published) {
      await sql.unsafe(
        `insert into changes (entity, record_id, operation, data, changed_at, priority)
         select 'equipment', id, 'create', ${RECORD}, now(), 1
         from (select gen_random_uuid() as id, g from generate_series(1, $1::int) g) s`,
        [k],
      );
      continue;
    }
    await sql.begin(async (tx) => {
      await tx.unsafe(
        `insert into changes (entity, record_id, operation, data, changed_at, priority,
           epoch, seq, published_at)
         select 'equipment', id, 'create', ${RECORD}, now(), 1, v.epoch, v.last_seq + g, now()
         from (select gen_random_uuid() as id, g from generate_series(1, $1::int) g) s,
           vessel_state v`,
        [k],
      );
      await tx`update vessel_state set last_seq = last_seq + ${k}`;
    });
  }
}

/** An in-process vessel engine on `sql` and `brokerUrl`, as main.ts builds it. */
export function benchEngine(
  sql: Sql,
  brokerUrl: string,
  vesselId: string,
  linkMode?: "frames" | "messages",
): { engine: VesselEngine; gate: OutboxGate } {
  const config = parseConfig({
    ...(linkMode ? { LINK_MODE: linkMode } : {}),
    VESSEL_ID: vesselId,
    MQTT_BROKER_URL: brokerUrl,
    ACK_TIMEOUT_S: "86400", // no re-sends during a bench: shore is absent on purpose
    OUTBOX_MAX_PENDING: "2000000",
  });
  const gate = new OutboxGate(config.outboxMaxPending);
  const engine = createVesselEngine({
    sql,
    config,
    gate,
    metrics: createMetrics(),
    log,
    window: WINDOW,
    session: { backoff: { baseMs: 50, ceilingMs: 200 } },
  });
  return { engine, gate };
}

/** Resolves at the engine's first event that `match` accepts. */
export function nextEvent(
  engine: VesselEngine,
  match: (e: EngineEvent) => boolean,
): Promise<EngineEvent> {
  return new Promise((resolve) => {
    const off = engine.onEvent((e) => {
      if (!match(e)) return;
      off();
      resolve(e);
    });
  });
}

/** Polls `check` until it holds; a bench that never gets there fails naming `what`. */
export function until(
  check: () => Promise<boolean>,
  what: string,
  deadlineMs = 20 * 60_000,
): Promise<void> {
  return waitUntil(check, what, deadlineMs, 50);
}

/** User + system CPU seconds of a process so far, from /proc (NaN where there is none). */
export function cpuSeconds(pid: number | "self"): number {
  try {
    const fields = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/** CPU seconds of every PostgreSQL backend serving `sql`'s database, by pid. */
export async function backendCpu(sql: Sql): Promise<Map<number, number>> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity where datname = current_database()`;
  return new Map(rows.map((r) => [r.pid, cpuSeconds(r.pid)]));
}

/** CPU seconds spent between two snapshots (a process absent from `before` counts whole). */
export function cpuSpent(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, cpu] of after) total += cpu - (before.get(pid) ?? 0);
  return total;
}

/** The pid of the `mosquitto` listening on `port` (found by its configuration file). */
export function mosquittoPid(port: number): number | undefined {
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const args = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).split("\0");
      if (!args[0]?.endsWith("mosquitto")) continue;
      const conf = Deno.readTextFileSync(args[args.indexOf("-c") + 1]!);
      if (conf.includes(`listener ${port} `)) return Number(entry.name);
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

/** An environment variable as a number, or `fallback`. */
export const envNumber = (name: string, fallback: number): number =>
  Number(Deno.env.get(name) ?? fallback);

/** The sum of a counter's series on a gateway process's `/metrics` (every label set). */
export async function metricOf(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split("\n").filter((l) => l.startsWith(name + " ") || l.startsWith(name + "{"))
    .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}
