/**
 * Concurrent onboard writers: creates, updates and deletes across the five entities through the
 * vessel's HTTP API, logging every write that got a 2xx (the promise under test) and counting
 * the rest (refused or unknown outcome while a fault is on).
 */
import { ENTITIES, type Entity } from "../../core/entities.ts";
import { type Rng, uuid } from "./prng.ts";

/** A write the vessel answered with a 2xx: it must reach shore. */
export interface AckedWrite {
  entity: Entity;
  id: string;
  op: "create" | "update" | "delete";
  /** The version the response carried (undefined for a delete: 204 has no body). */
  version?: number;
}

/** Options for {@linkcode startWriters}. */
export interface WritersOptions {
  baseUrl: string;
  token: string;
  count: number;
  rng: Rng;
  /** Pause between one writer's requests, ms. */
  pauseMs: number;
  /** Appended to every path: `?vesselId=<id>` for the office writing through the shore's API. */
  query?: string;
  /** The pool of live records, shared with writers on the other side (two-way runs). */
  live?: { entity: Entity; id: string }[];
}

/** Running writers. */
export interface Writers {
  readonly acked: AckedWrite[];
  readonly failed: number;
  /** The refused requests by `<method> <status>` (status 0: no answer). */
  readonly refusals: Record<string, number>;
  /** Stops every writer after its current request. */
  stop(): Promise<void>;
}

function createBody(entity: Entity, rng: Rng, id: string): Record<string, unknown> {
  const n = rng.int(1, 1_000_000);
  switch (entity) {
    case "work_orders":
      return {
        id,
        title: `Inspect pump ${n}`,
        equipmentId: `eq-${n % 50}`,
        priority: rng.int(1, 5),
      };
    case "alerts":
      return {
        id,
        equipmentId: `eq-${n % 50}`,
        severity: rng.pick(["info", "warning", "critical"]),
        message: `Pressure ${n} out of range`,
      };
    case "equipment":
      return { id, name: `Generator ${n}`, runningHours: n };
    case "crew":
      return { id, name: `Sailor ${n}`, rank: rng.pick(["AB", "OS", "Bosun"]) };
    case "maintenance_schedules":
      return {
        id,
        equipmentId: `eq-${n % 50}`,
        task: `Grease ${n}`,
        intervalHours: rng.int(1, 500),
      };
  }
}

function patchBody(entity: Entity, rng: Rng): Record<string, unknown> {
  const n = rng.int(1, 1_000_000);
  switch (entity) {
    case "work_orders":
      return { status: rng.pick(["open", "in_progress", "completed"]), description: `step ${n}` };
    case "alerts":
      return { acknowledged: rng.chance(0.5), acknowledgedBy: `officer ${n}` };
    case "equipment":
      return { runningHours: n };
    case "crew":
      return { onboard: rng.chance(0.5) };
    case "maintenance_schedules":
      return { intervalHours: rng.int(1, 900) };
  }
}

/** Starts `count` writers against the vessel; they share a pool of live records. */
export function startWriters(options: WritersOptions): Writers {
  const { baseUrl, token, count, pauseMs, query = "" } = options;
  const acked: AckedWrite[] = [];
  const live = options.live ?? [];
  let failed = 0;
  const refusals: Record<string, number> = {};
  const refuse = (method: string, status: number) => {
    failed++;
    refusals[`${method} ${status}`] = (refusals[`${method} ${status}`] ?? 0) + 1;
  };
  let stopping = false;
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };

  const request = async (method: string, path: string, body?: unknown) => {
    try {
      const res = await fetch(`${baseUrl}${path}${query}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      const json = res.status === 200 || res.status === 201 ? await res.json() : undefined;
      if (json === undefined) await res.body?.cancel();
      return { status: res.status, json };
    } catch {
      return { status: 0, json: undefined };
    }
  };

  const writer = async (rng: Rng) => {
    while (!stopping) {
      const failedBefore = failed;
      const roll = rng.next();
      if (roll < 0.5 || live.length < 10) {
        const entity = rng.pick(ENTITIES);
        const id = uuid(rng);
        const res = await request("POST", `/api/${entity}`, createBody(entity, rng, id));
        if (res.status === 201) {
          acked.push({ entity, id, op: "create", version: res.json.version });
          live.push({ entity, id });
        } else refuse("POST", res.status);
      } else if (roll < 0.85) {
        const { entity, id } = rng.pick(live);
        const res = await request("PATCH", `/api/${entity}/${id}`, patchBody(entity, rng));
        if (res.status === 200) acked.push({ entity, id, op: "update", version: res.json.version });
        else refuse("PATCH", res.status);
      } else {
        const at = rng.int(0, live.length - 1);
        const { entity, id } = live[at]!;
        live.splice(at, 1);
        const res = await request("DELETE", `/api/${entity}/${id}`);
        if (res.status === 204) acked.push({ entity, id, op: "delete" });
        else refuse("DELETE", res.status);
      }
      // A refused request (gateway down, database down) is retried after a pause, not spun on.
      const pause = failed > failedBefore ? 200 : rng.int(0, 2 * pauseMs);
      if (pause > 0) await new Promise((r) => setTimeout(r, pause));
    }
  };

  const running = Array.from({ length: count }, () => writer(options.rng.fork()));
  return {
    acked,
    get failed() {
      return failed;
    },
    refusals,
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}
