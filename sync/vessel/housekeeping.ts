/**
 * The vessel's periodic chores: re-seed the outbox bound (core/outbox-gate.ts) from the
 * database, so a count that drifted in memory is corrected, and prune acknowledged changes and
 * applied down inbox rows (the shore's stream) past `CATCHUP_RETENTION_DAYS`. A failed round is logged and the next one tries again.
 */
import type { Sql } from "../../db/connection.ts";
import type { OutboxGate } from "../../core/outbox-gate.ts";
import type { Logger } from "../../core/log.ts";
import { countPending, pruneAcked } from "../../db/vessel/outbox.ts";
import { pruneDownInbox } from "../../db/vessel/down-inbox.ts";

/** Options for {@linkcode startHousekeeping}. */
export interface HousekeepingOptions {
  sql: Sql;
  gate: OutboxGate;
  log: Logger;
  retentionDays: number;
  /** Re-seed the outbox bound this often (default 60 s). */
  reseedMs?: number;
  /** Prune acknowledged changes past retention this often (default 1 h). */
  pruneMs?: number;
}

/** Starts both timers; returns what stops them. */
export function startHousekeeping(options: HousekeepingOptions): () => void {
  const { sql, gate, log, retentionDays, reseedMs = 60_000, pruneMs = 3_600_000 } = options;
  const timers = [
    setInterval(async () => {
      try {
        gate.reset(await countPending(sql));
      } catch (err) {
        log.warn("Re-seeding the outbox bound failed", { error: err });
      }
    }, reseedMs),
    setInterval(async () => {
      try {
        const pruned = await pruneAcked(sql, retentionDays);
        if (pruned) log.info("Pruned acknowledged changes", { count: pruned });
        const down = await pruneDownInbox(sql, retentionDays);
        if (down) log.info("Pruned applied down inbox rows", { count: down });
      } catch (err) {
        log.warn("Pruning failed", { error: err });
      }
    }, pruneMs),
  ];
  return () => {
    for (const t of timers) clearInterval(t);
  };
}
