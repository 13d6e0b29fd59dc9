/**
 * `GET /api/{entity}?vesselId=&limit=&cursor=`: the fleet's records as applied at shore,
 * each with its `vesselId` (README, "Shore role"). Read-only: shore records change only by sync.
 */
import { Hono } from "hono";
import { z } from "zod";
import {
  type Entity,
  ENTITY_PARAM,
  isEntity,
  listQuerySchemas,
  toListQuery,
} from "../core/entities.ts";
import { HttpError } from "../core/errors.ts";
import { parseInput } from "../core/validation.ts";
import { VESSEL_ID_PATTERN } from "../config.ts";
import type { Sql } from "../db/connection.ts";
import { listShoreRecords } from "../db/shore/fleet.ts";

/** What the shore records route needs. */
export interface ShoreRecordRoutesDeps {
  sql: Sql;
}

/** The vessel's list query plus `vesselId`. */
export const shoreListQuerySchema = (entity: Entity) =>
  listQuerySchemas[entity].extend({
    vesselId: z.string().regex(VESSEL_ID_PATTERN).optional().meta({
      description: "a vessel id ([A-Za-z0-9_-]{1,64}); without it, every vessel's records",
    }),
  });

/** The shore records route, mounted under `/api` in the shore role. */
export function shoreRecordRoutes({ sql }: ShoreRecordRoutesDeps): Hono {
  const app = new Hono();
  app.get(`/${ENTITY_PARAM}`, async (c) => {
    const entity = c.req.param("entity") ?? "";
    if (!isEntity(entity)) {
      throw new HttpError(404, "unknown_entity", `No entity "${entity.slice(0, 100)}"`);
    }
    const parsed = parseInput(shoreListQuerySchema(entity), c.req.query(), "query");
    const query = toListQuery(parsed, ["vesselId"]);
    return c.json(
      await listShoreRecords(sql, entity, { ...query, vesselId: parsed.vesselId as string }),
    );
  });
  return app;
}
