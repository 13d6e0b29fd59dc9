/**
 * `GET /health`: open, no record data; `503` when the database does not answer.
 */
import { Hono } from "hono";
import type { Logger } from "../core/log.ts";

/** What the health route needs. */
export interface HealthRoutesDeps {
  /** Fields that do not change while running: role, vesselId, broker, version. */
  fixed: Record<string, unknown>;
  startedAt: number;
  /** Role-specific, live fields (the sync engine's or the shore's); throws when the DB is down. */
  report: () => Promise<Record<string, unknown>>;
  log: Logger;
}

/** The health route. */
export function healthRoutes({ fixed, startedAt, report, log }: HealthRoutesDeps): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const uptimeSeconds = Math.round((Date.now() - startedAt) / 1000);
    try {
      return c.json({ ...fixed, ...(await report()), uptimeSeconds });
    } catch (err) {
      log.warn("Health check failed", { error: err });
      return c.json({ ...fixed, database: "unreachable", uptimeSeconds }, 503);
    }
  });
  return app;
}
