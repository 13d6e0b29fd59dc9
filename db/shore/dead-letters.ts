/**
 * Changes the shore's database refuses: kept in `shore_dead_letters` with the reason, so the
 * vessel's position steps over them and one bad change never holds back those behind it
 * (db/shore/inbox.ts decides when; this module says what is kept).
 */
import type postgres from "postgres";
import type { Envelope } from "../../core/change.ts";

type Tx = postgres.TransactionSql;

/** A change the shore can never apply, kept in `shore_dead_letters` and stepped over. */
export interface DeadLetter {
  seq: number;
  messageId: string;
  /** The SQLSTATE the database refused it with (the `reason` label of the metric). */
  reason: string;
  detail: string;
}

/**
 * A data exception (class 22) or integrity violation (class 23): the database refuses this
 * data, and will refuse it on every retry. Anything else (an outage, a timeout, a lock) may
 * pass next time and is never a reason to skip a change.
 */
export const isDataError = (err: unknown): boolean =>
  /^2[23]/.test(String((err as { code?: unknown })?.code ?? ""));

/** What is kept of a change the database refused with `err`. */
export const letterOf = (e: Envelope, err: unknown): DeadLetter => ({
  seq: e.seq,
  messageId: e.messageId,
  reason: String((err as { code?: unknown }).code),
  detail: err instanceof Error ? err.message : String(err),
});

/**
 * Keeps a change the database refused. The envelope is kept as JSON text: it may be the very
 * jsonb the database refused (JSON.stringify escapes NUL and lone surrogates, so text takes it).
 */
export async function deadLetter(
  tx: Tx,
  vesselId: string,
  epoch: string,
  e: Envelope,
  err: unknown,
): Promise<boolean> {
  const { reason, detail } = letterOf(e, err);
  const rows = await tx`
    insert into shore_dead_letters (vessel_id, epoch, seq, message_id, envelope, reason, detail)
    values (${vesselId}, ${epoch}, ${e.seq}, ${e.messageId}, ${JSON.stringify(e)}, ${reason},
      ${detail.slice(0, 1_000)})
    on conflict do nothing
    returning seq`;
  return rows.length > 0;
}
