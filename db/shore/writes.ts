/**
 * Changes made ashore for a vessel (docs/two-way-sync.md): the shore's copy of the record is merged
 * (sync/merge.ts) and the change committed in the same transaction as its row in that vessel's
 * down outbox (db/shore/down-outbox.ts), the mirror of db/vessel/records.ts on board.
 */
import type postgres from "postgres";
import type { Sql } from "../connection.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { HttpError, VersionMismatchError } from "../../core/errors.ts";
import { decodeClock, type Hlc } from "../../core/hlc.ts";
import { applyLocal, type Write } from "../../sync/merge.ts";
import { priorityOf } from "../vessel/records.ts";
import { changeSync, entityFields, type StoredSync, toRow, toSyncRecord } from "../sync-rows.ts";

/** A shore record of one vessel, as the shore's API answers it. */
export type VesselRecord = ApiRecord & { vesselId: string };

/** Writes and reads of one vessel's records ashore. */
export interface ShoreWriteStore {
  create(
    vesselId: string,
    entity: Entity,
    input: Record<string, unknown> & { id?: string },
  ): Promise<VesselRecord>;
  get(vesselId: string, entity: Entity, id: string): Promise<VesselRecord | undefined>;
  update(
    vesselId: string,
    entity: Entity,
    id: string,
    patch: Record<string, unknown>,
    ifMatch?: number,
  ): Promise<VesselRecord>;
  remove(vesselId: string, entity: Entity, id: string, ifMatch?: number): Promise<void>;
}

interface Row {
  data: ApiRecord;
  sync: StoredSync | null;
  deleted: boolean;
  version: number;
}

/**
 * Builds the shore's write store; `hlc` is the shore's clock (origin "shore"). `onCommit` is
 * called after each committed write (the shore role wakes its down publisher with it, so a
 * change, an alert above all, does not wait for the publisher's next poll).
 */
export function createShoreWrites(
  { sql, hlc, onCommit = () => {} }: { sql: Sql; hlc: Hlc; onCommit?: () => void },
): ShoreWriteStore {
  const notFound = (entity: Entity, id: string, vesselId: string) =>
    new HttpError(404, "not_found", `No ${entity} record with id "${id}" for vessel "${vesselId}"`);

  async function outbox(
    tx: postgres.TransactionSql,
    vesselId: string,
    write: Write & { entity: Entity },
    data: ApiRecord,
    sync: ReturnType<typeof changeSync>,
  ): Promise<void> {
    await tx`insert into shore_down_state (vessel_id) values (${vesselId})
      on conflict (vessel_id) do nothing`;
    await tx`
      insert into shore_down_changes
        (vessel_id, entity, record_id, operation, data, changed_at, priority, sync)
      values (${vesselId}, ${write.entity}, ${write.recordId}, ${write.op},
        ${tx.json(data as never)}, ${new Date(decodeClock(sync.clock).wall)},
        ${priorityOf(write.entity)}, ${tx.json(sync as never)})`;
  }

  // Reads, merges and writes back one live record under its row lock, so the record's clocks
  // only grow and its down changes are claimed in the order they were written.
  function modify(
    vesselId: string,
    entity: Entity,
    id: string,
    ifMatch: number | undefined,
    write: Write,
  ): Promise<ApiRecord> {
    return sql.begin(async (tx) => {
      const [row] = await tx<Row[]>`
        select data, sync, deleted_at is not null as deleted, version from shore_records
        where entity = ${entity} and vessel_id = ${vesselId} and id = ${id}
        for update`;
      if (!row || row.deleted) throw notFound(entity, id, vesselId);
      if (ifMatch !== undefined && row.version !== ifMatch) {
        throw new VersionMismatchError(id, row.version, ifMatch);
      }
      const current = toSyncRecord(entity, row, { self: "shore", recordId: id });
      const { record, change } = applyLocal(current, write, hlc);
      const image = toRow(record, {
        id,
        createdAt: row.data.createdAt,
        version: row.version + 1,
      });
      await tx`
        update shore_records set version = ${image.data.version}, data = ${
        tx.json(image.data as never)
      },
          sync = ${tx.json(image.sync as never)}, updated_at = ${image.updatedAt},
          deleted_at = ${image.deleted ? image.updatedAt : null}, applied_at = now()
        where entity = ${entity} and vessel_id = ${vesselId} and id = ${id}`;
      await outbox(tx, vesselId, { ...write, entity }, image.data, changeSync(change));
      return image.data;
    }).then((data) => {
      onCommit();
      return data as ApiRecord;
    });
  }

  return {
    async create(vesselId, entity, input) {
      const { id: given, ...values } = input;
      const id = (given ?? crypto.randomUUID()).toLowerCase();
      // A create writes every field, absent ones as null, so that each has a clock.
      const fields = Object.fromEntries(entityFields(entity).map((n) => [n, values[n] ?? null]));
      const write: Write = { entity, recordId: id, op: "create", fields };
      const data = await sql.begin(async (tx) => {
        const { record, change } = applyLocal(undefined, write, hlc);
        const at = new Date(decodeClock(change.clock).wall).toISOString();
        const image = toRow(record, { id, createdAt: at, version: 1 });
        const inserted = await tx`
          insert into shore_records
            (entity, vessel_id, id, version, data, created_at, updated_at, sync)
          values (${entity}, ${vesselId}, ${id}, 1, ${tx.json(image.data as never)}, ${at},
            ${at}, ${tx.json(image.sync as never)})
          on conflict do nothing
          returning 1`;
        if (inserted.length === 0) {
          throw new HttpError(409, "conflict", "A record with this id exists");
        }
        await outbox(tx, vesselId, { ...write, entity }, image.data, changeSync(change));
        return image.data;
      }) as ApiRecord;
      onCommit();
      return { ...data, vesselId };
    },

    async get(vesselId, entity, id) {
      const [row] = await sql<{ data: ApiRecord }[]>`
        select data from shore_records
        where entity = ${entity} and vessel_id = ${vesselId} and id = ${id}
          and deleted_at is null`;
      return row && { ...row.data, vesselId };
    },

    async update(vesselId, entity, id, patch, ifMatch) {
      const data = await modify(vesselId, entity, id, ifMatch, {
        entity,
        recordId: id,
        op: "update",
        fields: patch,
      });
      return { ...data, vesselId };
    },

    async remove(vesselId, entity, id, ifMatch) {
      await modify(vesselId, entity, id, ifMatch, { entity, recordId: id, op: "delete" });
    },
  };
}
