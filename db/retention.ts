/**
 * Retention of acknowledged outbox rows, for `CATCHUP_RETENTION_DAYS` after their ack. The
 * shore's down outbox (db/shore/down-outbox.ts's `shore_down_changes`) marks each row with
 * `acked_at`; the vessel's (`changes`, db/vessel/outbox.ts) keeps an acknowledged watermark
 * instead, and a log of when it reached which seq (`vessel_acks`, one row per epoch and minute).
 */
import type { Sql } from "./connection.ts";

/** The outbox tables whose rows carry `acked_at`. */
export type OutboxTable = "shore_down_changes";

/**
 * Deletes rows of `table` acknowledged more than `days` ago, `batch` rows a statement, so a
 * long backlog is never one long delete; returns the count.
 */
export async function pruneAckedRows(
  sql: Sql,
  table: OutboxTable,
  days: number,
  batch: number,
): Promise<number> {
  let total = 0;
  while (true) {
    const r = await sql`delete from ${sql(table)} where id in (
      select id from ${sql(table)} where acked_at is not null
        and acked_at < now() - make_interval(days => ${days}) limit ${batch})`;
    total += r.count;
    if (r.count < batch) return total;
  }
}

/**
 * Deletes the vessel's changes acknowledged more than `days` ago, `batch` rows a statement: of
 * each epoch, the rows up to the highest seq the ack log says was acknowledged before the cutoff
 * (and acknowledged still: in the current epoch at most `acked_seq`). Then the log rows before the
 * cutoff, whose changes are gone. Returns the count.
 */
export async function pruneAckedChanges(sql: Sql, days: number, batch: number): Promise<number> {
  // One cutoff for both deletes: a log row must not go before its changes.
  const [row] = await sql<{ cutoff: Date }[]>`
    select now() - make_interval(days => ${days}) as cutoff`;
  const cutoff = row!.cutoff;
  let total = 0;
  while (true) {
    const r = await sql`delete from changes where id in (
      select c.id from (select epoch, max(seq) as seq from vessel_acks
          where at < ${cutoff} group by epoch) a
        join changes c on c.epoch = a.epoch and c.seq <= a.seq
        join vessel_state s on c.epoch <> s.epoch or c.seq <= s.acked_seq
      limit ${batch})`;
    total += r.count;
    if (r.count < batch) break;
  }
  await sql`delete from vessel_acks where at < ${cutoff}`;
  return total;
}
