/**
 * Records of the five entities. Every create, update and delete writes its change row in the
 * same statement as the record (a data-modifying CTE is one atomic statement), so no record
 * is ever committed without its change, and no change without its record.
 */
import type { Sql } from "./connection.ts";
import type { ApiRecord, Entity } from "../entities.ts";
import { HttpError } from "../errors.ts";
import type { OutboxGate } from "./outbox-gate.ts";
import { GroupCommit } from "./group-commit.ts";

/** A page of records and the cursor of the next one. */
export interface Page {
  items: ApiRecord[];
  nextCursor: string | null;
}

/** Options for {@linkcode createRecordStore}. */
export interface RecordStoreOptions {
  sql: Sql;
  gate: OutboxGate;
  /** Create statements running at once before creates queue into batches (default 2). */
  createsInFlight?: number;
}

/** Alerts overtake a backlog of other entities; see the publisher. */
export const priorityOf = (entity: Entity): number => entity === "alerts" ? 0 : 1;

/** Reads and writes records; writes also write their change. */
export interface RecordStore {
  create(entity: Entity, input: Record<string, unknown> & { id?: string }): Promise<ApiRecord>;
  get(entity: Entity, id: string): Promise<ApiRecord | undefined>;
  list(entity: Entity, options: { limit: number; cursor?: string }): Promise<Page>;
  update(
    entity: Entity,
    id: string,
    patch: Record<string, unknown>,
    ifMatch?: number,
  ): Promise<ApiRecord>;
  remove(entity: Entity, id: string, ifMatch?: number): Promise<void>;
}

/** Encodes a keyset position as an opaque cursor. */
export function encodeCursor(createdAt: string, id: string): string {
  return btoa(`${createdAt}|${id}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Turns `limit + 1` rows read in (created_at, id) order into a page: the extra row only says
 * that a next page exists, and the cursor points after the last row shown.
 */
export function toPage<R extends { created_at: Date; id: string }, T>(
  rows: R[],
  limit: number,
  item: (row: R) => T,
): { items: T[]; nextCursor: string | null } {
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    items: shown.map(item),
    nextCursor: rows.length > limit && last
      ? encodeCursor(last.created_at.toISOString(), last.id)
      : null,
  };
}

const CURSOR = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\|([0-9a-f-]{36})$/;

/** Decodes a cursor from {@linkcode encodeCursor}; a malformed one is a 400. */
export function decodeCursor(cursor: string): [string, string] {
  let text = "";
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    // falls through to the error below
  }
  const m = CURSOR.exec(text);
  if (!m || Number.isNaN(Date.parse(m[1]!))) {
    throw new HttpError(400, "invalid_cursor", `Cursor "${cursor.slice(0, 100)}" is not valid`);
  }
  return [m[1]!, m[2]!];
}

/** Builds the record store over `sql`; `gate` bounds the outbox and wakes the publisher. */
export function createRecordStore(
  { sql, gate, createsInFlight }: RecordStoreOptions,
): RecordStore {
  const notFound = (entity: Entity, id: string) =>
    new HttpError(404, "not_found", `No ${entity} record with id "${id}"`);

  // Called when a conditional write touched no row: 412 if the record lives, else 404.
  async function missOrStale(entity: Entity, id: string, ifMatch?: number): Promise<never> {
    const [row] = await sql<{ version: number }[]>`
      select version from ${sql(entity)} where id = ${id} and deleted_at is null`;
    if (row && ifMatch !== undefined) {
      throw new HttpError(
        412,
        "version_mismatch",
        `Record "${id}" is at version ${row.version}, not ${ifMatch}`,
        [{ currentVersion: row.version }],
      );
    }
    throw notFound(entity, id);
  }

  // Creates under load share statements and commits; see db/group-commit.ts.
  const creates = new GroupCommit({
    sql,
    maxInFlight: createsInFlight,
    single: async ({ entity, record, priority }) => {
      await sql`
        with r as (
          insert into ${sql(entity)} (id, version, data, created_at, updated_at)
          values (${record.id}, 1, ${sql.json(record as never)}, ${record.createdAt},
            ${record.createdAt})
        )
        insert into changes (entity, record_id, operation, data, changed_at, priority)
        values (${entity}, ${record.id}, 'create', ${sql.json(record as never)},
          ${record.createdAt}, ${priority})`;
    },
  });

  return {
    async create(entity, input) {
      gate.admit();
      const { id: given, ...fields } = input;
      // PostgreSQL compares uuids case-blind; the record's JSON must carry the same canonical
      // form, or its id would differ by case from the one its change and shore key on.
      const id = (given ?? crypto.randomUUID()).toLowerCase();
      const now = new Date().toISOString();
      const record: ApiRecord = { id, version: 1, createdAt: now, updatedAt: now, ...fields };
      for (const k of Object.keys(record)) if (record[k] === null) delete record[k];
      await creates.write({ entity, record, priority: priorityOf(entity) });
      gate.added();
      return record;
    },

    async get(entity, id) {
      const [row] = await sql<{ data: ApiRecord }[]>`
        select data from ${sql(entity)} where id = ${id} and deleted_at is null`;
      return row?.data;
    },

    async list(entity, { limit, cursor }) {
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      const rows = await sql<{ data: ApiRecord; created_at: Date; id: string }[]>`
        select data, created_at, id from ${sql(entity)}
        where deleted_at is null
        ${after ? sql`and (created_at, id) > (${after[0]}, ${after[1]})` : sql``}
        order by created_at, id
        limit ${limit + 1}`;
      return toPage(rows, limit, (r) => r.data);
    },

    async update(entity, id, patch, ifMatch) {
      gate.admit();
      const now = new Date().toISOString();
      const [row] = await sql<{ data: ApiRecord }[]>`
        with r as (
          update ${sql(entity)} set
            version = version + 1,
            updated_at = ${now},
            data = jsonb_strip_nulls(data || ${sql.json(patch as never)}::jsonb ||
              jsonb_build_object('version', version + 1, 'updatedAt', ${now}::text))
          where id = ${id} and deleted_at is null
            ${ifMatch === undefined ? sql`` : sql`and version = ${ifMatch}`}
          returning data
        ), c as (
          insert into changes (entity, record_id, operation, data, changed_at, priority)
          select ${entity}, ${id}, 'update', data, ${now}, ${priorityOf(entity)} from r
        )
        select data from r`;
      if (!row) return missOrStale(entity, id, ifMatch);
      gate.added();
      return row.data;
    },

    async remove(entity, id, ifMatch) {
      gate.admit();
      const now = new Date().toISOString();
      const [row] = await sql`
        with r as (
          update ${sql(entity)} set
            version = version + 1,
            updated_at = ${now},
            deleted_at = ${now},
            data = data || jsonb_build_object('version', version + 1, 'updatedAt', ${now}::text)
          where id = ${id} and deleted_at is null
            ${ifMatch === undefined ? sql`` : sql`and version = ${ifMatch}`}
          returning data
        ), c as (
          insert into changes (entity, record_id, operation, data, changed_at, priority)
          select ${entity}, ${id}, 'delete', data, ${now}, ${priorityOf(entity)} from r
        )
        select 1 from r`;
      if (!row) return missOrStale(entity, id, ifMatch);
      gate.added();
    },
  };
}
