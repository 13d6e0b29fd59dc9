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
import { applyRemote, type Conflict, type SyncRecord } from "../../sync/merge.ts";
import { recordConflicts } from "../conflicts.ts";
import {
  earlierCreatedAt,
  type StoredSync,
  toChange,
  toSyncRecord,
  upsertRow,
} from "../sync-rows.ts";
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
      const step: DownChange[] = [];
      for (const { seq, envelope } of next) {
        if (seq !== end + 1) break;
        step.push(envelope);
        end = seq;
      }
      result.waiting = next.length > end - last;
      if (end === last) break;
      const applied = await applyStep(tx, vesselId, step, hlc);
      result.conflicts += applied.conflicts;
      result.clockAhead += applied.ahead;
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
  id: string;
  data: ApiRecord;
  sync: StoredSync | null;
  deleted: boolean;
  version: number;
}

/**
 * Merges a step of the shore's changes (contiguous, in seq order) into their records: per
 * entity one read under the records' row locks and one write, then one conflicts insert, as
 * db/shore/inbox.ts does for the up direction; a record changed several times in the step is
 * merged in seq order in memory. Round trips per step, not per change: a per-change read and
 * write made the down drain several times slower than the up drain (docs/two-way-sync.md).
 */
async function applyStep(
  tx: Tx,
  vesselId: string,
  envelopes: readonly DownChange[],
  hlc: Hlc,
): Promise<{ conflicts: number; ahead: number }> {
  let ahead = 0;
  const changes = envelopes.map((e) => {
    const change = toChange(e.entity, e, "shore");
    if (hlc.receive(change.clock).aheadMs > 0) ahead++;
    return { envelope: e, change };
  });
  const conflicts: Conflict[] = [];
  for (const entity of [...new Set(changes.map((c) => c.envelope.entity))].sort()) {
    const mine = changes.filter((c) => c.envelope.entity === entity);
    const ids = [...new Set(mine.map((c) => c.change.recordId))].sort();
    // Locked in id order, so two transactions touching the same records lock them in one order.
    const held = await tx<RecordRow[]>`
      select id::text as id, data, sync, deleted_at is not null as deleted, version
      from ${tx(entity)} where id = any(${ids}::uuid[]) order by id for update`;
    const state = new Map<string, { record?: SyncRecord; version: number; createdAt?: string }>();
    for (const r of held) {
      state.set(r.id, {
        record: toSyncRecord(entity, r, { self: "vessel", recordId: r.id }),
        version: r.version,
        createdAt: r.data.createdAt,
      });
    }
    const touched = new Set<string>();
    for (const { envelope, change } of mine) {
      const id = change.recordId;
      const current = state.get(id) ?? { version: 0 };
      const result = applyRemote(current.record, change, "vessel");
      if (result.duplicate) continue;
      const incoming = String(envelope.data.createdAt);
      state.set(id, {
        record: result.record,
        version: current.version + 1,
        // A record new on board takes its creation time from the change that brings it; both
        // sides created it (the same id, concurrently): the earlier creation time stays.
        createdAt: current.createdAt === undefined
          ? incoming
          : change.op === "create"
          ? earlierCreatedAt(current.createdAt, incoming)
          : current.createdAt,
      });
      touched.add(id);
      conflicts.push(...result.conflicts);
    }
    const rows = [...touched].sort().map((id) => {
      const s = state.get(id)!;
      return upsertRow(s.record!, { id, createdAt: s.createdAt!, version: s.version });
    });
    if (rows.length === 0) continue;
    await tx`
      insert into ${tx(entity)} (id, version, data, created_at, updated_at, deleted_at, sync)
      select x.id, x.version, x.data, x.created_at, x.updated_at, x.deleted_at, x.sync
      from jsonb_to_recordset(${tx.json(rows as never)}) as x(
        id uuid, version integer, data jsonb, created_at timestamptz, updated_at timestamptz,
        deleted_at timestamptz, sync jsonb)
      on conflict (id) do update set
        version = excluded.version, data = excluded.data, updated_at = excluded.updated_at,
        deleted_at = excluded.deleted_at, sync = excluded.sync, created_at = excluded.created_at`;
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
