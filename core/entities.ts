/**
 * The five entities the README lists: their names, and zod schemas for create and update.
 *
 * Schemas are strict (unknown fields are refused) and accept exactly what PostgreSQL stores:
 * no strings with NUL or unpaired surrogates (jsonb refuses them, 22P05 and 22P02), no times
 * a timestamptz refuses (core/datetime.ts turns every time into UTC within years 1–9999), numbers bounded where a column is
 * typed (`version` is an integer). A value past these would fail its change at the shore's
 * database instead of here (docs/shore-isolation.md lists every gap found).
 */
import { z } from "zod";
import { dateTime } from "./datetime.ts";

/** The entity names, as they appear in paths and topics. */
export const ENTITIES = [
  "work_orders",
  "alerts",
  "equipment",
  "crew",
  "maintenance_schedules",
] as const;

/** One of {@linkcode ENTITIES}. */
export type Entity = typeof ENTITIES[number];

/**
 * The `:entity` route parameter, constrained to the five names: a path with any other name
 * matches no route, so it is a 404 and never a 405. The alternation is grouped: Hono splices
 * the pattern into one regular expression with the other routes, where a bare `a|b` leaked
 * out of its segment (`GET /api/work_orders/<id>/parts` matched the list route once a static
 * `/api/conflicts` route stood beside it).
 */
export const ENTITY_PARAM = `:entity{(?:${ENTITIES.join("|")})}`;

/** True when `name` is one of the five entities. */
export function isEntity(name: string): name is Entity {
  return (ENTITIES as readonly string[]).includes(name);
}

const storable = (s: string) => !s.includes("\u0000") && s.isWellFormed();
// Messages come from core/validation.ts, which names the field; `must` completes its sentence.
const storableText = { params: { must: "not hold NUL characters or unpaired surrogates" } };
const text = (max = 10_000) => z.string().max(max).refine(storable, storableText);
const required = (max = 10_000) => z.string().min(1).max(max).refine(storable, storableText);
const isoTime = dateTime();
const optional = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

/**
 * Short identifiers and keywords apps look records up by (an equipment id, a person, a rank):
 * besides enums, booleans and bounded whole numbers, the only fields a list filters on.
 */
const keys = z.registry();
const key = () => {
  const schema = required(200);
  keys.add(schema);
  return schema;
};

/** Entity fields (not server fields) per entity, with defaults applied on create. */
const fields = {
  work_orders: {
    title: required(200),
    equipmentId: key(),
    description: optional(text()),
    status: z.enum(["open", "in_progress", "completed", "cancelled"]).default("open"),
    priority: z.number().int().min(1).max(5).default(3),
    assignedTo: optional(key()),
    dueAt: optional(isoTime),
  },
  alerts: {
    equipmentId: key(),
    severity: z.enum(["info", "warning", "critical"]),
    message: required(),
    acknowledged: z.boolean().default(false),
    acknowledgedBy: optional(key()),
  },
  equipment: {
    name: required(200),
    type: optional(key()),
    location: optional(key()),
    status: optional(key()),
    runningHours: optional(z.number().min(0).max(1e12)),
  },
  crew: {
    name: required(200),
    rank: optional(key()),
    role: optional(key()),
    onboard: z.boolean().default(true),
  },
  maintenance_schedules: {
    equipmentId: key(),
    task: required(),
    intervalHours: z.number().gt(0).max(1e9),
    lastDoneAt: optional(isoTime),
    nextDueAt: optional(isoTime),
  },
} satisfies Record<Entity, z.ZodRawShape>;

// deno-lint-ignore no-explicit-any
type Shape = Record<string, any>;

function withoutDefaults(shape: Shape): Shape {
  const out: Shape = {};
  for (const [key, schema] of Object.entries(shape)) {
    const inner = schema instanceof z.ZodDefault ? schema.unwrap() : schema;
    out[key] = (inner as z.ZodType).optional();
  }
  return out;
}

/** Create bodies: entity fields plus an optional client-supplied `id`. */
export const createSchemas = Object.fromEntries(
  ENTITIES.map((e) => [e, z.strictObject({ id: z.uuid().optional(), ...fields[e] })]),
) as unknown as Record<Entity, z.ZodType<Record<string, unknown> & { id?: string }>>;

/** PATCH bodies: any subset of the entity fields, no defaults, at least one field. */
export const updateSchemas = Object.fromEntries(
  ENTITIES.map((e) => [
    e,
    z.strictObject(withoutDefaults(fields[e])).refine(
      (v) => Object.keys(v).length > 0,
      "The body must hold at least one field to change",
    ),
  ]),
) as unknown as Record<Entity, z.ZodType<Record<string, unknown>>>;

