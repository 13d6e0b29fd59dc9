/**
 * `/api/{entity}`: create, get, list, update and delete records (README, "HTTP API").
 */
import { Hono } from "hono";
import { z } from "zod";
import type { Context } from "hono";
import {
  createSchemas,
  cursorSchema,
  type Entity,
  ENTITY_PARAM,
  isEntity,
  limitSchema,
  listQuerySchemas,
  toListQuery,
  updateSchemas,
} from "../core/entities.ts";
import { HttpError } from "../core/errors.ts";
import { parseInput } from "../core/validation.ts";
import { readJson } from "../http/body.ts";
import type { RecordStore } from "../db/vessel/records.ts";

/** What the records routes need. */
export interface RecordRoutesDeps {
  records: RecordStore;
}

/** `limit` and `cursor` of a list that has no filters (conflicts). */
export const listQuery = z.strictObject({ limit: limitSchema, cursor: cursorSchema.optional() });

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The `:entity` path parameter; an unknown entity is a 404. */
export function entityOf(c: Context): Entity {
  const name = c.req.param("entity") ?? "";
  if (!isEntity(name)) {
    throw new HttpError(404, "unknown_entity", `No entity "${name.slice(0, 100)}"`);
  }
  return name;
}

/** The `:id` path parameter; not a UUID is a 400. */
export function idOf(c: Context): string {
  const id = c.req.param("id") ?? "";
  if (!UUID.test(id)) {
    throw new HttpError(400, "invalid_id", `Id "${id.slice(0, 100)}" is not a UUID`);
  }
  return id.toLowerCase();
}

/** Reads `If-Match: "<version>"` (weak tags and bare numbers accepted too). */
export function ifMatchOf(c: Context): number | undefined {
  const header = c.req.header("if-match");
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,9})"?\s*$/.exec(header);
  if (!m) {
    throw new HttpError(
      400,
      "invalid_if_match",
      `If-Match "${header.slice(0, 100)}" is not a quoted version such as "3"`,
    );
  }
  return Number(m[1]);
}

/** The ETag of a record version. */
export const etag = (version: number) => `"${version}"`;

/** The records routes, mounted under `/api`. */
export function recordRoutes({ records }: RecordRoutesDeps): Hono {
  const app = new Hono();

  app.post(`/${ENTITY_PARAM}`, async (c) => {
    const entity = entityOf(c);
    const input = parseInput(createSchemas[entity], await readJson(c), "body");
    const record = await records.create(entity, input);
    c.header("Location", `/api/${entity}/${record.id}`);
    c.header("ETag", etag(record.version));
    return c.json(record, 201);
  });

  app.get(`/${ENTITY_PARAM}`, async (c) => {
    const entity = entityOf(c);
    const query = toListQuery(parseInput(listQuerySchemas[entity], c.req.query(), "query"));
    return c.json(await records.list(entity, query));
  });

  app.get(`/${ENTITY_PARAM}/:id`, async (c) => {
    const entity = entityOf(c);
    const id = idOf(c);
    const record = await records.get(entity, id);
    if (!record) throw new HttpError(404, "not_found", `No ${entity} record with id "${id}"`);
    c.header("ETag", etag(record.version));
    return c.json(record);
  });

  app.patch(`/${ENTITY_PARAM}/:id`, async (c) => {
    const entity = entityOf(c);
    const id = idOf(c);
    const ifMatch = ifMatchOf(c);
    const patch = parseInput(updateSchemas[entity], await readJson(c), "body");
    const record = await records.update(entity, id, patch, ifMatch);
    c.header("ETag", etag(record.version));
    return c.json(record);
  });

  app.delete(`/${ENTITY_PARAM}/:id`, async (c) => {
    const entity = entityOf(c);
    await records.remove(entity, idOf(c), ifMatchOf(c));
    return c.body(null, 204);
  });

  return app;
}
