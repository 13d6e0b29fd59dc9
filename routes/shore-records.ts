/**
 * `GET /api/{entity}?vesselId=&limit=&cursor=`: the fleet's records as applied at shore,
 * each with its `vesselId` (README, "Shore role"). Read-only: shore records change only by sync.
 */
import { Hono } from "hono";
import { z } from "zod";
import { isEntity } from "../core/entities.ts";
import { HttpError } from "../core/errors.ts";
import { VESSEL_ID_PATTERN } from "../config.ts";
import type { Sql } from "../db/connection.ts";
import { listShoreRecords } from "../db/shore/fleet.ts";

/** What the shore records route needs. */
export interface ShoreRecordRoutesDeps {
  sql: Sql;
}

const listQuery = z.strictObject({
  vesselId: z.string().regex(VESSEL_ID_PATTERN, "Must match [A-Za-z0-9_-]{1,64}").optional(),
  limit: z.string().regex(/^\d{1,4}$/, "Must be a whole number from 1 to 500").transform(Number)
    .pipe(z.number().int().min(1).max(500)).default(50),
  cursor: z.string().min(1).max(500).optional(),
});

/** The shore records route, mounted under `/api` in the shore role. */
export function shoreRecordRoutes({ sql }: ShoreRecordRoutesDeps): Hono {
  const app = new Hono();
  app.get("/:entity", async (c) => {
    const entity = c.req.param("entity");
    if (!isEntity(entity)) {
      throw new HttpError(404, "unknown_entity", `No entity "${entity.slice(0, 100)}"`);
    }
    const query = listQuery.parse(c.req.query());
    return c.json(await listShoreRecords(sql, entity, query));
  });
  return app;
}
