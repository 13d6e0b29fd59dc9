/**
 * `GET /api/conflicts?entity=&limit=&cursor=`: the conflicts two-way sync recorded on this
 * side (docs/two-way-sync.md), newest first, on both roles. Mounted before the records routes,
 * whose `/:entity` would otherwise answer it as an unknown entity.
 */
import { Hono } from "hono";
import { z } from "zod";
import { ENTITIES } from "../core/entities.ts";
import { parseInput } from "../core/validation.ts";
import type { Sql } from "../db/connection.ts";
import { listConflicts } from "../db/conflicts.ts";
import { listQuery } from "./records.ts";

const conflictsQuery = listQuery.extend({ entity: z.enum(ENTITIES).optional() });

/** The conflicts route, mounted under `/api`. */
export function conflictRoutes({ sql }: { sql: Sql }): Hono {
  const app = new Hono();
  app.get("/conflicts", async (c) => {
    const query = parseInput(conflictsQuery, c.req.query(), "query");
    return c.json(await listConflicts(sql, query));
  });
  return app;
}
