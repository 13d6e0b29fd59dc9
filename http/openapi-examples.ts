/**
 * The examples of http/openapi.ts: a valid create body and patch per entity, and what the
 * routes answer to them. tests/http/openapi.test.ts replays every named example against a live
 * app, so they must stay true.
 */
import { createSchemas, type Entity, filterSchemas, recordSchemas } from "../core/entities.ts";
import { VERSION } from "../core/version.ts";
import type { Json } from "./openapi-operations.ts";

/** A valid create body and patch per entity, with a fixed id the other examples refer to. */
export const SAMPLES: Record<Entity, { id: string; create: Json; patch: Json }> = {
  work_orders: {
    id: "2f8c1a54-6d0e-4b7a-9c3e-1b2d3e4f5a60",
    create: {
      title: "Replace impeller",
      equipmentId: "pump-2",
      priority: 2,
      dueAt: "2026-12-01T10:00:00+05:30",
    },
    patch: { status: "in_progress", assignedTo: "2nd-engineer" },
  },
  alerts: {
    id: "0b6f0c52-8a34-4d53-9f5e-4f0f1d2f7a10",
    create: { equipmentId: "eng-1", severity: "critical", message: "Oil pressure low" },
    patch: { acknowledged: true, acknowledgedBy: "chief" },
  },
  equipment: {
    id: "7d1e2f30-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
    create: { name: "Main engine", type: "diesel", status: "running", runningHours: 1200.5 },
    patch: { runningHours: 1201 },
  },
  crew: {
    id: "5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d",
    create: { name: "Ada Lovelace", rank: "Chief Engineer", onboard: true },
    patch: { onboard: false },
  },
  maintenance_schedules: {
    id: "9c8b7a6d-5e4f-4d3c-9b2a-1f0e9d8c7b6a",
    create: { equipmentId: "eng-1", task: "Oil change", intervalHours: 500 },
    patch: { lastDoneAt: "2026-11-27T10:00Z" },
  },
};

/** An id no example creates. */
export const MISSING_ID = "00000000-0000-4000-8000-000000000000";
/** The vessel the shore's examples name. */
export const EXAMPLE_VESSEL = "vessel-1";
const AT = "2026-11-30T10:00:00.000Z";

/** A sample's record at `version`, as the API answers it. */
export const toUtcRecord = (e: Entity, version: number, fields: Json): Json =>
  recordSchemas[e].parse({
    ...fields,
    id: SAMPLES[e].id,
    version,
    createdAt: AT,
    updatedAt: AT,
  }) as Json;

/** The record a create example answers with (defaults applied, date-times in UTC). */
export function createdRecord(e: Entity): Json {
  const input = createSchemas[e].parse(SAMPLES[e].create) as Json;
  return toUtcRecord(e, 1, input);
}

/** The first filter of an entity the create sample sets, as a query-string value. */
export function sampleFilter(e: Entity): [string, string] {
  const record = createdRecord(e);
  const field = Object.keys(filterSchemas[e]).find((f) => record[f] !== undefined)!;
  return [field, String(record[field])];
}

/** A create body without its first field: the 400 example. */
export const missingField = (e: Entity): Json => {
  const body = { ...SAMPLES[e].create };
  const first = Object.keys(body)[0]!;
  delete body[first];
  return body;
};

/** The `/health` example (sync switched off, so every figure is at rest). */
export function healthExample(role: "vessel" | "shore"): Json {
  return {
    status: "disabled",
    role,
    vesselId: "vessel-1",
    broker: "mqtt://localhost:1883",
    queuedMessages: 0,
    unackedMessages: 0,
    oldestUnackedAgeSeconds: null,
    lastPublishedSeq: 0,
    lastAckedSeq: 0,
    reconnectAttempts: 0,
    activeSubscriptions: 0,
    topics: [],
    qosLevel: 1,
    uptimeSeconds: 5,
    version: VERSION,
  };
}
