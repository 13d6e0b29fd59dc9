/**
 * The vessel's inbox of the shore's changes: db/shore/inbox.ts mirrored for one peer.
 * Exactly once and in seq order per epoch, each change goes through the merge
 * (sync/merge.ts) into the record, with the conflicts it met, in one transaction. No change
 * row is written: what the shore wrote it already has (no echo).
 */
import type postgres from "postgres";
import type { Sql } from "../connection.ts";
import type { ApiRecord } from "../../core/entities.ts";
import type { Hlc } from "../../core/hlc.ts";
import { applyRemote } from "../../sync/merge.ts";
import { recordConflicts } from "../conflicts.ts";
import { earlierCreatedAt, type StoredSync, toChange, toRow, toSyncRecord } from "../sync-rows.ts";
import type { ChangeSync, Envelope } from "../../core/change.ts";

type Tx = postgres.TransactionSql;

/** Inbox rows applied per step; a long backlog is applied in steps of this size. */
const APPLY_STEP = 500;

/** One change of the shore's stream to this vessel: its envelope, which must carry `sync`. */
export type DownChange =
  & Pick<Envelope, "seq" | "messageId" | "entity" | "operation" | "data">
  & { sync: ChangeSync };

/** What one batch did. */
export interface DownIngestResult {
  duplicates: number;
  applied: number;
  /** Highest contiguous seq applied in this epoch after the batch: the down ack. */
  lastSeq: number;
  waiting: boolean;
  conflicts: number;
  /** Changes whose clock ran further ahead of this vessel's than the HLC accepts. */
  clockAhead: number;
}

/**
 * Ingests changes of one epoch of the shore's stream (any order, duplicates allowed) in one
 * transaction and applies whatever has become contiguous.
 */
export function ingestDown(
  sql: Sql,
  options: { vesselId: string; epoch: string; changes: readonly DownChange[]; hlc: Hlc },
): Promise<DownIngestResult> {
  const { vesselId, epoch, changes, hlc } = options;
  const bySeq = new Map<number, DownChange>();
  for (const c of changes) if (!bySeq.has(c.seq)) bySeq.set(c.seq, c);
  const unique = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  return sql.begin(async (tx) => {
    // The position row is the stream's lock: two ingests of one epoch run one after another.
    const [position] = await tx<{ last_seq: number }[]>`
      insert into down_positions (epoch, last_received_at) values (${epoch}, now())
      on conflict (epoch) do update set last_received_at = now()
      returning last_seq`;
    let last = position!.last_seq;
    const rows = unique.filter((c) => c.seq > last).map((c) => ({
      seq: c.seq,
      message_id: c.messageId,
      entity: c.entity,
      operation: c.operation,
      envelope: c,
    }));
    const inserted = await tx<{ seq: number }[]>`
      insert into down_inbox (epoch, seq, message_id, entity, operation, envelope)
      select ${epoch}, x.seq, x.message_id, x.entity, x.operation, x.envelope
      from jsonb_to_recordset(${tx.json(rows as never)}) as x(
        seq bigint, message_id uuid, entity text, operation text, envelope jsonb)
      order by x.seq
      on conflict do nothing
      returning seq`;
    const result: DownIngestResult = {
      duplicates: changes.length - inserted.length,
      applied: 0,
      lastSeq: last,
      waiting: false,
      conflicts: 0,
      clockAhead: 0,
    };
    for (;;) {
      const next = await tx<{ seq: number; envelope: DownChange }[]>`
        select seq, envelope from down_inbox
        where epoch = ${epoch} and applied_at is null and seq > ${last}
        order by seq limit ${APPLY_STEP}`;
      let end = last;
      for (const { seq, envelope } of next) {
        if (seq !== end + 1) break;
        const applied = await applyOne(tx, vesselId, envelope, hlc);
        result.conflicts += applied.conflicts;
        if (applied.ahead) result.clockAhead++;
        end = seq;
      }
      result.waiting = next.length > end - last;
      if (end === last) break;
      await tx`update down_inbox set applied_at = now()
        where epoch = ${epoch} and seq > ${last} and seq <= ${end}`;
      result.applied += end - last;
      last = end;
      if (result.waiting || next.length < APPLY_STEP) break;
    }
    if (result.applied > 0) {
      await tx`update down_positions set last_seq = ${last},
          applied_count = applied_count + ${result.applied}, updated_at = now()
        where epoch = ${epoch}`;
    }
    result.lastSeq = last;
    return result;
  }) as Promise<DownIngestResult>;
}

