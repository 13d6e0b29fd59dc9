/**
 * The shore inbox: exactly-once, in-order apply of a vessel's changes.
 *
 * One transaction per (vessel, epoch) batch: upsert the position row first (it is the
 * vessel's lock, so transactions for one vessel from any number of shore processes run one
 * after another), insert every envelope into the inbox (its key (vessel, epoch, seq) turns a
 * re-delivery into a no-op), then apply every inbox row from last_seq + 1 on while the seqs
 * are contiguous. Rows past a gap wait in the inbox, durably, until the gap is filled: by
 * this process, after a restart, or by another shore instance.
 */
import type postgres from "postgres";
import type { Sql } from "../connection.ts";

type Tx = postgres.TransactionSql;
import type { Envelope } from "../../core/change.ts";

/** Inbox rows read per apply step; a long backlog is applied in steps of this size. */
const APPLY_STEP = 2_000;

/** What one batch did. */
export interface IngestResult {
  /** Envelopes already in the inbox (or twice in the batch): re-deliveries. */
  duplicates: number;
  /** Changes applied by this transaction (its own and waiting ones a batch unblocked). */
  applied: number;
  /** Highest contiguous seq applied in this epoch after the batch. */
  lastSeq: number;
  /** Whether rows still wait past a gap. */
  waiting: boolean;
}

interface Change {
  seq: number;
  entity: string;
  operation: string;
  data: Record<string, unknown>;
  timestamp: string;
}

/**
 * Ingests envelopes of one vessel and epoch (in any order, duplicates allowed) in one
 * transaction and applies whatever has become contiguous.
 */
export function ingest(
  sql: Sql,
  vesselId: string,
  epoch: string,
  envelopes: readonly Envelope[],
): Promise<IngestResult> {
  const bySeq = new Map<number, Envelope>();
  for (const e of envelopes) if (!bySeq.has(e.seq)) bySeq.set(e.seq, e);
  // Sorted so two transactions inserting overlapping seqs take their key locks in one order.
  const unique = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  return sql.begin(async (tx) => {
    const [position] = await tx<{ last_seq: number }[]>`
      insert into shore_positions (vessel_id, epoch, last_received_at)
      values (${vesselId}, ${epoch}, now())
      on conflict (vessel_id, epoch) do update set last_received_at = now()
      returning last_seq`;
    let last = position!.last_seq;
    // At or below last_seq is applied already: a duplicate even if its inbox row were gone.
    const rows = unique.filter((e) => e.seq > last).map((e) => ({
      seq: e.seq,
      message_id: e.messageId,
      entity: e.entity,
      operation: e.operation,
      envelope: e,
    }));
    const inserted = await tx<{ seq: number }[]>`
      insert into shore_inbox (vessel_id, epoch, seq, message_id, entity, operation, envelope)
      select ${vesselId}, ${epoch}, x.seq, x.message_id, x.entity, x.operation, x.envelope
      from jsonb_to_recordset(${tx.json(rows as never)}) as x(
        seq bigint, message_id uuid, entity text, operation text, envelope jsonb)
      order by x.seq
      on conflict do nothing
      returning seq`;
    const duplicates = envelopes.length - inserted.length;

    let applied = 0;
    let waiting = false;
    for (;;) {
      const next = await tx<{ seq: number }[]>`
        select seq from shore_inbox
        where vessel_id = ${vesselId} and epoch = ${epoch} and applied_at is null
          and seq > ${last}
        order by seq limit ${APPLY_STEP}`;
      let end = last;
      for (const { seq } of next) {
        if (seq !== end + 1) break;
        end = seq;
      }
      waiting = next.length > end - last;
      if (end === last) break;
      const changes = await changesOf(tx, vesselId, epoch, last, end, bySeq);
      await applyChanges(tx, vesselId, changes);
      await tx`
        update shore_inbox set applied_at = now()
        where vessel_id = ${vesselId} and epoch = ${epoch} and seq > ${last} and seq <= ${end}`;
      applied += end - last;
      last = end;
      if (waiting || next.length < APPLY_STEP) break;
    }
    if (applied > 0) {
      await tx`
        update shore_positions
        set last_seq = ${last}, applied_count = applied_count + ${applied}, updated_at = now()
        where vessel_id = ${vesselId} and epoch = ${epoch}`;
    }
    await tx`
      insert into shore_vessels (vessel_id, last_seen_at) values (${vesselId}, now())
      on conflict (vessel_id) do update set last_seen_at = now()`;
    return { duplicates, applied, lastSeq: last, waiting };
  });
}

