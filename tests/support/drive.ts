/**
 * End-to-end helpers: vessel and shore gateway processes on a test's databases and broker,
 * a writer that drives mixed creates, updates and deletes through a vessel's HTTP API
 * (riding out the gateway being killed), and the comparison of vessel and shore records.
 */
import { type GatewayProcess, spawnLocalGateway } from "./process.ts";
import type { Sql } from "../../db/connection.ts";
import { ENTITIES } from "../../core/entities.ts";

/** The token every test gateway accepts. */
export const TOKEN = "e2e-test-token-0123456789abcdef";

/** Starts a gateway process with the test defaults under `env`. */
export async function gateway(
  env: Record<string, string> & { DATABASE_URL: string },
): Promise<GatewayProcess> {
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-e2e-" });
  return spawnLocalGateway({ databaseUrl: env.DATABASE_URL, dataDir, token: TOKEN, env });
}

/** Calls the API at `port`; throws on a network error (the gateway is down). */
async function call(port: () => number, method: string, path: string, body?: unknown) {
  const res = await fetch(`http://127.0.0.1:${port()}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await res.body?.cancel();
  return res.status;
}

/**
 * Makes `n` mixed writes (creates ~45 %, updates ~40 %, deletes ~15 %) with `concurrency`
 * writers. A write that fails on the network is retried until the gateway answers (a
 * create carries its own id, so a retry of a committed one answers 409).
 */
export async function drive(
  port: () => number,
  n: number,
  options: { concurrency?: number; onWrite?: (done: number) => Promise<void> | void } = {},
): Promise<void> {
  const { concurrency = 8 } = options;
  const live: string[] = [];
  let started = 0;
  let done = 0;
  const retry = async (method: string, path: string, body?: unknown) => {
    for (;;) {
      try {
        const status = await call(port, method, path, body);
        if (status < 500 && status !== 429) return status;
      } catch {
        // down: wait for it to come back
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const worker = async () => {
    while (started < n) {
      started++;
      const roll = Math.random();
      if (live.length < 5 || roll < 0.45) {
        const id = crypto.randomUUID();
        await retry("POST", "/api/work_orders", { id, title: `Task ${id}`, equipmentId: "e-1" });
        live.push(id);
      } else {
        const i = Math.floor(Math.random() * live.length);
        const id = live[i]!;
        if (roll < 0.85) {
          await retry("PATCH", `/api/work_orders/${id}`, { priority: 1 + (started % 5) });
        } else {
          live.splice(i, 1);
          await retry("DELETE", `/api/work_orders/${id}`);
        }
      }
      done++;
      await options.onWrite?.(done);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Reads a gateway's `/health`, or undefined while it does not answer. */
export async function health(port: number): Promise<Record<string, unknown> | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    return await res.json();
  } catch {
    return undefined;
  }
}

/** Every record of a vessel database, as `entity/id → version,deleted,data`. */
export async function vesselRecords(sql: Sql): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entity of ENTITIES) {
    const rows = await sql<{ id: string; version: number; deleted: boolean; data: unknown }[]>`
      select id::text, version, deleted_at is not null as deleted, data from ${sql(entity)}`;
    for (const r of rows) {
      out.set(`${entity}/${r.id}`, JSON.stringify([r.version, r.deleted, r.data]));
    }
  }
  return out;
}

/** Every shore record of one vessel, in the form of {@linkcode vesselRecords}. */
export async function shoreRecords(sql: Sql, vesselId: string): Promise<Map<string, string>> {
  const rows = await sql<
    { entity: string; id: string; version: number; deleted: boolean; data: unknown }[]
  >`
    select entity, id::text, version, deleted_at is not null as deleted, data
    from shore_records where vessel_id = ${vesselId}`;
  return new Map(
    rows.map((r) => [`${r.entity}/${r.id}`, JSON.stringify([r.version, r.deleted, r.data])]),
  );
}

/** The vessel's published changes vs what shore applied, for the exactly-once check. */
export async function tallies(vesselSql: Sql, shoreSql: Sql, vesselId: string) {
  const [v] = await vesselSql<{ changes: number; maxSeq: number; epoch: string }[]>`
    select count(*)::int8 as changes, coalesce(max(seq), 0)::int8 as "maxSeq",
      (select epoch::text from vessel_state) as epoch
    from changes where seq is not null`;
  const [s] = await shoreSql<{ applied: number; lastSeq: number; inbox: number }[]>`
    select coalesce(sum(applied_count), 0)::int8 as applied,
      coalesce(max(last_seq), 0)::int8 as "lastSeq",
      (select count(*) from shore_inbox where vessel_id = ${vesselId})::int8 as inbox
    from shore_positions where vessel_id = ${vesselId}`;
  return { vessel: v!, shore: s! };
}