interface RecordRow {
  data: ApiRecord;
  sync: StoredSync | null;
  deleted: boolean;
  version: number;
}

/** Merges one shore change into its record under the record's row lock. */
async function applyOne(
  tx: Tx,
  vesselId: string,
  envelope: DownChange,
  hlc: Hlc,
): Promise<{ conflicts: number; ahead: boolean }> {
  const { entity } = envelope;
  const change = toChange(entity, envelope, "shore");
  const id = change.recordId;
  const ahead = hlc.receive(change.clock).aheadMs > 0;
  const [row] = await tx<RecordRow[]>`
    select data, sync, deleted_at is not null as deleted, version from ${tx(entity)}
    where id = ${id} for update`;
  const current = row ? toSyncRecord(entity, row, { self: "vessel", recordId: id }) : undefined;
  const { record, conflicts, duplicate } = applyRemote(current, change, "vessel");
  if (duplicate) return { conflicts: 0, ahead };
  const incoming = String(envelope.data.createdAt);
  const createdAt = !row
    ? incoming
    : change.op === "create"
    ? earlierCreatedAt(row.data.createdAt, incoming)
    : row.data.createdAt;
  const image = toRow(record, { id, createdAt, version: (row?.version ?? 0) + 1 });
  const deletedAt = image.deleted ? image.updatedAt : null;
  if (row) {
    await tx`
      update ${tx(entity)} set version = ${image.data.version},
        data = ${tx.json(image.data as never)}, sync = ${tx.json(image.sync as never)},
        updated_at = ${image.updatedAt}, deleted_at = ${deletedAt}, created_at = ${createdAt}
      where id = ${id}`;
  } else {
    await tx`
      insert into ${tx(entity)} (id, version, data, created_at, updated_at, deleted_at, sync)
      values (${id}, ${image.data.version}, ${tx.json(image.data as never)}, ${createdAt},
        ${image.updatedAt}, ${deletedAt}, ${tx.json(image.sync as never)})`;
  }
  return { conflicts: await recordConflicts(tx, vesselId, conflicts), ahead };
}

/**
 * The vessel's down ack: the epoch of the shore's stream it last received a change of, and the
 * highest contiguous seq applied in it (null before the first down change).
 */
export async function downAckPosition(sql: Sql): Promise<{ epoch: string; seq: number } | null> {
  const [row] = await sql<{ epoch: string; seq: number }[]>`
    select epoch::text, last_seq as seq from down_positions
    order by last_received_at desc, epoch limit 1`;
  return row ?? null;
}

/**
 * Deletes down inbox rows applied more than `days` ago. Safe for exactly-once: a re-delivery of
 * a pruned seq is at or below its epoch's `last_seq`, which {@linkcode ingestDown} discards
 * without the row.
 */
export async function pruneDownInbox(sql: Sql, days: number): Promise<number> {
  const result = await sql`
    delete from down_inbox
    where applied_at is not null and applied_at < now() - make_interval(days => ${days})`;
  return result.count;
}

/** Where the vessel's inbox of the shore's stream stands (its latest epoch). */
export interface DownInboxFigures {
  /** The epoch of the shore's stream last received, or null before the first change. */
  epoch: string | null;
  /** Highest contiguous seq applied in it: what the down ack says. */
  lastSeq: number;
  /** Changes applied in it, every process. */
  applied: number;
  /** Changes received past a missing seq, waiting for it. */
  waiting: number;
  /** The first of those, or null. */
  firstWaiting: number | null;
  lastReceivedAt: string | null;
}

/** Reads the inbox's figures for the latest epoch (one partial-index count). */
export async function downInboxFigures(sql: Sql): Promise<DownInboxFigures> {
  const [row] = await sql<DownInboxFigures[]>`
    select p.epoch::text as epoch, p.last_seq as "lastSeq", p.applied_count as applied,
      w.waiting::int8 as waiting, w.first as "firstWaiting",
      to_char(p.last_received_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        as "lastReceivedAt"
    from (select * from down_positions order by last_received_at desc, epoch limit 1) p
    cross join lateral (select count(*) as waiting, min(seq) as first from down_inbox i
      where i.epoch = p.epoch and i.applied_at is null and i.seq > p.last_seq) w`;
  return row ?? {
    epoch: null,
    lastSeq: 0,
    applied: 0,
    waiting: 0,
    firstWaiting: null,
    lastReceivedAt: null,
  };
}
