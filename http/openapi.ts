/**
 * `GET /openapi.json`: the OpenAPI 3.1 document of the running role, generated from the zod
 * schemas that validate requests (core/entities.ts, routes/*.ts, sync/protocol.ts) with zod's
 * own JSON Schema output, so the document cannot drift from what the API accepts.
 *
 * Examples are named: a request example (body, query or path parameter) and the response
 * example of the same name belong together, which is how tests/http/openapi.test.ts replays
 * every one of them against a live app. The parts: http/openapi-operations.ts (how an
 * operation is written), http/openapi-schemas.ts (what the routes answer),
 * http/openapi-examples.ts (the examples).
 */
import { z } from "zod";
import {
  createSchemas,
  ENTITIES,
  type Entity,
  listQuerySchemas,
  recordSchemas,
  updateSchemas,
} from "../core/entities.ts";
import { VERSION } from "../core/version.ts";
import { catchupRequestSchema } from "../sync/protocol.ts";
import { listQuery } from "../routes/records.ts";
import { shoreListQuerySchema, vesselQuery } from "../routes/shore-records.ts";
import {
  catchupListSchema,
  catchupQuerySchema,
  conflictsSchema,
  errorSchema,
  healthSchema,
  pageOf,
  republishSchema,
  shoreRecordSchema,
  vesselsSchema,
} from "./openapi-schemas.ts";
import {
  createdRecord,
  EXAMPLE_VESSEL,
  healthExample,
  MISSING_ID,
  missingField,
  sampleFilter,
  SAMPLES,
  toUtcRecord,
} from "./openapi-examples.ts";
import {
  errorResponse,
  ERRORS,
  examples,
  ifMatch,
  type Json,
  jsonSchema,
  operation,
  queryParams,
  ref,
  unknownParam,
} from "./openapi-operations.ts";

/** What the document describes: the role's routes, and catch-up where the engine runs. */
export interface OpenApiOptions {
  role: "vessel" | "shore";
  catchup: boolean;
}

/** The OpenAPI 3.1 document for `options.role`. */
export function openApiDocument(options: OpenApiOptions): Json {
  const { role } = options;
  const schemas: Json = { Error: jsonSchema(errorSchema, "output") };
  const paths: Json = {};
  const shore = role === "shore";

  for (const e of ENTITIES) Object.assign(paths, recordPaths(e, shore, schemas));

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
/**
 * `/api/<entity>` and `/api/<entity>/{id}`, adding the entity's schemas to `schemas`. The
 * shore's writes and reads by id name the vessel; each operation lists its own examples.
 */
function recordPaths(e: Entity, shore: boolean, schemas: Json): Json {
  const paths: Json = {};
  const vesselParam = (...names: string[]) =>
    shore
      ? queryParams(
        vesselQuery,
        Object.fromEntries(names.map((n) => [n, { vesselId: EXAMPLE_VESSEL }])),
      )
      : [];
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
  return paths;
}

/** The `id` path parameter of an entity, with its sample id and named examples. */
const idParam = (e: Entity, named: Record<string, string> = {}) => ({
  name: "id",
  in: "path",
  required: true,
  schema: { type: "string", format: "uuid" },
  example: SAMPLES[e].id,
  ...(Object.keys(named).length && { examples: examples(named) }),
});
