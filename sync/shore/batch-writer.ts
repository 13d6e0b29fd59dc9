/**
 * Writing one batch of one (vessel, epoch) through the inbox (db/shore/inbox.ts), and what its
 * result tells the operator: metrics, a log line for refusals, forgeries and dead letters, and
 * an ack scheduled for the vessel. The queue (sync/shore/batches.ts) decides when; this module
 * decides how, and what a failure means.
 */
import type { Sql } from "../../db/connection.ts";
import type { Logger } from "../../core/log.ts";
import type { ShoreMetrics } from "../../core/metrics.ts";
import { isDatabaseUnavailable } from "../../core/errors.ts";
import { ingest, type IngestLimits, type IngestResult } from "../../db/shore/inbox.ts";
import { DeadlineError, within } from "../deadline.ts";
import type { Envelope } from "../protocol.ts";
import type { AckPublisher } from "./acks.ts";
import type { FailurePlan } from "./batches.ts";
import type { EpochAdmission } from "./epochs.ts";

const TRANSIENT = new Set(["40001", "40P01"]); // serialization failure, deadlock

/** Options for {@linkcode BatchWriter}. */
export interface BatchWriterOptions {
  sql: Sql;
  log: Logger;
  metrics: ShoreMetrics;
  acks: AckPublisher;
  epochs: EpochAdmission;
  limits: IngestLimits;
  /** A database call still unanswered after this is given up. */
  timeoutMs: number;
}

/** The `write` and `onFailure` of the shore's batch queue (sync/shore/batches.ts). */
export class BatchWriter {
  constructor(readonly options: BatchWriterOptions) {}

  /**
   * Writes one batch. Serialization failures and deadlocks are retried at once (another
   * transaction won a race; nothing is wrong with the batch); anything else goes back to the
   * queue, which retries this vessel alone after a back-off. What a transaction did is counted
   * when it commits, even past the deadline: the retry behind a late commit finds only
   * duplicates, so counting on the deadline's side would lose what the late commit did.
   */
  write = async (batch: Envelope[]): Promise<void> => {
    const { sql, limits, timeoutMs, epochs } = this.options;
    const { vesselId, epoch } = batch[0]!;
    for (let attempt = 1;; attempt++) {
      try {
        const committed = ingest(sql, vesselId, epoch, batch, limits).then((result) => {
          epochs.written(vesselId, epoch, (result.refused.epoch_limit ?? 0) > 0);
          this.#report(vesselId, epoch, result);
        });
        committed.catch(() => {}); // a failure after the deadline is the retry's to meet
        await within(committed, timeoutMs);
        return;
      } catch (err) {
        const code = (err as { code?: string }).code ?? "";
        if (TRANSIENT.has(code) && attempt < 5) continue;
        throw err;
      }
    }
  };

  /** A batch that failed `failures` times in a row: retried after a back-off, or dropped. */
  onFailure = (batch: Envelope[], err: unknown, failures: number): FailurePlan => {
    const { log } = this.options;
    const { vesselId } = batch[0]!;
    const unavailable = err instanceof DeadlineError || isDatabaseUnavailable(err);
    if (!unavailable && failures >= 5) {
      // Dropping is safe: nothing was acked, so the vessel re-sends and the gap is asked for.
      log.error("Batch dropped after repeated failures", { vesselId, error: err });
      return "drop";
    }
    log.warn("Batch not written, retrying", { vesselId, attempt: failures, error: err });
    return { retryInMs: Math.min(250 * 2 ** failures, 10_000) };
  };

  #report(vesselId: string, epoch: string, result: IngestResult) {
    const { log, metrics, acks } = this.options;
    for (const [reason, n] of Object.entries(result.refused)) {
      metrics.refused.inc({ reason }, n);
      log.warn("Changes refused past the vessel's bounds", { vesselId, epoch, reason, n });
    }
    metrics.applied.inc(result.applied);
    metrics.duplicates.inc(result.duplicates);
    metrics.conflicts.inc(result.conflicts);
    for (const d of result.deadLettered) metrics.deadLetters.inc({ reason: d.reason });
    for (const f of result.forgeries) {
      // Never rate-limited: each one is a security event an operator must be able to trace.
      metrics.forgeries.inc();
      log.error("Forged change refused: seq held under another messageId", {
        vesselId,
        epoch,
        seq: f.seq,
        keptMessageId: f.kept,
        refusedMessageId: f.refused,
      });
    }
    const [first] = result.deadLettered;
    if (first) {
      // One line a batch: a vessel sending a thousand bad changes writes one, not a thousand.
      log.error("Changes dead-lettered: the database refuses them", {
        vesselId,
        epoch,
        count: result.deadLettered.length,
        first,
      });
    }
    // Duplicates mean the vessel re-sent: it has not seen our ack, so send it again.
    if (result.applied + result.duplicates + result.deadLettered.length > 0) {
      acks.schedule(vesselId);
    }
  }
}
