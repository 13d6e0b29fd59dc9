/**
 * Between stored records and the merge of sync/merge.ts, for both roles: a row keeps its values
 * in `data` (the record as the API returns it) and the merge's bookkeeping in `sync`; a change
 * row keeps the written record in `data` and the change's clock, `seen` and written fields in
 * `sync`. One conversion each way, so both roles store and read the merge alike.
 */
import { type Clock, decodeClock, encodeClock, type Origin } from "../core/hlc.ts";
import type { ChangeSync } from "../core/change.ts";
import type { ApiRecord, Entity } from "../core/entities.ts";
import { createSchemas } from "../core/entities.ts";
import { type Change, latestClock, type RecordState, type SyncRecord } from "../sync/merge.ts";

export type { ChangeSync };

/** A pending change as a record row keeps it: the change without what the row already says. */
interface StoredPending {
  op: Change["op"];
  clock: Clock;
  seen: Clock | null;
  fields: Record<string, unknown>;
}

/** A record row's `sync` column. */
export interface StoredSync {
  fields: Record<string, Clock>;
  deleted: Clock | null;
  seen: Clock | null;
  pending: StoredPending[];
}

/** The entity fields of `entity` (what a create writes), in schema order. */
export function entityFields(entity: Entity): string[] {
  const schema = createSchemas[entity] as unknown as { shape: Record<string, unknown> };
  return Object.keys(schema.shape).filter((k) => k !== "id");
}

/** The clock standing in for a record written before two-way sync: its last update's time. */
function legacyClock(updatedAt: string, origin: Origin): Clock {
  return encodeClock({ wall: Math.max(0, Date.parse(updatedAt) || 0), counter: 0, origin });
}

/** A stored record as the merge sees it. */
export function toSyncRecord(
  entity: Entity,
  row: { data: ApiRecord; sync: StoredSync | null; deleted: boolean },
  options: { self: Origin; recordId: string },
): SyncRecord {
  const { data, sync } = row;
  const names = entityFields(entity);
  if (sync === null) {
    // Written by the vessel before two-way sync: every field it holds at its last update.
    const at = legacyClock(data.updatedAt, "vessel");
    const fields: RecordState["fields"] = {};
    for (const n of names) if (n in data) fields[n] = { value: data[n], clock: at };
    return {
      state: { fields, deleted: row.deleted ? at : null },
      seen: options.self === "shore" ? at : null,
      pending: [],
    };
  }
  const fields: RecordState["fields"] = {};
  for (const [n, c] of Object.entries(sync.fields)) {
    fields[n] = { value: data[n] ?? null, clock: c };
  }
  const origin = options.self;
  return {
    state: { fields, deleted: sync.deleted },
    seen: sync.seen,
    pending: sync.pending.map((p) => ({
      entity,
      recordId: options.recordId,
      origin,
      op: p.op,
      clock: p.clock,
      seen: p.seen,
      fields: p.fields,
    })),
  };
}

/** What a record row stores after a merge step. */
export interface RowImage {
  data: ApiRecord;
  sync: StoredSync;
  deleted: boolean;
  updatedAt: string;
}

/**
 * The row image of a merged record: `data` holds the record's values (nulls left out, as the
 * API returns records), `version` counts the changes the record has taken in on this side
 * (the same count on both sides once both have the same changes), `updatedAt` is the wall
 * time of its newest clock (the same on both sides too).
 */
export function toRow(
  record: SyncRecord,
  base: { id: string; createdAt: string; version: number },
): RowImage {
  const values: Record<string, unknown> = {};
  for (const [n, reg] of Object.entries(record.state.fields)) {
    if (reg.value !== null && reg.value !== undefined) values[n] = reg.value;
  }
  const latest = latestClock(record.state);
  const updatedAt = latest === null
    ? base.createdAt
    : new Date(decodeClock(latest).wall).toISOString();
  const data: ApiRecord = {
    id: base.id,
    version: base.version,
    createdAt: base.createdAt,
    updatedAt,
    ...values,
  };
  return {
    data,
    deleted: record.state.deleted !== null,
    updatedAt,
    sync: {
      fields: Object.fromEntries(
        Object.entries(record.state.fields).map(([n, reg]) => [n, reg.clock]),
      ),
      deleted: record.state.deleted,
      seen: record.seen,
      pending: record.pending.map(({ op, clock, seen, fields }) => ({ op, clock, seen, fields })),
    },
  };
}

/**
 * A merged record as both inboxes' batched upserts take it (the columns of their
 * `jsonb_to_recordset`): db/shore/apply.ts and db/vessel/down-inbox.ts.
 */
export function upsertRow(
  record: SyncRecord,
  base: { id: string; createdAt: string; version: number },
) {
  const image = toRow(record, base);
  return {
    id: base.id,
    version: base.version,
    data: image.data,
    created_at: base.createdAt,
    updated_at: image.updatedAt,
    deleted_at: image.deleted ? image.updatedAt : null,
    sync: image.sync,
  };
}

/** A change's stored metadata. */
export function changeSync(change: Change): ChangeSync {
  return { clock: change.clock, seen: change.seen, fields: Object.keys(change.fields) };
}

/** The change a stored or received change row stands for: values from its `data`. */
export function toChange(
  entity: Entity,
  row: { operation: Change["op"]; data: Record<string, unknown>; sync: ChangeSync },
  origin: Origin,
): Change {
  const fields: Record<string, unknown> = {};
  if (row.operation !== "delete") {
    for (const n of row.sync.fields) {
      fields[n] = row.data[n] ?? null;
    }
  }
  return {
    entity,
    recordId: String(row.data.id),
    origin,
    op: row.operation,
    clock: row.sync.clock,
    seen: row.sync.seen,
    fields,
  };
}

/**
 * The creation time a record keeps when both sides created it (the same id, concurrently):
 * the earlier of the two, on both sides alike. Both are `toISOString` texts, so the string
 * order is the time order.
 */
export function earlierCreatedAt(held: string, incoming: string): string {
  return incoming < held ? incoming : held;
}
