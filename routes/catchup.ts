/**
 * `GET /catchup` and `POST /catchup` (vessel role), behind the bearer token.
 */
import { Hono } from "hono";
import { parseInput } from "../core/validation.ts";
import { readJson } from "../http/body.ts";
import { z } from "zod";
import { ENTITIES } from "../core/entities.ts";
import type { Catchup } from "../sync/vessel/catchup.ts";
import { catchupRequestSchema, MAX_CATCHUP_LIMIT } from "../sync/protocol.ts";

const wholeNumber = (name: string) =>
  z.string().regex(/^\d+$/, `${name} must be a whole number`).transform(Number);

/** `GET /catchup` query: since is a seq (exclusive). */
const catchupQuerySchema = z.strictObject({
  since: wholeNumber("since").pipe(z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)),
  entity: z.enum(ENTITIES).optional(),
  limit: wholeNumber("limit").pipe(z.number().int().min(1).max(MAX_CATCHUP_LIMIT)).optional(),
});

/** The catch-up routes over the engine's catch-up service. */
export function catchupRoutes({ catchup }: { catchup: Catchup }): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const query = parseInput(catchupQuerySchema, c.req.query(), "query");
    return c.json(await catchup.list(query));
  });
  app.post("/", async (c) => {
    const body = await readJson(c);
    return c.json(await catchup.republish(parseInput(catchupRequestSchema, body, "body")));
  });
  return app;
}
