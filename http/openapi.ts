/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of the running role, generated from the zod
 * schemas that validate requests (core/entities.ts, routes/*.ts, sync/protocol.ts) with zod's
 * own JSON Schema output, so the document cannot drift from what the API accepts.
 *
 * Examples are named: a request example (body, query or path parameter) and the response
 * example of the same name belong together, which is how tests/http/openapi.test.ts replays
 * every one of them against a live app.
 */
import { z } from "zod";
import {
  createSchemas,
  ENTITIES,
  type Entity,
  filterSchemas,
  listQuerySchemas,
  recordSchemas,
  updateSchemas,
} from "../core/entities.ts";
import { VERSION } from "../core/version.ts";
import { catchupRequestSchema, MAX_CATCHUP_LIMIT } from "../sync/protocol.ts";
import { listQuery } from "../routes/records.ts";
import { shoreListQuerySchema, vesselQuery } from "../routes/shore-records.ts";

type Json = Record<string, unknown>;

/** What the document describes: the role's routes, and catch-up where the engine runs. */
export interface OpenApiOptions {
  role: "vessel" | "shore";
  catchup: boolean;
}

// ---- response schemas: what the routes answer (documentation only; requests are validated by
// the request schemas imported above) ------------------------------------------------------

const errorSchema = z.strictObject({
  error: z.strictObject({
    code: z.string().meta({ description: "snake_case, stable: what a program checks" }),
    message: z.string().meta({ description: "for a person: names the field and what it wants" }),
    details: z.array(z.unknown()),
  }),
});

const pageOf = (item: z.ZodType) =>
  z.strictObject({ items: z.array(item), nextCursor: z.string().nullable() });

const shoreRecordSchema = (e: Entity) =>
  (recordSchemas[e] as unknown as z.ZodObject).extend({ vesselId: z.string() });

const healthSchema = z.looseObject({
  status: z.enum(["connected", "disconnected", "disabled"]),
  role: z.enum(["vessel", "shore"]),
  vesselId: z.string(),
  broker: z.string(),
  queuedMessages: z.number().int(),
  unackedMessages: z.number().int(),
  oldestUnackedAgeSeconds: z.number().nullable(),
  lastPublishedSeq: z.number().int(),
  lastAckedSeq: z.number().int(),
  reconnectAttempts: z.number().int(),
  activeSubscriptions: z.number().int(),
  topics: z.array(z.string()),
  qosLevel: z.number().int(),
  uptimeSeconds: z.number().int(),
  version: z.string(),
  down: z.union([
    z.looseObject({
      epoch: z.string().nullable(),
      lastAppliedSeq: z.number().int(),
      applied: z.number().int(),
      waiting: z.number().int(),
      lastReceivedAt: z.string().nullable(),
      dropped: z.number().int(),
      conflicts: z.number().int(),
    }).meta({ description: "Vessel: the shore's stream to it, as applied on board" }),
    z.looseObject({
      vessels: z.number().int(),
      backlog: z.number().int(),
      queued: z.number().int(),
      unacked: z.number().int(),
      oldestUnackedAgeSeconds: z.number().nullable(),
      lastAckAt: z.string().nullable(),
      streams: z.array(z.looseObject({
        vesselId: z.string(),
        epoch: z.string(),
        backlog: z.number().int(),
        queued: z.number().int(),
        unacked: z.number().int(),
        lastSeq: z.number().int(),
        publishedSeq: z.number().int(),
        ackedSeq: z.number().int(),
        oldestUnackedAgeSeconds: z.number().nullable(),
        lastAckAt: z.string().nullable(),
      })),
    }).meta({ description: "Shore: each vessel's down stream (changes made ashore)" }),
  ]).optional(),
}).meta({ description: "More fields may appear; the shore adds `fleet`" });

const vesselsSchema = z.array(z.looseObject({
  vesselId: z.string(),
  status: z.enum(["online", "offline", "unknown"]),
  epoch: z.string().nullable(),
  lastSeq: z.number().int(),
  lastSeenAt: z.string().nullable(),
  gaps: z.number().int(),
  deadLetters: z.number().int(),
  forgeries: z.number().int(),
  downBacklog: z.number().int().meta({
    description: "Changes made ashore for the vessel it has not acknowledged yet",
  }),
  downUnacked: z.number().int().meta({
    description: "Of those, published (PUBACKed by the broker) and awaiting the vessel's ack",
  }),
  downEpoch: z.string().nullable(),
  downPublishedSeq: z.number().int(),
  downAckedSeq: z.number().int(),
  downLastAckAt: z.string().nullable(),
}));

const conflictsSchema = pageOf(z.looseObject({
  id: z.string(),
  entity: z.enum(ENTITIES),
  recordId: z.uuid(),
  vesselId: z.string(),
  fields: z.array(z.string()),
  vessel: z.record(z.string(), z.unknown()).nullable(),
  shore: z.record(z.string(), z.unknown()).nullable(),
  resolved: z.record(z.string(), z.unknown()).nullable(),
  at: z.string(),
}));

const catchupListSchema = z.strictObject({
  changes: z.array(z.looseObject({
    type: z.enum(["data_change", "catchup"]),
    entity: z.enum(ENTITIES),
    operation: z.enum(["create", "update", "delete"]),
    data: z.record(z.string(), z.unknown()),
    timestamp: z.string(),
    messageId: z.string(),
    vesselId: z.string(),
    epoch: z.string(),
    seq: z.number().int(),
  })),
  nextSince: z.number().int(),
  hasMore: z.boolean(),
});

const catchupQuerySchema = z.strictObject({
  since: z.string().regex(/^\d+$/).meta({ description: "A seq; changes after it (exclusive)" }),
  entity: z.enum(ENTITIES).optional(),
  limit: z.string().regex(/^\d+$/).optional().meta({
    description: `A whole number from 1 to ${MAX_CATCHUP_LIMIT}`,
  }),
});

const republishSchema = z.strictObject({
  published: z.number().int(),
  fromSeq: z.number().int().nullable(),
  toSeq: z.number().int().nullable(),
});

// ---- examples ---------------------------------------------------------------------------------

/** A valid create body and patch per entity, with a fixed id the other examples refer to. */
const SAMPLES: Record<Entity, { id: string; create: Json; patch: Json }> = {
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
const MISSING_ID = "00000000-0000-4000-8000-000000000000";
const EXAMPLE_VESSEL = "vessel-1";
const AT = "2026-11-30T10:00:00.000Z";

const toUtcRecord = (e: Entity, version: number, fields: Json): Json =>
  recordSchemas[e].parse({
    ...fields,
    id: SAMPLES[e].id,
    version,
    createdAt: AT,
    updatedAt: AT,
  }) as Json;

/** The record a create example answers with (defaults applied, date-times in UTC). */
function createdRecord(e: Entity): Json {
  const input = createSchemas[e].parse(SAMPLES[e].create) as Json;
  return toUtcRecord(e, 1, input);
}

/** The first filter of an entity the create sample sets, as a query-string value. */
function sampleFilter(e: Entity): [string, string] {
  const record = createdRecord(e);
  const field = Object.keys(filterSchemas[e]).find((f) => record[f] !== undefined)!;
  return [field, String(record[field])];
}

const missingField = (e: Entity): Json => {
  const body = { ...SAMPLES[e].create };
  const first = Object.keys(body)[0]!;
  delete body[first];
  return body;
};

// ---- building the document -----------------------------------------------------------------

/** A zod schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), without its `$schema`. */
function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Json;
  return rest;
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const examples = (named: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(named).map(([k, value]) => [k, { value }]));

interface Op {
  summary: string;
  auth?: boolean;
  params?: Json[];
  body?: { schema: Json; examples: Record<string, unknown> };
  /** status → schema name (or inline JSON Schema), description, examples. */
  responses: Record<
    string,
    { description: string; schema?: string | Json; examples?: Record<string, unknown> }
  >;
  text?: boolean;
}

const ERRORS: Record<string, string> = {
  "400": "Bad JSON, a field that fails validation, an unknown field or query parameter",
  "401": "Missing or wrong bearer token",
  "404": "No such record (also a deleted one)",
  "409": "A record with this id exists",
  "412": "If-Match names a version that is not current",
  "413": "Body over 1 MiB",
  "415": "Body not application/json",
  "503": "Outbox full, database unreachable or gateway stopping; with Retry-After",
};

function operation(op: Op): Json {
  const responses: Json = {};
  for (const [status, r] of Object.entries(op.responses)) {
    const schema = r.schema === undefined
      ? undefined
      : typeof r.schema === "string"
      ? ref(r.schema)
      : r.schema;
    const type = op.text && status === "200" ? "text/plain" : "application/json";
    responses[status] = {
      description: r.description,
      ...(schema && {
        content: { [type]: { schema, ...(r.examples && { examples: examples(r.examples) }) } },
      }),
    };
  }
  const errors = op.auth ? ["401", "503"] : [];
  for (const status of errors) {
    responses[status] ??= { description: ERRORS[status], content: errorContent() };
  }
  return {
    summary: op.summary,
    ...(op.auth ? {} : { security: [] }),
    ...(op.params?.length && { parameters: op.params }),
    ...(op.body && {
      requestBody: {
        required: true,
        content: {
          "application/json": { schema: op.body.schema, examples: examples(op.body.examples) },
        },
      },
    }),
    responses,
  };
}

const errorContent = (named?: Record<string, unknown>) => ({
  "application/json": { schema: ref("Error"), ...(named && { examples: examples(named) }) },
});

const errorResponse = (status: string, named: Record<string, string>) => ({
  description: ERRORS[status]!,
  schema: "Error",
  examples: Object.fromEntries(
    Object.entries(named).map(([name, code]) => [
      name,
      { error: { code, message: "…", details: [] } },
    ]),
  ),
});

/** Query parameters from a strict zod object, each with its JSON Schema and named examples. */
function queryParams(schema: z.ZodObject, named: Record<string, Record<string, string>> = {}) {
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => {
    const ex = Object.fromEntries(
      Object.entries(named).flatMap(([k, values]) => name in values ? [[k, values[name]]] : []),
    );
    return {
      name,
      in: "query",
      required: !field.safeParse(undefined).success,
      schema: jsonSchema(field, "input"),
      ...(Object.keys(ex).length && { examples: examples(ex) }),
    };
  });
}

/** Adds named examples for parameters a schema does not have (`colour`, to show the 400). */
const unknownParam = (name: string, value: string) => ({
  name,
  in: "query",
  required: false,
  description: "Not a parameter of this route: shown to document the 400 it gets",
  schema: { type: "string" },
  examples: examples({ unknown_parameter: value }),
});

const idParam = (e: Entity, named: Record<string, string> = {}) => ({
  name: "id",
  in: "path",
  required: true,
  schema: { type: "string", format: "uuid" },
  example: SAMPLES[e].id,
  ...(Object.keys(named).length && { examples: examples(named) }),
});

const ifMatch = (named: Record<string, string>) => ({
  name: "If-Match",
  in: "header",
  required: false,
  description: 'The version the change expects, quoted ("3"); a stale one gets 412',
  schema: { type: "string" },
  examples: examples(named),
});

/** The OpenAPI 3.1 document for `options.role`. */
export function openApiDocument(options: OpenApiOptions): Json {
  const { role } = options;
  const schemas: Json = { Error: jsonSchema(errorSchema, "output") };
  const paths: Json = {};
  const shore = role === "shore";
  // The shore's writes and reads by id name the vessel; each operation lists its own examples.
  const vesselParam = (...names: string[]) =>
    shore
      ? queryParams(
        vesselQuery,
        Object.fromEntries(names.map((n) => [n, { vesselId: EXAMPLE_VESSEL }])),
      )
      : [];

  for (const e of ENTITIES) {
    const Name = e.split("_").map((w) => w[0]!.toUpperCase() + w.slice(1)).join("");
    schemas[`${Name}Create`] = jsonSchema(createSchemas[e], "input");
    schemas[`${Name}Update`] = jsonSchema(updateSchemas[e], "input");
    schemas[Name] = jsonSchema(shore ? shoreRecordSchema(e) : recordSchemas[e], "output");
    schemas[`${Name}Page`] = jsonSchema(
      pageOf(shore ? shoreRecordSchema(e) : recordSchemas[e]),
      "output",
    );
    const withVessel = (r: Json) => shore ? { ...r, vesselId: EXAMPLE_VESSEL } : r;
    const created = withVessel(createdRecord(e));
    const updated = withVessel(
      toUtcRecord(e, 2, { ...createdRecord(e), ...updateSchemas[e].parse(SAMPLES[e].patch) }),
    );
    const [filter, value] = sampleFilter(e);
    const query = shore ? shoreListQuerySchema(e) : listQuerySchemas[e];
    const listExamples = {
      filtered: { limit: "10", [filter]: value, ...(shore && { vesselId: EXAMPLE_VESSEL }) },
    };

    paths[`/api/${e}`] = {
      post: operation({
        summary: shore ? `Create a ${e} record for a vessel, ashore` : `Create a ${e} record`,
        auth: true,
        params: vesselParam("create", "missing_field"),
        body: {
          schema: ref(`${Name}Create`),
          examples: {
            create: { id: SAMPLES[e].id, ...SAMPLES[e].create },
            missing_field: missingField(e),
          },
        },
        responses: {
          "201": {
            description: "Created and committed with its change",
            schema: Name,
            examples: { create: created },
          },
          "400": errorResponse("400", { missing_field: "validation_failed" }),
          "409": { description: ERRORS["409"]!, schema: "Error" },
          "413": { description: ERRORS["413"]!, schema: "Error" },
          "415": { description: ERRORS["415"]!, schema: "Error" },
        },
      }),
      get: operation({
        summary: shore
          ? `List ${e} as applied at shore, oldest first, filtered`
          : `List ${e}, oldest first, filtered`,
        auth: true,
        params: [...queryParams(query, listExamples), unknownParam("colour", "red")],
        responses: {
          "200": {
            description: "A page",
            schema: `${Name}Page`,
            examples: { filtered: { items: [created], nextCursor: null } },
          },
          "400": errorResponse("400", { unknown_parameter: "validation_failed" }),
        },
      }),
    };
    paths[`/api/${e}/{id}`] = {
      get: operation({
        summary: `Read one ${e} record`,
        auth: true,
        params: [
          idParam(e, { found: SAMPLES[e].id, not_found: MISSING_ID }),
          ...vesselParam("found", "not_found"),
        ],
        responses: {
          "200": { description: "The record", schema: Name, examples: { found: created } },
          "404": errorResponse("404", { not_found: "not_found" }),
        },
      }),
      patch: operation({
        summary: `Change fields of one ${e} record (null removes an optional one)`,
        auth: true,
        params: [
          idParam(e),
          ...vesselParam("update", "stale"),
          ifMatch({ update: '"1"', stale: '"1"' }),
        ],
        body: {
          schema: ref(`${Name}Update`),
          examples: { update: SAMPLES[e].patch, stale: SAMPLES[e].patch },
        },
        responses: {
          "200": { description: "The record", schema: Name, examples: { update: updated } },
          "400": { description: ERRORS["400"]!, schema: "Error" },
          "404": { description: ERRORS["404"]!, schema: "Error" },
          "412": errorResponse("412", { stale: "version_mismatch" }),
        },
      }),
      delete: operation({
        summary: `Delete one ${e} record (a change like any other)`,
        auth: true,
        params: [idParam(e, { delete: SAMPLES[e].id }), ...vesselParam("delete"), ifMatch({})],
        responses: {
          "204": { description: "Deleted" },
          "404": { description: ERRORS["404"]!, schema: "Error" },
          "412": { description: ERRORS["412"]!, schema: "Error" },
        },
      }),
    };
  }

  const conflictsQuery = listQuery.extend({ entity: z.enum(ENTITIES).optional() });
  schemas.ConflictPage = jsonSchema(conflictsSchema, "output");
  paths["/api/conflicts"] = {
    get: operation({
      summary: "Conflicts two-way sync recorded, newest first",
      auth: true,
      params: queryParams(conflictsQuery, { all: { limit: "20" } }),
      responses: {
        "200": {
          description: "A page",
          schema: "ConflictPage",
          examples: { all: { items: [], nextCursor: null } },
        },
        "400": { description: ERRORS["400"]!, schema: "Error" },
      },
    }),
  };

  if (shore) {
    schemas.Vessels = jsonSchema(vesselsSchema, "output");
    paths["/api/vessels"] = {
      get: operation({
        summary: "The fleet: each vessel's presence, epoch and applied position",
        auth: true,
        responses: {
          "200": { description: "Every known vessel", schema: "Vessels", examples: { fleet: [] } },
        },
      }),
    };
  }

  if (options.catchup) {
    schemas.CatchupPage = jsonSchema(catchupListSchema, "output");
    schemas.CatchupRequest = jsonSchema(catchupRequestSchema, "input");
    schemas.Republished = jsonSchema(republishSchema, "output");
    paths["/catchup"] = {
      get: operation({
        summary: "The change log after a seq, in seq order, deletes included",
        auth: true,
        params: queryParams(catchupQuerySchema, { from_start: { since: "0", limit: "100" } }),
        responses: {
          "200": {
            description: "Changes as envelopes",
            schema: "CatchupPage",
            examples: { from_start: { changes: [], nextSince: 0, hasMore: false } },
          },
          "400": { description: ERRORS["400"]!, schema: "Error" },
        },
      }),
      post: operation({
        summary: "Re-publish the changes after a seq or from a time on the catch-up topics",
        auth: true,
        body: {
          schema: ref("CatchupRequest"),
          examples: { since_time: { since: "2026-11-30T00:00Z", limit: 100 } },
        },
        responses: {
          "200": {
            description: "What was published",
            schema: "Republished",
            examples: { since_time: { published: 0, fromSeq: null, toSeq: null } },
          },
          "400": { description: ERRORS["400"]!, schema: "Error" },
        },
      }),
    };
  }

  schemas.Health = jsonSchema(healthSchema, "output");
  paths["/health"] = {
    get: operation({
      summary: "Link, backlog and database state; 503 when the database is unreachable",
      responses: {
        "200": { description: "Healthy", schema: "Health", examples: { ok: healthExample(role) } },
        "503": { description: "The database is unreachable", schema: { type: "object" } },
      },
    }),
  };
  paths["/metrics"] = {
    get: operation({
      summary: "Prometheus text exposition",
      text: true,
      responses: {
        "200": {
          description: "Metrics",
          schema: { type: "string" },
          examples: { scrape: "# HELP bosun_queue_depth …\nbosun_queue_depth 0\n" },
        },
      },
    }),
  };
  paths["/openapi.json"] = {
    get: operation({
      summary: "This document",
      responses: {
        "200": {
          description: "OpenAPI 3.1",
          schema: { type: "object" },
          examples: { self: { openapi: "3.1.0" } },
        },
      },
    }),
  };

  return {
    openapi: "3.1.0",
    info: {
      title: `bosun (${role})`,
      version: VERSION,
      description: "Store-and-forward sync gateway for vessels. Errors are " +
        '{"error": {"code", "message", "details"}}; date-times take any zone and come back in UTC.',
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      schemas,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  };
}

function healthExample(role: "vessel" | "shore"): Json {
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
