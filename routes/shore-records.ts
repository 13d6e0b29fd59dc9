/**
 * The fleet's records at shore (README, "Shore role"): `GET /api/{entity}?vesselId=&limit=&cursor=`
 * lists them as applied, each with its `vesselId`; `POST`, `GET`, `PATCH` and `DELETE`
 * `/api/{entity}[/{id}]?vesselId=` read and change one vessel's records ashore, with the
 * bodies, validation, `If-Match` and answers of the vessel's own API (routes/records.ts), each
 * change committed in that vessel's down outbox (db/shore/writes.ts).
 */
import { Hono } from "hono";
import { z } from "zod";
import {
  createSchemas,
  type Entity,
  ENTITY_PARAM,
  listQuerySchemas,
  toListQuery,
  updateSchemas,
} from "../core/entities.ts";
import { NotFoundError } from "../core/errors.ts";
import { parseInput } from "../core/validation.ts";
import { readJson } from "../http/body.ts";
import { VESSEL_ID_PATTERN } from "../config.ts";
import type { Sql } from "../db/connection.ts";
import { listShoreRecords } from "../db/shore/fleet.ts";
import type { ShoreWriteStore } from "../db/shore/writes.ts";
import { entityOf, etag, idOf, ifMatchOf } from "./records.ts";

/** What the shore records routes need. */
export interface ShoreRecordRoutesDeps {
  sql: Sql;
  writes: ShoreWriteStore;
}

const vesselIdSchema = z.string().regex(VESSEL_ID_PATTERN).meta({
  description: "A vessel id ([A-Za-z0-9_-]{1,64})",
});

/** The vessel's list query plus `vesselId` (without it, every vessel's records). */
export const shoreListQuerySchema = (entity: Entity) =>
  listQuerySchemas[entity].extend({ vesselId: vesselIdSchema.optional() });

/** The query of a shore write or read by id: the vessel it is for. */
export const vesselQuery = z.strictObject({ vesselId: vesselIdSchema });

/** The shore records routes, mounted under `/api` in the shore role. */
export function shoreRecordRoutes({ sql, writes }: ShoreRecordRoutesDeps): Hono {
  const app = new Hono();
  app.get(`/${ENTITY_PARAM}`, async (c) => {
    const entity = entityOf(c);
    const parsed = parseInput(shoreListQuerySchema(entity), c.req.query(), "query");
    const query = toListQuery(parsed, ["vesselId"]);
    return c.json(
      await listShoreRecords(sql, entity, { ...query, vesselId: parsed.vesselId as string }),
    );
  });

  app.post(`/${ENTITY_PARAM}`, async (c) => {
    const entity = entityOf(c);
    const { vesselId } = parseInput(vesselQuery, c.req.query(), "query");
    const input = parseInput(createSchemas[entity], await readJson(c), "body");
    const record = await writes.create(vesselId, entity, input);
    c.header("Location", `/api/${entity}/${record.id}?vesselId=${vesselId}`);
    c.header("ETag", etag(record.version));
    return c.json(record, 201);
  });

  app.get(`/${ENTITY_PARAM}/:id`, async (c) => {
    const entity = entityOf(c);
    const id = idOf(c);
    const { vesselId } = parseInput(vesselQuery, c.req.query(), "query");
    const record = await writes.get(vesselId, entity, id);
    if (!record) throw new NotFoundError(entity, id);
    c.header("ETag", etag(record.version));
    return c.json(record);
  });

  app.patch(`/${ENTITY_PARAM}/:id`, async (c) => {
    const entity = entityOf(c);
    const id = idOf(c);
    const { vesselId } = parseInput(vesselQuery, c.req.query(), "query");
    const ifMatch = ifMatchOf(c);
    const patch = parseInput(updateSchemas[entity], await readJson(c), "body");
    const record = await writes.update(vesselId, entity, id, patch, ifMatch);
    c.header("ETag", etag(record.version));
    return c.json(record);
  });

  app.delete(`/${ENTITY_PARAM}/:id`, async (c) => {
    const entity = entityOf(c);
    const id = idOf(c);
    const { vesselId } = parseInput(vesselQuery, c.req.query(), "query");
    await writes.remove(vesselId, entity, id, ifMatchOf(c));
    return c.body(null, 204);
  });

  return app;
}
