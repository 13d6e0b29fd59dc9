/**
 * Records of the five entities. Every create, update and delete writes its change row in the
 * same statement as the record (a data-modifying CTE is one atomic statement), so no record
 * is ever committed without its change, and no change without its record.
 */
import type { Sql } from "../connection.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { NotFoundError, VersionMismatchError } from "../../core/errors.ts";
import { decodeCursor, filterConditions, type ListFilter, toPage } from "../paging.ts";
import type { OutboxGate } from "../../core/outbox-gate.ts";
import { GroupCommit } from "./group-commit.ts";
import { decodeClock, Hlc } from "../../core/hlc.ts";
import { applyLocal, type Write } from "../../sync/merge.ts";
import { changeSync, entityFields, type StoredSync, toRow, toSyncRecord } from "../sync-rows.ts";

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
  /** The vessel's clock for two-way sync (default: one on this machine's time). */
  hlc?: Hlc;
}

/** Alerts overtake a backlog of other entities; see the publisher. */
export const priorityOf = (entity: Entity): number => entity === "alerts" ? 0 : 1;

/** Reads and writes records; writes also write their change. */
export interface RecordStore {
  create(entity: Entity, input: Record<string, unknown> & { id?: string }): Promise<ApiRecord>;
  get(entity: Entity, id: string): Promise<ApiRecord | undefined>;
  list(entity: Entity, options: { limit: number; cursor?: string } & ListFilter): Promise<Page>;
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
  { sql, gate, createsInFlight, hlc = new Hlc({ origin: "vessel" }) }: RecordStoreOptions,
): RecordStore {
  const notFound = (entity: Entity, id: string) => new NotFoundError(entity, id);

  /**
   * Reads, merges (sync/merge.ts) and writes back one live record with its change row. The
   * write is one statement, conditional on the version read (compare-and-set): a write of the
   * record committed in between makes it touch nothing, and the merge runs again over the
   * newer state. So the record's clocks only grow, and as the statement draws the change's id
   * under the record's row lock, its changes are claimed in clock order. Two round trips and
   * no transaction: a locking read in a transaction cost four, and two thirds of the update
   * rate (measured, docs/two-way-sync.md).
   */
  async function modify(
    entity: Entity,
    id: string,
    ifMatch: number | undefined,
    write: Write,
  ): Promise<ApiRecord> {
    for (;;) {
      const [row] = await sql<{ data: ApiRecord; sync: StoredSync | null; deleted: boolean }[]>`
        select data, sync, deleted_at is not null as deleted from ${sql(entity)}
        where id = ${id}`;
      if (!row || row.deleted) throw notFound(entity, id);
      const version = row.data.version;
      if (ifMatch !== undefined && version !== ifMatch) {
        throw new VersionMismatchError(id, version, ifMatch);
      }
      const current = toSyncRecord(entity, row, { self: "vessel", recordId: id });
      const { record, change } = applyLocal(current, write, hlc);
      const image = toRow(record, { id, createdAt: row.data.createdAt, version: version + 1 });
      const [written] = await sql<{ n: number }[]>`
        with r as (
          update ${sql(entity)} set version = ${image.data.version},
            data = ${sql.json(image.data as never)}, sync = ${sql.json(image.sync as never)},
            updated_at = ${image.updatedAt}, deleted_at = ${image.deleted ? image.updatedAt : null}
          where id = ${id} and version = ${version} and deleted_at is null
          returning id
        ), c as (
          insert into changes (entity, record_id, operation, data, changed_at, priority, sync)
          select ${entity}, id, ${write.op}, ${sql.json(image.data as never)},
            ${image.updatedAt}, ${priorityOf(entity)}, ${sql.json(changeSync(change) as never)}
          from r
        )
        select count(*)::int as n from r`;
      if (written!.n === 1) return image.data;
    }
  }

  // Creates under load share statements and commits; see db/vessel/group-commit.ts.
  const creates = new GroupCommit({
    sql,
    maxInFlight: createsInFlight,
    single: async ({ entity, record, priority, sync }) => {
      await sql`
        with r as (
          insert into ${sql(entity)} (id, version, data, created_at, updated_at, sync)
          values (${record.id}, 1, ${sql.json(record as never)}, ${record.createdAt},
            ${record.createdAt}, ${sql.json(sync.record as never)})
        )
        insert into changes (entity, record_id, operation, data, changed_at, priority, sync)
        values (${entity}, ${record.id}, 'create', ${sql.json(record as never)},
          ${record.createdAt}, ${priority}, ${sql.json(sync.change as never)})`;
    },
  });

  return {
    async create(entity, input) {
      gate.admit();
      const { id: given, ...fields } = input;
      // PostgreSQL compares uuids case-blind; the record's JSON must carry the same canonical
      // form, or its id would differ by case from the one its change and shore key on.
      const id = (given ?? crypto.randomUUID()).toLowerCase();
      // A create writes every field, absent ones as null, so that each has a clock.
      const values = Object.fromEntries(entityFields(entity).map((n) => [n, fields[n] ?? null]));
      const { record: merged, change } = applyLocal(
        undefined,
        { entity, recordId: id, op: "create", fields: values },
        hlc,
      );
      const at = new Date(decodeClock(change.clock).wall).toISOString();
      const { data: record, sync: stored } = toRow(merged, { id, createdAt: at, version: 1 });
      const sync = { record: stored, change: changeSync(change) };
      await creates.write({ entity, record, priority: priorityOf(entity), sync });
      gate.added();
      return record;
    },

    async get(entity, id) {
      const [row] = await sql<{ data: ApiRecord }[]>`
        select data from ${sql(entity)} where id = ${id} and deleted_at is null`;
      return row?.data;
    },

    async list(entity, { limit, cursor, ...filter }) {
      const after = cursor === undefined ? undefined : decodeCursor(cursor);
      const rows = await sql<{ data: ApiRecord; created_at: Date; id: string }[]>`
        select data, created_at, id from ${sql(entity)}
        where deleted_at is null ${filterConditions(sql, filter)}
        ${after ? sql`and (created_at, id) > (${after[0]}, ${after[1]})` : sql``}
        order by created_at, id
        limit ${limit + 1}`;
      return toPage(rows, limit, (r) => r.data);
    },

    async update(entity, id, patch, ifMatch) {
      gate.admit();
      const data = await modify(entity, id, ifMatch, {
        entity,
        recordId: id,
        op: "update",
        fields: patch,
      });
      gate.added();
      return data;
    },

    async remove(entity, id, ifMatch) {
      gate.admit();
      await modify(entity, id, ifMatch, { entity, recordId: id, op: "delete" });
      gate.added();
    },
  };
}
