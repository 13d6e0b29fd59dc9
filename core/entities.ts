/**
 * The five entities the README lists: their names, and zod schemas for create and update.
 *
 * Schemas are strict (unknown fields are refused) and refuse strings PostgreSQL cannot store
 * (NUL, unpaired surrogates), so validation is the only place bad input is turned away.
 */
import { z } from "zod";

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

/** True when `name` is one of the five entities. */
export function isEntity(name: string): name is Entity {
  return (ENTITIES as readonly string[]).includes(name);
}

const storable = (s: string) => !s.includes("\u0000") && s.isWellFormed();
const text = (max = 10_000) =>
  z.string().max(max).refine(storable, "Must not hold NUL or unpaired surrogates");
const required = (max = 10_000) => text(max).pipe(z.string().min(1));
const isoTime = z.iso.datetime({ offset: true });
const optional = <T extends z.ZodType>(schema: T) => schema.nullable().optional();

/** Entity fields (not server fields) per entity, with defaults applied on create. */
const fields = {
  work_orders: {
    title: text(200).pipe(z.string().min(1)),
    equipmentId: required(200),
    description: optional(text()),
    status: z.enum(["open", "in_progress", "completed", "cancelled"]).default("open"),
    priority: z.number().int().min(1).max(5).default(3),
    assignedTo: optional(text(200)),
    dueAt: optional(isoTime),
  },
  alerts: {
    equipmentId: required(200),
    severity: z.enum(["info", "warning", "critical"]),
    message: required(),
    acknowledged: z.boolean().default(false),
    acknowledgedBy: optional(text(200)),
  },
  equipment: {
    name: required(200),
    type: optional(text(200)),
    location: optional(text(200)),
    status: optional(text(200)),
    runningHours: optional(z.number().min(0).max(1e12)),
  },
  crew: {
    name: required(200),
    rank: optional(text(200)),
    role: optional(text(200)),
    onboard: z.boolean().default(true),
  },
  maintenance_schedules: {
    equipmentId: required(200),
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
      "At least one field must be given",
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
