/**
 * The conflicts two-way sync recorded (docs/two-way-sync.md), on either role: written in the
 * transaction that applied the change which met them, listed newest first.
 */
import type postgres from "postgres";
import type { Sql } from "./connection.ts";
import type { Entity } from "../core/entities.ts";
import type { Conflict } from "../sync/merge.ts";
import type { ConflictMessage } from "../sync/protocol.ts";
import { decodeCursor, encodeCursor } from "./paging.ts";

/** A conflict as `GET /api/conflicts` shows it and `<root>/conflicts` carries it. */
export type ConflictView = ConflictMessage;

/**
 * Records conflicts of `vesselId`; one already on record (the same two changes) is left as it
 * is, so a change applied twice cannot record its conflicts twice. Returns those recorded now.
 */
export async function recordConflicts(
  sql: Sql | postgres.TransactionSql,
  vesselId: string,
  conflicts: readonly Conflict[],
): Promise<number> {
  if (conflicts.length === 0) return 0;
  const rows = conflicts.map((c) => ({
    entity: c.entity,
    record_id: c.recordId,
    fields: c.fields,
    vessel: c.vessel,
    shore: c.shore,
    resolved: c.resolved,
    vessel_clock: c.vesselClock,
    shore_clock: c.shoreClock,
  }));
  const inserted = await sql`
    insert into conflicts (entity, record_id, vessel_id, fields, vessel, shore, resolved,
      vessel_clock, shore_clock)
    select x.entity, x.record_id, ${vesselId}, x.fields, x.vessel, x.shore, x.resolved,
      x.vessel_clock, x.shore_clock
    from jsonb_to_recordset(${sql.json(rows as never)}) as x(
      entity text, record_id uuid, fields jsonb, vessel jsonb, shore jsonb, resolved jsonb,
      vessel_clock text, shore_clock text)
    on conflict do nothing
    returning 1`;
  return inserted.length;
}

/** Conflicts newest first, of one entity or all, keyset-paginated like the record lists. */
export async function listConflicts(
  sql: Sql,
  options: { entity?: Entity; limit: number; cursor?: string },
): Promise<{ items: ConflictView[]; nextCursor: string | null }> {
  const { entity, limit, cursor } = options;
  const before = cursor === undefined ? undefined : decodeCursor(cursor);
  const rows = await sql<(Omit<ConflictView, "at"> & { atDate: Date })[]>`
    select id, entity, record_id as "recordId", vessel_id as "vesselId", fields,
      vessel, shore, resolved, at as "atDate"
    from conflicts
    where true
      ${entity === undefined ? sql`` : sql`and entity = ${entity}`}
      ${before ? sql`and (at, id) < (${before[0]}, ${before[1]})` : sql``}
    order by at desc, id desc
    limit ${limit + 1}`;
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    items: shown.map(({ atDate, ...c }) => ({ ...c, at: atDate.toISOString() })),
    nextCursor: rows.length > limit && last
      ? encodeCursor(last.atDate.toISOString(), last.id)
      : null,
  };
}

/**
 * The oldest conflicts not yet published on `<root>/conflicts`, for the vessel's engine to
 * publish; {@linkcode markConflictsPublished} once the broker has them.
 */
export async function unpublishedConflicts(sql: Sql, limit: number): Promise<ConflictView[]> {
  const rows = await sql<(Omit<ConflictView, "at"> & { atDate: Date })[]>`
    select id, entity, record_id as "recordId", vessel_id as "vesselId", fields,
      vessel, shore, resolved, at as "atDate"
    from conflicts where published_at is null
    order by at, id limit ${limit}`;
  return rows.map(({ atDate, ...c }) => ({ ...c, at: atDate.toISOString() }));
}

/** Marks conflicts published; returns how many were not already. */
export async function markConflictsPublished(sql: Sql, ids: string[]): Promise<number> {
  if (ids.length === 0) return 0;
  const r = await sql`update conflicts set published_at = now()
    where id = any(${ids}::uuid[]) and published_at is null`;
  return r.count;
}

/** Conflicts recorded on this side, every process (`/health`'s `down.conflicts` on board). */
export async function countConflicts(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`select count(*)::int8 as n from conflicts`;
  return row?.n ?? 0;
}
