/**
 * Read-side figures of the change log for `/health` and `/metrics`.
 */
import type { Sql } from "./connection.ts";
import type { ChangeRow } from "../sync/envelope.ts";

/** Where the change log stands. */
export interface OutboxStats {
  epoch: string;
  queued: number;
  unacked: number;
  oldestUnackedAgeSeconds: number | null;
  lastPublishedSeq: number;
  lastAckedSeq: number;
}

/** Reads the outbox figures; every count uses a partial index. */
export async function outboxStats(sql: Sql): Promise<OutboxStats> {
  const [row] = await sql<OutboxStats[]>`
    select
      s.epoch::text as epoch,
      (select count(*) from changes where published_at is null)::int8 as queued,
      (select count(*) from changes where acked_at is null and published_at is not null)::int8
        as unacked,
      (select extract(epoch from now() - changed_at)::float8 from changes
        where acked_at is null order by id limit 1) as "oldestUnackedAgeSeconds",
      coalesce((select max(seq) from changes where epoch = s.epoch
        and published_at is not null), 0)::int8 as "lastPublishedSeq",
      coalesce((select max(seq) from changes where epoch = s.epoch
        and acked_at is not null), 0)::int8 as "lastAckedSeq"
    from vessel_state s`;
  if (!row) throw new Error("vessel_state holds no row: the migrations did not run");
  return row;
}

/** Counts the changes not yet acknowledged, to seed the outbox bound. */
export async function countPending(sql: Sql): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int8 as n from changes where acked_at is null`;
  return row?.n ?? 0;
}

/** A change row as the publisher reads it: its id (to mark it) and `data` as JSON text. */
export interface OutboxRow extends Omit<ChangeRow, "data"> {
  id: number;
  /** The record as PostgreSQL's jsonb output: valid JSON text, spliced into the envelope. */
  dataText: string;
}

const columns = (t: string) =>
  `${t}id, ${t}entity, ${t}operation, ${t}data::text as "dataText", ${t}changed_at,
   ${t}message_id, ${t}epoch::text as epoch, ${t}seq`;

/**
 * Claims up to `limit` changes that have no seq yet, alerts first then by id, and gives them
 * the next seqs of the current epoch. The transaction holds the vessel_state row lock, so
 * claims never interleave: seq is gapless and follows publish order. "Every row without a seq"
 * (not "rows after the last id") means a transaction that commits late is claimed next time,
 * never skipped.
 */
export function claimChanges(sql: Sql, limit: number): Promise<OutboxRow[]> {
  return sql.begin(async (tx) => {
    const [state] = await tx<{ epoch: string; last_seq: number }[]>`
      select epoch::text, last_seq from vessel_state for update`;
    if (!state) throw new Error("vessel_state holds no row: the migrations did not run");
    const rows = await tx.unsafe<OutboxRow[]>(
      `update changes c set epoch = $1, seq = $2 + p.rn
       from (select id, row_number() over (order by priority, id) as rn from changes
             where seq is null order by priority, id limit $3) p
       where c.id = p.id
       returning ${columns("c.")}`,
      [state.epoch, state.last_seq, limit],
    );
    if (rows.length) {
      await tx`update vessel_state set last_seq = ${state.last_seq + rows.length}`;
    }
    return rows.sort((a, b) => a.seq - b.seq);
  }) as Promise<OutboxRow[]>;
}

/**
 * Rows of the current epoch with a seq, after `afterSeq`, in seq order: those never published
 * (`unpublishedOnly`, after a crash or a drop) or every unacknowledged one (a re-send).
 */
export function pendingAfter(
  sql: Sql,
  options: { epoch: string; afterSeq: number; limit: number; unpublishedOnly: boolean },
): Promise<OutboxRow[]> {
  const { epoch, afterSeq, limit, unpublishedOnly } = options;
  return sql.unsafe<OutboxRow[]>(
    `select ${columns("")} from changes
     where epoch = $1 and seq > $2 and ${
      unpublishedOnly ? "published_at is null" : "acked_at is null"
    }
     order by seq limit $3`,
    [epoch, afterSeq, limit],
  ) as unknown as Promise<OutboxRow[]>;
}

/** Marks rows published (and, with `ackToo`, acknowledged); returns how many were acked. */
export async function markPublished(sql: Sql, ids: number[], ackToo: boolean): Promise<number> {
  if (ids.length === 0) return 0;
  if (!ackToo) {
    await sql`update changes set published_at = now()
      where id = any(${ids}::int8[]) and published_at is null`;
    return 0;
  }
  const result = await sql`update changes
    set published_at = coalesce(published_at, now()), acked_at = now()
    where id = any(${ids}::int8[]) and acked_at is null`;
  return result.count;
}

/** The current epoch and last seq handed out. */
export async function vesselState(sql: Sql): Promise<{ epoch: string; lastSeq: number }> {
  const [row] = await sql<{ epoch: string; lastSeq: number }[]>`
    select epoch::text, last_seq as "lastSeq" from vessel_state`;
  if (!row) throw new Error("vessel_state holds no row: the migrations did not run");
  return row;
}

/** What an ack from shore did. */
export type AckOutcome =
  | { kind: "acked"; released: number }
  | { kind: "ignored" }
  | { kind: "new_epoch"; epoch: string; released: number };

/**
 * Applies shore's `{epoch, seq}`. Another epoch's ack is ignored. An ack beyond our own last
 * seq means this database was restored from an older backup: shore holds changes this
 * database never saw, so we start a new epoch (shore keeps its position per epoch and will
 * not take our next changes for duplicates); every old-epoch change counts as acknowledged.
 */
export function applyAck(sql: Sql, ack: { epoch: string; seq: number }): Promise<AckOutcome> {
  return sql.begin(async (tx) => {
    const [state] = await tx<{ epoch: string; last_seq: number }[]>`
      select epoch::text, last_seq from vessel_state for update`;
    if (!state || state.epoch !== ack.epoch) return { kind: "ignored" } as const;
    if (ack.seq > state.last_seq) {
      const [next] = await tx<{ epoch: string }[]>`
        update vessel_state set epoch = gen_random_uuid(), last_seq = 0 returning epoch::text`;
      const r = await tx`update changes set acked_at = now(),
        published_at = coalesce(published_at, now())
        where epoch = ${state.epoch} and acked_at is null`;
      return { kind: "new_epoch", epoch: next!.epoch, released: r.count } as const;
    }
    const r = await tx`update changes set acked_at = now()
      where epoch = ${ack.epoch} and seq <= ${ack.seq} and acked_at is null`;
    return { kind: "acked", released: r.count } as const;
  }) as Promise<AckOutcome>;
}

/** Deletes acknowledged changes older than `days`, `batch` rows a statement; returns the count. */
export async function pruneAcked(sql: Sql, days: number, batch = 1_000): Promise<number> {
  let total = 0;
  while (true) {
    const r = await sql`delete from changes where id in (
      select id from changes where acked_at is not null
        and acked_at < now() - make_interval(days => ${days}) limit ${batch})`;
    total += r.count;
    if (r.count < batch) return total;
  }
}
