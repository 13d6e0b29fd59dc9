/**
 * A change as the database holds it (the change log's row) and as it travels (the envelope of
 * the README's "MQTT"; its schema and builders are in sync/protocol.ts).
 */
import type { Entity } from "./entities.ts";

/**
 * A change's two-way sync metadata (sync/merge.ts): its clock, the newest clock of the other
 * side's changes to the record its writer had applied, and the fields it wrote (their values
 * are in the change's `data`).
 */
export interface ChangeSync {
  clock: string;
  seen: string | null;
  fields: string[];
}

/** One change row. */
export interface ChangeRow {
  entity: Entity;
  operation: "create" | "update" | "delete";
  data: Record<string, unknown>;
  changed_at: Date;
  message_id: string;
  epoch: string;
  seq: number;
  /** Null for changes written before two-way sync. */
  sync?: ChangeSync | null;
}

/** One change on the wire (the README's "MQTT"). */
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
  /** Absent from changes written before two-way sync. */
  sync?: ChangeSync;
  sequence?: number;
  total?: number;
}