/** A record as the API returns it: server fields first, then the entity's fields. */
export interface ApiRecord {
  id: string;
  version: number;
  createdAt: string;
  updatedAt: string;
  [field: string]: unknown;
}

/** The record schema a shore uses on envelope `data`: server fields plus the entity's. */
export const recordSchemas = Object.fromEntries(
  ENTITIES.map((e) => [
    e,
    z.strictObject({
      id: z.uuid(),
      version: z.number().int().min(1).max(2 ** 31 - 1),
      createdAt: isoTime,
      updatedAt: isoTime,
      ...withoutDefaults(fields[e]),
    }),
  ]),
) as unknown as Record<Entity, z.ZodType<ApiRecord>>;

/** The innermost schema of a field: without optional, nullable and default. */
function bare(schema: z.ZodType): z.ZodType {
  let inner = schema;
  while (
    inner instanceof z.ZodOptional || inner instanceof z.ZodNullable ||
    inner instanceof z.ZodDefault
  ) inner = inner.unwrap() as z.ZodType;
  return inner;
}

/**
 * A query-string schema for equality on `field`, or `undefined` when the list does not filter
 * on it: enums, booleans, bounded whole numbers and {@linkcode key} fields do; free text,
 * measures and date-times do not. The value parses to its JSON type (`"false"` to `false`).
 */
function filterOf(field: z.ZodType): z.ZodType | undefined {
  const inner = bare(field);
  if (inner instanceof z.ZodEnum) return inner;
  if (inner instanceof z.ZodBoolean) {
    return z.enum(["true", "false"]).transform((v) => v === "true").meta({
      description: "True or false",
    });
  }
  if (
    inner instanceof z.ZodNumber && inner.isInt &&
    Number.isFinite(inner.minValue) && Number.isFinite(inner.maxValue) &&
    inner.maxValue! - inner.minValue! <= 100
  ) {
    return z.string().regex(/^-?\d{1,3}$/).transform(Number).pipe(inner).meta({
      description: `A whole number from ${inner.minValue} to ${inner.maxValue}`,
    });
  }
  if (keys.has(inner)) return inner;
  return undefined;
}

/** Per entity, the fields its list filters on by equality, with their query-string schemas. */
export const filterSchemas = Object.fromEntries(
  ENTITIES.map((e) => [
    e,
    Object.fromEntries(
      Object.entries(fields[e] as Shape).flatMap(([name, schema]) => {
        const filter = filterOf(schema);
        return filter ? [[name, filter]] : [];
      }),
    ),
  ]),
) as Record<Entity, Record<string, z.ZodType>>;

/** `limit`: 1–500, default 50. */
export const limitSchema = z.string().regex(/^\d{1,4}$/).transform(Number)
  .pipe(z.number().int().min(1).max(500)).default(50).meta({
    description: "A whole number from 1 to 500 (default 50)",
  });

/** `cursor`: a list's `nextCursor`, passed back for the next page. */
export const cursorSchema = z.string().min(1).max(500).meta({
  description: "The nextCursor of the previous page",
});

/**
 * `GET /api/{entity}` query strings: paging, `updatedSince` (records updated at or after it)
 * and an equality filter per filterable field. Strict: an unknown parameter is a 400.
 */
export const listQuerySchemas = Object.fromEntries(
  ENTITIES.map((e) => [
    e,
    z.strictObject({
      limit: limitSchema,
      cursor: cursorSchema.optional(),
      updatedSince: dateTime().optional(),
      ...Object.fromEntries(
        Object.entries(filterSchemas[e]).map(([name, schema]) => [name, schema.optional()]),
      ),
    }),
  ]),
) as unknown as Record<Entity, z.ZodObject>;

/** A list query, parsed: paging, `updatedSince`, and the equality filters as JSON values. */
export interface ListQuery {
  limit: number;
  cursor?: string;
  updatedSince?: string;
  filters: Record<string, unknown>;
}

/** Splits a parsed list query into paging and filters (anything else it holds is a filter). */
export function toListQuery(parsed: Record<string, unknown>, besides: string[] = []): ListQuery {
  const { limit, cursor, updatedSince, ...rest } = parsed;
  const filters: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rest)) {
    if (!besides.includes(k) && v !== undefined) filters[k] = v;
  }
  return {
    limit: limit as number,
    cursor: cursor as string | undefined,
    updatedSince: updatedSince as string | undefined,
    filters,
  };
}