/** The changes (from, to]: from the batch in memory where it has them, else the inbox. */
async function changesOf(
  tx: Tx,
  vesselId: string,
  epoch: string,
  from: number,
  to: number,
  batch: Map<number, Envelope>,
): Promise<Change[]> {
  const missing: number[] = [];
  for (let s = from + 1; s <= to; s++) if (!batch.has(s)) missing.push(s);
  const stored = missing.length === 0 ? [] : await tx<Change[]>`
    select seq, entity, operation, envelope->'data' as data, envelope->>'timestamp' as timestamp
    from shore_inbox
    where vessel_id = ${vesselId} and epoch = ${epoch} and seq = any(${missing}::bigint[])`;
  const out: Change[] = [...stored];
  for (let s = from + 1; s <= to; s++) {
    const e = batch.get(s);
    if (e) out.push(e);
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * Upserts the newest version of every record the changes touch. A version never overwrites a
 * newer one already held (an old change applied late stays a no-op); a delete keeps the row
 * as a tombstone with `deleted_at`.
 */
async function applyChanges(tx: Tx, vesselId: string, changes: Change[]): Promise<void> {
  const newest = new Map<string, Change>();
  for (const c of changes) {
    const key = `${c.entity}/${c.data.id}`;
    const held = newest.get(key);
    if (!held || Number(c.data.version) >= Number(held.data.version)) newest.set(key, c);
  }
  // In key order, so two transactions touching the same records lock them in one order.
  const keys = [...newest.keys()].sort();
  const rows = keys.map((k) => newest.get(k)!).map((c) => ({
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
 * A vessel's current epoch and its applied position. The current epoch is the one shore last
 * received a change of, by shore's clock: a vessel's clock may jump, and a straggler of an
 * older epoch only turns the ack aside until the next change of the current one.
 */
export interface AckPosition {
  vesselId: string;
  epoch: string;
  seq: number;
}

/** The ack of each vessel (all known vessels when `vesselIds` is not given). */
export function ackPositions(sql: Sql, vesselIds?: string[]): Promise<AckPosition[]> {
  return sql<AckPosition[]>`
    select distinct on (vessel_id) vessel_id as "vesselId", epoch::text as epoch, last_seq as seq
    from shore_positions
    ${vesselIds ? sql`where vessel_id = any(${vesselIds}::text[])` : sql``}
    order by vessel_id, last_received_at desc, epoch`;
}

/** A gap: rows wait in the inbox past `lastSeq`. */
export interface Gap {
  vesselId: string;
  epoch: string;
  lastSeq: number;
  firstWaiting: number;
  lastWaiting: number;
  waiting: number;
}

/** Every (vessel, epoch) not known offline with rows waiting past a gap. */
export function gaps(sql: Sql): Promise<Gap[]> {
  return sql<Gap[]>`
    select i.vessel_id as "vesselId", i.epoch::text as epoch, p.last_seq as "lastSeq",
      min(i.seq) as "firstWaiting", max(i.seq) as "lastWaiting", count(*)::int8 as waiting
    from shore_inbox i join shore_positions p using (vessel_id, epoch)
    where i.applied_at is null
      -- A request to an offline vessel would wait in its session with every later one, and
      -- all of them would be answered at once when it returns.
      and not exists (select 1 from shore_vessels v
        where v.vessel_id = i.vessel_id and v.status = 'offline')
    group by i.vessel_id, i.epoch, p.last_seq`;
}

/**
 * Gaps at the tail: vessels online whose status announced a last seq that shore has not
 * applied yet (nothing past it may have arrived, so the inbox shows no gap). `firstWaiting`
 * is the seq after the announced one.
 */
export function reportedGaps(sql: Sql): Promise<Gap[]> {
  return sql<Gap[]>`
    select v.vessel_id as "vesselId", v.reported_epoch::text as epoch,
      coalesce(p.last_seq, 0)::int8 as "lastSeq", v.reported_seq + 1 as "firstWaiting",
      v.reported_seq as "lastWaiting", 0::int8 as waiting
    from shore_vessels v
    left join shore_positions p on p.vessel_id = v.vessel_id and p.epoch = v.reported_epoch
    where v.status = 'online' and v.reported_seq > coalesce(p.last_seq, 0)`;
}

/**
 * Deletes inbox rows applied more than `days` ago. Safe for exactly-once: a re-delivery of a
 * pruned seq is at or below `last_seq`, which {@linkcode ingest} discards without the row.
 */
export async function pruneInbox(sql: Sql, days: number): Promise<number> {
  const result = await sql`
    delete from shore_inbox
    where applied_at is not null and applied_at < now() - make_interval(days => ${days})`;
  return result.count;
}
