/**
 * The wire protocol, once: every topic, and every message's schema beside its builder. Both
 * ends import from here (the vessel builds what the shore parses and the other way round), so
 * no message is defined twice. The README's "MQTT" section is the external promise kept here.
 */
import { z } from "zod";
import { ENTITIES, type Entity } from "../core/entities.ts";
import { dateTime } from "../core/datetime.ts";
import type { ChangeRow, Envelope } from "../core/change.ts";
import { isClock } from "../core/hlc.ts";

export type { ChangeRow, Envelope };
import { VESSEL_ID_PATTERN } from "../config.ts";

// ---- topics --------------------------------------------------------------------------------

/** Every topic of one vessel; the root is `vessel/<VESSEL_ID>/sync`. */
export function topicsOf(vesselId: string) {
  const root = `vessel/${vesselId}/sync`;
  return {
    root,
    data: (entity: Entity) => `${root}/${entity}`,
    /** LINK_MODE=frames: live, re-sent and caught-up changes, in frames (sync/frame.ts). */
    frames: `${root}/frames`,
    catchup: (entity: Entity) => `${root}/catchup/${entity}`,
    status: `${root}/system/status`,
    catchupRequest: `${root}/catchup/request`,
    ack: `${root}/ack`,
    /** Root of the shore's stream to this vessel (docs/two-way-sync.md). */
    down: `vessel/${vesselId}/down`,
    /** LINK_MODE=frames: the shore's changes for this vessel, in frames. */
    downFrames: `vessel/${vesselId}/down/frames`,
    /** LINK_MODE=messages: one envelope per shore change. */
    downData: (entity: Entity) => `vessel/${vesselId}/down/${entity}`,
    /** Retained, vessel → shore: the vessel applied the shore's stream up to here. */
    downAck: `vessel/${vesselId}/down/ack`,
    /** Vessel → shore: a gap in the shore's stream. */
    downCatchupRequest: `vessel/${vesselId}/down/catchup/request`,
    conflicts: `${root}/conflicts`,
  };
}

/** What the shore subscribes to for the vessels' down acks. */
export const DOWN_ACK_FILTER = "vessel/+/down/ack";

/** What the shore subscribes to for the vessels' down catch-up requests. */
export const DOWN_CATCHUP_FILTER = "vessel/+/down/catchup/request";

/** The vessel id a `vessel/<id>/down/ack` topic names, or undefined for any other topic. */
export function downAckVessel(topic: string): string | undefined {
  const m = /^vessel\/([^/]+)\/down\/ack$/.exec(topic);
  return m && VESSEL_ID_PATTERN.test(m[1]!) ? m[1] : undefined;
}

/** The vessel id a `vessel/<id>/down/catchup/request` topic names, or undefined. */
export function downCatchupVessel(topic: string): string | undefined {
  const m = /^vessel\/([^/]+)\/down\/catchup\/request$/.exec(topic);
  return m && VESSEL_ID_PATTERN.test(m[1]!) ? m[1] : undefined;
}

/** What the shore subscribes to: every vessel's sync tree. */
export const FLEET_FILTER = "vessel/+/sync/#";

/** Every vessel's retained status (a shared subscription receives no retained messages). */
export const FLEET_STATUS_FILTER = "vessel/+/sync/system/status";

/** A shared subscription of `filter` for the group `group`. */
export const sharedFilter = (group: string, filter: string) => `$share/${group}/${filter}`;

/**
 * Checks an MQTT topic filter: `+` only as a whole level, `#` only as the whole last level,
 * no empty filter, no NUL. Throws an Error naming the fault.
 */
export function validateFilter(filter: string): void {
  if (filter.length === 0 || filter.length > 65_535) {
    throw new Error("Topic filter is empty or too long");
  }
  if (filter.includes("\u0000")) throw new Error("Topic filter holds NUL");
  const levels = filter.split("/");
  levels.forEach((level, i) => {
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      throw new Error(`"#" must be the whole last level in "${filter}"`);
    }
    if (level.includes("+") && level !== "+") {
      throw new Error(`"+" must be a whole level in "${filter}"`);
    }
  });
}

