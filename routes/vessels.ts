/**
 * `GET /api/vessels`: the fleet as the shore sees it (README, "Shore role").
 */
import { Hono } from "hono";
import type { Sql } from "../db/connection.ts";
import { listVessels } from "../db/shore/fleet.ts";

/** What the vessels route needs. */
export interface VesselRoutesDeps {
  sql: Sql;
}

/** The vessels route, mounted under `/api` in the shore role. */
export function vesselRoutes({ sql }: VesselRoutesDeps): Hono {
  const app = new Hono();
  app.get("/vessels", async (c) => c.json(await listVessels(sql)));
  return app;
}
