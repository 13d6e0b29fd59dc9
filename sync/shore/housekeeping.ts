/**
 * The shore's periodic chore: past `CATCHUP_RETENTION_DAYS`, prune the inbox's applied rows (a
 * re-delivery of a pruned seq is still a duplicate: db/shore/inbox.ts) and the down outbox's
 * acknowledged changes (db/shore/down-outbox.ts). A failed round is logged and the next one tries
 * again.
 */
import type { Sql } from "../../db/connection.ts";
import type { Logger } from "../../core/log.ts";
import { pruneInbox } from "../../db/shore/inbox.ts";
import { pruneDownAcked } from "../../db/shore/down-outbox.ts";

/** Options for {@linkcode startShoreHousekeeping}. */
export interface ShoreHousekeepingOptions {
  sql: Sql;
  log: Logger;
  retentionDays: number;
  /** Prune this often (default 1 h); the first round runs at once. */
  pruneMs?: number;
}

/** Starts the pruning timer; returns what stops it. */
export function startShoreHousekeeping(options: ShoreHousekeepingOptions): () => void {
  const { sql, log, retentionDays, pruneMs = 3_600_000 } = options;
  const rounds = [
    { what: "inbox rows", prune: () => pruneInbox(sql, retentionDays) },
    { what: "acknowledged down changes", prune: () => pruneDownAcked(sql, retentionDays) },
  ];
  const round = async () => {
    for (const { what, prune } of rounds) {
      try {
        const count = await prune();
        if (count > 0) log.info("Pruned", { what, count });
      } catch (err) {
        log.warn("Pruning failed", { what, error: err });
      }
    }
  };
  const timer = setInterval(round, pruneMs);
  void round();
  return () => clearInterval(timer);
}
