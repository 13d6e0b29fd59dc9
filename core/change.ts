/**
 * A change as the database holds it (the change log's row) and as it travels (the envelope of
 * the README's "MQTT"; its schema and builders are in sync/protocol.ts).
 */
import type { Entity } from "./entities.ts";

/** One change row. */
export interface ChangeRow {
  entity: Entity;
  operation: "create" | "update" | "delete";
  data: Record<string, unknown>;
  changed_at: Date;
  message_id: string;
  epoch: string;
  seq: number;
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
  sequence?: number;
  total?: number;
}
