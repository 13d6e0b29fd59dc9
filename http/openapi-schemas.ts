/**
 * What the routes answer, as zod schemas for http/openapi.ts: documentation only (requests are
 * validated by the request schemas of core/entities.ts, routes/*.ts and sync/protocol.ts, which
 * the document imports directly).
 */
import { z } from "zod";
import { ENTITIES, type Entity, recordSchemas } from "../core/entities.ts";
import { MAX_CATCHUP_LIMIT } from "../sync/protocol.ts";

/** The one error body (http/app.ts's onError). */
export const errorSchema = z.strictObject({
  error: z.strictObject({
    code: z.string().meta({ description: "snake_case, stable: what a program checks" }),
    message: z.string().meta({ description: "for a person: names the field and what it wants" }),
    details: z.array(z.unknown()),
  }),
});

/** A page of `item`s with the cursor of the next. */
export const pageOf = (item: z.ZodType) =>
  z.strictObject({ items: z.array(item), nextCursor: z.string().nullable() });

/** A record as the shore answers it: with the vessel it belongs to. */
export const shoreRecordSchema = (e: Entity) =>
  (recordSchemas[e] as unknown as z.ZodObject).extend({ vesselId: z.string() });

/** `GET /health`. */
export const healthSchema = z.looseObject({
  status: z.enum(["connected", "disconnected", "disabled"]),
  role: z.enum(["vessel", "shore"]),
  vesselId: z.string(),
  broker: z.string(),
  queuedMessages: z.number().int(),
  unackedMessages: z.number().int(),
  oldestUnackedAgeSeconds: z.number().nullable(),
  lastPublishedSeq: z.number().int(),
  lastAckedSeq: z.number().int(),
  reconnectAttempts: z.number().int(),
  activeSubscriptions: z.number().int(),
  topics: z.array(z.string()),
  qosLevel: z.number().int(),
  uptimeSeconds: z.number().int(),
  version: z.string(),
  down: z.union([
    z.looseObject({
      epoch: z.string().nullable(),
      lastAppliedSeq: z.number().int(),
      applied: z.number().int(),
      waiting: z.number().int(),
      lastReceivedAt: z.string().nullable(),
      dropped: z.number().int(),
      conflicts: z.number().int(),
    }).meta({ description: "Vessel: the shore's stream to it, as applied on board" }),
    z.looseObject({
      vessels: z.number().int(),
      backlog: z.number().int(),
      queued: z.number().int(),
      unacked: z.number().int(),
      oldestUnackedAgeSeconds: z.number().nullable(),
      lastAckAt: z.string().nullable(),
      streams: z.array(z.looseObject({
        vesselId: z.string(),
        epoch: z.string(),
        backlog: z.number().int(),
        queued: z.number().int(),
        unacked: z.number().int(),
        lastSeq: z.number().int(),
        publishedSeq: z.number().int(),
        ackedSeq: z.number().int(),
        oldestUnackedAgeSeconds: z.number().nullable(),
        lastAckAt: z.string().nullable(),
      })),
    }).meta({ description: "Shore: each vessel's down stream (changes made ashore)" }),
  ]).optional(),
}).meta({ description: "More fields may appear; the shore adds `fleet`" });

/** `GET /api/vessels`. */
export const vesselsSchema = z.array(z.looseObject({
  vesselId: z.string(),
  status: z.enum(["online", "offline", "unknown"]),
  epoch: z.string().nullable(),
  lastSeq: z.number().int(),
  lastSeenAt: z.string().nullable(),
  gaps: z.number().int(),
  deadLetters: z.number().int(),
  forgeries: z.number().int(),
  downBacklog: z.number().int().meta({
    description: "Changes made ashore for the vessel it has not acknowledged yet",
  }),
  downUnacked: z.number().int().meta({
    description: "Of those, published (PUBACKed by the broker) and awaiting the vessel's ack",
  }),
  downEpoch: z.string().nullable(),
  downPublishedSeq: z.number().int(),
  downAckedSeq: z.number().int(),
  downLastAckAt: z.string().nullable(),
}));

/** `GET /api/conflicts`. */
export const conflictsSchema = pageOf(z.looseObject({
  id: z.string(),
  entity: z.enum(ENTITIES),
  recordId: z.uuid(),
  vesselId: z.string(),
  fields: z.array(z.string()),
  vessel: z.record(z.string(), z.unknown()).nullable(),
  shore: z.record(z.string(), z.unknown()).nullable(),
  resolved: z.record(z.string(), z.unknown()).nullable(),
  at: z.string(),
}));

/** `GET /catchup`. */
export const catchupListSchema = z.strictObject({
  changes: z.array(z.looseObject({
    type: z.enum(["data_change", "catchup"]),
    entity: z.enum(ENTITIES),
    operation: z.enum(["create", "update", "delete"]),
    data: z.record(z.string(), z.unknown()),
    timestamp: z.string(),
    messageId: z.string(),
    vesselId: z.string(),
    epoch: z.string(),
    seq: z.number().int(),
  })),
  nextSince: z.number().int(),
  hasMore: z.boolean(),
});

/** `GET /catchup`'s query string. */
export const catchupQuerySchema = z.strictObject({
  since: z.string().regex(/^\d+$/).meta({ description: "A seq; changes after it (exclusive)" }),
  entity: z.enum(ENTITIES).optional(),
  limit: z.string().regex(/^\d+$/).optional().meta({
    description: `A whole number from 1 to ${MAX_CATCHUP_LIMIT}`,
  }),
});

/** `POST /catchup`. */
export const republishSchema = z.strictObject({
  published: z.number().int(),
  fromSeq: z.number().int().nullable(),
  toSeq: z.number().int().nullable(),
});
