/**
 * Read-side figures of the change log for `/health` and `/metrics`.
 */
import type { Sql } from "./connection.ts";

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