/** A topic name (what is published to) holds no wildcard. */
export function validateTopicName(topic: string): void {
  if (topic.length === 0 || /[+#]/.test(topic) || topic.includes("\u0000")) {
    throw new Error(`Topic "${topic}" must be non-empty and hold no wildcard or NUL`);
  }
}

// ---- parsing a peer's payload ----------------------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Parses UTF-8 JSON and checks it against `schema`; a peer's bad payload is `undefined`. */
export function parsePayload<T>(payload: Uint8Array, schema: z.ZodType<T>): T | undefined {
  const json = parseJson(payload);
  if (!json.ok) return undefined;
  const r = schema.safeParse(json.value);
  return r.success ? r.data : undefined;
}

/** Parses UTF-8 JSON without throwing. */
export function parseJson(payload: Uint8Array): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: JSON.parse(utf8.decode(payload)) };
  } catch {
    return { ok: false };
  }
}

const seqSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

// ---- the envelope: one change ------------------------------------------------------------------

const clockSchema = z.string().refine(isClock, "Must be a clock");

/** A change's two-way sync metadata (core/change.ts's ChangeSync), as every change carries it. */
export const changeSyncSchema = z.strictObject({
  clock: clockSchema,
  seen: clockSchema.nullable(),
  fields: z.array(z.string().max(100)).max(100),
});

/**
 * The strict schema a shore checks every incoming envelope against (`data` is checked
 * against the entity's record schema separately, once `entity` is known).
 */
export const envelopeSchema = z.strictObject({
  type: z.enum(["data_change", "catchup"]),
  entity: z.enum(ENTITIES),
  operation: z.enum(["create", "update", "delete"]),
  // Not z.record: it copies keys by assignment, so an own "__proto__" key would become the
  // copy's prototype and vanish before the strict record schema could refuse it.
  data: z.custom<Record<string, unknown>>(
    (v) => typeof v === "object" && v !== null && !Array.isArray(v),
    "Must be an object",
  ),
  timestamp: dateTime(),
  messageId: z.uuid(),
  vesselId: z.string().regex(VESSEL_ID_PATTERN),
  epoch: z.uuid(),
  seq: seqSchema.min(1),
  sync: changeSyncSchema.optional(),
  sequence: z.number().int().min(0).optional(),
  total: z.number().int().min(1).optional(),
});

/**
 * Builds the envelope of a change row. The publisher's hot path has the same envelope built
 * by PostgreSQL instead (`envelopeSql` in db/vessel/outbox.ts; tests/db/vessel/outbox.test.ts
 * holds the two equal).
 */
export function toEnvelope(
  row: ChangeRow,
  vesselId: string,
  batch?: { type: "catchup"; sequence: number; total: number },
): Envelope {
  const envelope: Envelope = {
    type: batch ? "catchup" : "data_change",
    entity: row.entity,
    operation: row.operation,
    data: row.data,
    timestamp: row.changed_at.toISOString(),
    messageId: row.message_id,
    vesselId,
    epoch: row.epoch,
    seq: row.seq,
  };
  if (row.sync) envelope.sync = row.sync;
  if (batch) {
    envelope.sequence = batch.sequence;
    envelope.total = batch.total;
  }
  return envelope;
}

/** QoS per entity: alerts at 2, everything else at 1. */
export const qosOf = (entity: Entity): 1 | 2 => entity === "alerts" ? 2 : 1;

// ---- the ack: shore → vessel, retained ---------------------------------------------------------

/** `{"epoch", "seq"}`: shore has durably applied every change of `epoch` up to `seq`. */
export const ackSchema = z.object({ epoch: z.uuid(), seq: seqSchema });

/** An ack as its schema parses it. */
export type Ack = z.infer<typeof ackSchema>;

