/**
 * Retention of acknowledged outbox rows, shared by both outboxes (db/vessel/outbox.ts's
 * `changes`, db/shore/down-outbox.ts's `shore_down_changes`): the same rule over the same
 * columns, so it is written once.
 */
import type { Sql } from "./connection.ts";

/** The outbox tables whose rows carry `acked_at`. */
export type OutboxTable = "changes" | "shore_down_changes";

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
