/**
 * The envelope of contract §4: one JSON object per published change.
 */
import { z } from "zod";
import { ENTITIES, type Entity } from "../entities.ts";
import { VESSEL_ID_PATTERN } from "../config.ts";

/** One change on the wire. */
export interface Envelope {
  type: "data_change" | "catchup";
  entity: Entity;
  operation: "create" | "update" | "delete";
  data: Record<string, unknown>;
  timestamp: string;
  messageId: string;
  vesselId: string;
  epoch: string;
  seq: number;
  sequence?: number;
  total?: number;
}

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
  timestamp: z.iso.datetime({ offset: true }),
  messageId: z.uuid(),
  vesselId: z.string().regex(VESSEL_ID_PATTERN),
  epoch: z.uuid(),
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  sequence: z.number().int().min(0).optional(),
  total: z.number().int().min(1).optional(),
});

/** A change row as the publisher reads it from the change log. */
export interface ChangeRow {
  entity: Entity;
  operation: "create" | "update" | "delete";
  data: Record<string, unknown>;
  changed_at: Date;
  message_id: string;
  epoch: string;
  seq: number;
}

/** Builds the envelope of a change row. */
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
  if (batch) {
    envelope.sequence = batch.sequence;
    envelope.total = batch.total;
  }
  return envelope;
}

/** QoS per entity: alerts at 2, everything else at 1. */
export const qosOf = (entity: Entity): 1 | 2 => entity === "alerts" ? 2 : 1;

/**
 * The envelope of a change row as JSON text, with `data` spliced in as PostgreSQL's own jsonb
 * output. The publisher's hot path: no parse of the record and no re-serialisation, and
 * nothing that can fail (jsonb text is valid JSON; the other fields are uuids, enum values,
 * numbers and a vessel id matching VESSEL_ID_PATTERN). Parses to what {@linkcode toEnvelope}
 * builds, key for key.
 */
export function envelopeJson(
  row: Omit<ChangeRow, "data"> & { dataText: string },
  vesselId: string,
): string {
  return `{"type":"data_change","entity":"${row.entity}","operation":"${row.operation}",` +
    `"data":${row.dataText},"timestamp":"${row.changed_at.toISOString()}",` +
    `"messageId":"${row.message_id}","vesselId":"${vesselId}","epoch":"${row.epoch}",` +
    `"seq":${row.seq}}`;
}
