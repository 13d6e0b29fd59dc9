/**
 * `/api/{entity}`: create, get, list, update and delete records (README, "HTTP API").
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { z } from "zod";
import { createSchemas, type Entity, isEntity, updateSchemas } from "../core/entities.ts";
import { HttpError } from "../core/errors.ts";
import type { RecordStore } from "../db/vessel/records.ts";

/** What the records routes need. */
export interface RecordRoutesDeps {
  records: RecordStore;
}

const listQuery = z.strictObject({
  limit: z.string().regex(/^\d{1,4}$/, "Must be a whole number from 1 to 500").transform(Number)
    .pipe(z.number().int().min(1).max(500)).default(50),
  cursor: z.string().min(1).max(500).optional(),
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function entityOf(c: Context): Entity {
  const name = c.req.param("entity") ?? "";
  if (!isEntity(name)) {
    throw new HttpError(404, "unknown_entity", `No entity "${name.slice(0, 100)}"`);
  }
  return name;
}

function idOf(c: Context): string {
  const id = c.req.param("id") ?? "";
  if (!UUID.test(id)) {
    throw new HttpError(400, "invalid_id", `Id "${id.slice(0, 100)}" is not a UUID`);
  }
  return id.toLowerCase();
}

/** Reads `If-Match: "<version>"` (weak tags and bare numbers accepted too). */
function ifMatchOf(c: Context): number | undefined {
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

/** Reads a JSON body: 415 when not JSON, 400 when it does not parse. */
async function jsonBody(c: Context): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "Body must be application/json");
  }
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "invalid_json", `Body is not valid JSON: ${(err as Error).message}`);
  }
}

const etag = (version: number) => `"${version}"`;

/** The records routes, mounted under `/api`. */
export function recordRoutes({ records }: RecordRoutesDeps): Hono {
  const app = new Hono();

  app.post("/:entity", async (c) => {
    const entity = entityOf(c);
    const input = createSchemas[entity].parse(await jsonBody(c));
    const record = await records.create(entity, input);
    c.header("Location", `/api/${entity}/${record.id}`);
    c.header("ETag", etag(record.version));
    return c.json(record, 201);
  });

  app.get("/:entity", async (c) => {
    const entity = entityOf(c);
    const query = listQuery.parse(c.req.query());
    return c.json(await records.list(entity, query));
  });

  app.get("/:entity/:id", async (c) => {
    const entity = entityOf(c);
    const id = idOf(c);
    const record = await records.get(entity, id);
    if (!record) throw new HttpError(404, "not_found", `No ${entity} record with id "${id}"`);
    c.header("ETag", etag(record.version));
    return c.json(record);
  });

  app.patch("/:entity/:id", async (c) => {
    const entity = entityOf(c);
    const id = idOf(c);
    const ifMatch = ifMatchOf(c);
    const patch = updateSchemas[entity].parse(await jsonBody(c));
    const record = await records.update(entity, id, patch, ifMatch);
    c.header("ETag", etag(record.version));
    return c.json(record);
  });

  app.delete("/:entity/:id", async (c) => {
    const entity = entityOf(c);
    await records.remove(entity, idOf(c), ifMatchOf(c));
    return c.body(null, 204);
  });

  return app;
}
