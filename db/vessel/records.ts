/**
 * Records of the five entities. Every create, update and delete writes its change row in the
 * same statement as the record (a data-modifying CTE is one atomic statement), so no record
 * is ever committed without its change, and no change without its record.
 */
import type { Sql } from "../connection.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { NotFoundError, VersionMismatchError } from "../../core/errors.ts";
import { decodeCursor, toPage } from "../paging.ts";
import type { OutboxGate } from "../../core/outbox-gate.ts";
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

/** Builds the record store over `sql`; `gate` bounds the outbox and wakes the publisher. */
export function createRecordStore(
  { sql, gate, createsInFlight }: RecordStoreOptions,
): RecordStore {
  const notFound = (entity: Entity, id: string) => new NotFoundError(entity, id);

  // Called when a conditional write touched no row: 412 if the record lives, else 404.
  async function missOrStale(entity: Entity, id: string, ifMatch?: number): Promise<never> {
    const [row] = await sql<{ version: number }[]>`
      select version from ${sql(entity)} where id = ${id} and deleted_at is null`;
    if (row && ifMatch !== undefined) {
      throw new VersionMismatchError(id, row.version, ifMatch);
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
