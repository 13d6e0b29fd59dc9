/**
 * Applying a vessel's changes to `shore_records`, inside the ingest transaction of
 * db/shore/inbox.ts: the pre-two-way upsert (a version never overwrites a newer one) and the
 * merge (sync/merge.ts) of changes that carry a clock, with the conflicts they met.
 */
import type postgres from "postgres";
import type { ChangeSync } from "../../core/change.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { applyRemote, type Conflict, type SyncRecord } from "../../sync/merge.ts";
import { recordConflicts } from "../conflicts.ts";
import {
  earlierCreatedAt,
  type StoredSync,
  toChange,
  toSyncRecord,
  upsertRow,
} from "../sync-rows.ts";

type Tx = postgres.TransactionSql;

/** One change of a vessel's stream as the inbox hands it over (from the batch or a stored row). */
export interface InboxChange {
  seq: number;
  entity: string;
  operation: string;
  data: Record<string, unknown>;
  timestamp: string;
  messageId: string;
  /** Two-way sync metadata; absent from changes of a vessel older than two-way sync. */
  sync?: ChangeSync | null;
}

/**
 * Upserts the newest version of every record the changes touch. A version never overwrites a
 * newer one already held (an old change applied late stays a no-op); a delete keeps the row
 * as a tombstone with `deleted_at`.
 */
export async function applyChanges(tx: Tx, vesselId: string, all: InboxChange[]): Promise<number> {
  // A vessel's changes written before two-way sync precede its first change with a clock.
  const changes = all.filter((c) => !c.sync);
  const newest = new Map<string, InboxChange>();
  for (const c of changes) {
    const key = `${c.entity}/${c.data.id}`;
    const held = newest.get(key);
    if (!held || Number(c.data.version) >= Number(held.data.version)) newest.set(key, c);
  }
  // In key order, so two transactions touching the same records lock them in one order.
  const keys = [...newest.keys()].sort();
  if (keys.length > 0) await upsertNewest(tx, vesselId, keys.map((k) => newest.get(k)!));
  return await mergeChanges(tx, vesselId, all);
}

/** The pre-two-way rule: a version never overwrites a newer one already held. */
async function upsertNewest(tx: Tx, vesselId: string, newest: InboxChange[]): Promise<void> {
  const rows = newest.map((c) => ({
    entity: c.entity,
    id: c.data.id,
    version: c.data.version,
    data: c.data,
    created_at: c.data.createdAt,
    updated_at: c.data.updatedAt,
    deleted_at: c.operation === "delete" ? c.timestamp : null,
  }));
  await tx`
    insert into shore_records
      (entity, vessel_id, id, version, data, created_at, updated_at, deleted_at)
    select x.entity, ${vesselId}, x.id, x.version, x.data, x.created_at, x.updated_at,
      x.deleted_at
    from jsonb_to_recordset(${tx.json(rows as never)}) as x(
      entity text, id uuid, version integer, data jsonb, created_at timestamptz,
      updated_at timestamptz, deleted_at timestamptz)
    on conflict (entity, vessel_id, id) do update set
      version = excluded.version, data = excluded.data, updated_at = excluded.updated_at,
      deleted_at = excluded.deleted_at, applied_at = now()
    where shore_records.version < excluded.version`;
}

/**
 * Merges vessel changes into the shore's copies (sync/merge.ts), in seq order, with the
 * conflicts they met: the mirror of db/vessel/down-inbox.ts, batched (one read under row locks,
 * one write, one conflicts insert) because a fleet's whole stream passes here. Never writes a
 * down change: what the vessel wrote it already has (no echo).
 */
async function mergeChanges(tx: Tx, vesselId: string, changes: InboxChange[]): Promise<number> {
  const withSync = changes.filter((c) => c.sync);
  const createdAts = withSync.map((c) => String(c.data.createdAt));
  const merged = withSync.map((c) =>
    toChange(c.entity as Entity, {
      operation: c.operation as "create" | "update" | "delete",
      data: c.data,
      sync: c.sync!,
    }, "vessel")
  );
  if (merged.length === 0) return 0;
  const createdOf = new Map(merged.map((m, i) => [m, createdAts[i]!]));
  const keyOf = (entity: string, id: string) => `${entity}/${id}`;
  const createdAtOf = new Map<string, string>();
  for (const c of changes) {
    const key = keyOf(c.entity, String(c.data.id));
    if (!createdAtOf.has(key)) createdAtOf.set(key, String(c.data.createdAt));
  }
  const wanted = [...new Set(merged.map((c) => keyOf(c.entity, c.recordId)))].sort()
    .map((key) => ({ entity: key.split("/")[0], id: key.split("/")[1] }));
  // Locked in key order, so two transactions touching the same records lock them in one order.
  const held = await tx<(StoredRow & { entity: string; id: string })[]>`
    select r.entity, r.id::text as id, r.data, r.sync, r.deleted_at is not null as deleted,
      r.version
    from shore_records r
    join jsonb_to_recordset(${tx.json(wanted as never)}) as x(entity text, id uuid)
      on r.entity = x.entity and r.id = x.id
    where r.vessel_id = ${vesselId}
    order by r.entity, r.id
    for update of r`;
  const state = new Map<
    string,
    { record?: SyncRecord; version: number; createdAt: string }
  >();
  for (const r of held) {
    state.set(keyOf(r.entity, r.id), {
      record: toSyncRecord(r.entity as Entity, r, { self: "shore", recordId: r.id }),
      version: r.version,
      createdAt: r.data.createdAt,
    });
  }
  const conflicts: Conflict[] = [];
  const touched = new Set<string>();
  for (const change of merged) {
    const key = keyOf(change.entity, change.recordId);
    // A record new to shore takes its creation time from the change that brings it.
    const current = state.get(key) ?? { version: 0, createdAt: createdAtOf.get(key)! };
    const result = applyRemote(current.record, change, "shore");
    state.set(key, {
      ...current,
      // Both sides created it (the same id, concurrently): the earlier creation time stays.
      createdAt: change.op === "create" && current.record
        ? earlierCreatedAt(current.createdAt, createdOf.get(change)!)
        : current.createdAt,
      record: result.record,
      version: current.version + (result.duplicate ? 0 : 1),
    });
    if (!result.duplicate) touched.add(key);
    conflicts.push(...result.conflicts);
  }
  const rows = [...touched].sort().map((key) => {
    const s = state.get(key)!;
    const [entity, id] = key.split("/") as [string, string];
    return { entity, ...upsertRow(s.record!, { id, createdAt: s.createdAt, version: s.version }) };
  });
  if (rows.length > 0) {
    await tx`
      insert into shore_records
        (entity, vessel_id, id, version, data, created_at, updated_at, deleted_at, sync)
      select x.entity, ${vesselId}, x.id, x.version, x.data, x.created_at, x.updated_at,
        x.deleted_at, x.sync
      from jsonb_to_recordset(${tx.json(rows as never)}) as x(
        entity text, id uuid, version integer, data jsonb, created_at timestamptz,
        updated_at timestamptz, deleted_at timestamptz, sync jsonb)
      on conflict (entity, vessel_id, id) do update set
        version = excluded.version, data = excluded.data, updated_at = excluded.updated_at,
        deleted_at = excluded.deleted_at, sync = excluded.sync, created_at = excluded.created_at,
        applied_at = now()`;
  }
  return await recordConflicts(tx, vesselId, conflicts);
}

interface StoredRow {
  data: ApiRecord;
  sync: StoredSync | null;
  deleted: boolean;
  version: number;
}