/** The ack's payload. */
export const ackPayload = (ack: Ack): string => JSON.stringify({ epoch: ack.epoch, seq: ack.seq });

// ---- the status: vessel → shore, retained ------------------------------------------------------

/**
 * The status payload. Only `status` is required of a peer: the vessel's own adds the epoch
 * and last seq handed out, hints that a bad value does not invalidate (they are dropped).
 */
export const statusSchema = z.looseObject({
  status: z.enum(["online", "offline"]),
  timestamp: dateTime().optional(),
  epoch: z.uuid().optional().catch(undefined),
  lastSeq: seqSchema.optional().catch(undefined),
});

/** What a vessel states on its status topic. */
export interface Status {
  status: "online" | "offline";
  vesselId: string;
  version: string;
  timestamp?: string;
  epoch?: string;
  lastSeq?: number;
}

/** The status payload (also the Last Will's, which carries no timestamp). */
export const statusPayload = (s: Status): string => JSON.stringify(s);

// ---- the catch-up request: shore → vessel, and `POST /catchup` ---------------------------------

/** Largest batch one catch-up request may ask for. */
export const MAX_CATCHUP_LIMIT = 10_000;

/** The catch-up request: `since` is a seq (exclusive) or an ISO 8601 time. */
export const catchupRequestSchema = z.strictObject({
  since: z.union([seqSchema, dateTime()]).meta({
    description: "A seq (a whole number; exclusive) or an ISO 8601 date-time with a zone",
  }),
  entity: z.enum(ENTITIES).optional(),
  limit: z.number().int().min(1).max(MAX_CATCHUP_LIMIT).optional(),
});

/** A catch-up request as its schema parses it. */
export type CatchupRequest = z.infer<typeof catchupRequestSchema>;

/** The catch-up request's payload. */
export const catchupRequestPayload = (r: CatchupRequest): string => JSON.stringify(r);

/**
 * The down catch-up request, vessel → shore on `vessel/<id>/down/catchup/request`: the up
 * direction's request, plus the epoch of the shore's stream that `since` counts in (the
 * vessel's latest down position). A shore whose stream for the vessel is in another epoch
 * answers with its current epoch from the first seq.
 */
export const downCatchupRequestSchema = catchupRequestSchema.extend({
  epoch: z.uuid().optional(),
});

/** A down catch-up request as its schema parses it. */
export type DownCatchupRequest = z.infer<typeof downCatchupRequestSchema>;

/** The down catch-up request's payload. */
export const downCatchupRequestPayload = (r: DownCatchupRequest): string => JSON.stringify(r);

// ---- a conflict: vessel → shore on <root>/conflicts, and GET /api/conflicts --------------------

const fieldValues = z.record(z.string().max(100), z.unknown()).nullable();

/**
 * A conflict two-way sync recorded (docs/two-way-sync.md): both sides changed `fields` of one
 * record concurrently, or one deleted what the other changed. `vessel`/`shore` hold each
 * side's values (null for the side that deleted), `resolved` the winning ones (null when the
 * delete won).
 */
export const conflictSchema = z.strictObject({
  id: z.uuid(),
  entity: z.enum(ENTITIES),
  recordId: z.uuid(),
  vesselId: z.string().regex(VESSEL_ID_PATTERN),
  fields: z.array(z.string().max(100)).min(1).max(100),
  vessel: fieldValues,
  shore: fieldValues,
  resolved: fieldValues,
  at: z.iso.datetime({ offset: true }),
});

/** A conflict as its schema parses it. */
export type ConflictMessage = z.infer<typeof conflictSchema>;

/** The conflict's payload: one JSON object per message. */
export const conflictPayload = (c: ConflictMessage): string =>
  JSON.stringify({
    id: c.id,
    entity: c.entity,
    recordId: c.recordId,
    vesselId: c.vesselId,
    fields: c.fields,
    vessel: c.vessel,
    shore: c.shore,
    resolved: c.resolved,
    at: c.at,
  });
