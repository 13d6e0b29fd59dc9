/**
 * Gap repair: changes that wait in the inbox past a missing seq mean the missing ones were
 * lost on the way (a broker crash, a shed buffer). When such a gap has not moved for a while,
 * the vessel is asked to re-send from the last applied seq on its catch-up topics; while it
 * stays unfilled, the requests back off.
 *
 * A vessel whose online status announced a last seq that shore has not reached is treated
 * the same way (the changes after the last one received may all have been lost).
 *
 * Gaps are read from the database, not from memory, so a restarted shore or a second shore
 * instance finds the gaps another one saw. The one exception is what this process shed
 * (sync/shore/batches.ts): a shed tail leaves no row behind it in the inbox, and without a note
 * of it the vessel would re-send only on its own `ACK_TIMEOUT_S` (60 s, doubling). The note
 * asks like a status's last seq does, and is forgotten once the position reaches it.
 */
import type { Sql } from "../../db/connection.ts";
import type { Logger } from "../../core/log.ts";
import { ackPositions, gaps, reportedGaps } from "../../db/shore/positions.ts";
import { within } from "../deadline.ts";
import { DEFAULT_LIMITS } from "../../db/shore/inbox.ts";
import type { CatchupRequest } from "../protocol.ts";

/** Options for {@linkcode GapMonitor}. */
export interface GapMonitorOptions {
  sql: Sql;
  log: Logger;
  /** How long a gap must stay where it is before it is asked for. */
  waitMs: number;
  /** The ceiling of the back-off between two requests for one gap. */
  maxBackoffMs: number;
  /** Publishes the request; resolves false when it could not be sent (offline). */
  request: (vesselId: string, body: CatchupRequest) => Promise<boolean>;
  /** Changes asked for at most per request. */
  maxLimit?: number;
  /** A check whose queries do not answer in this time is given up (the next one runs). */
  timeoutMs?: number;
}

interface GapState {
  lastSeq: number;
  nextAt: number;
  backoffMs: number;
}

/** Watches the inbox for gaps and asks vessels to fill them. */
export class GapMonitor {
  #opts: GapMonitorOptions;
  #states = new Map<string, GapState>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #checking = false;
  /** Per vessel, the highest seq this process shed, in the epoch it was shed from. */
  #shed = new Map<string, { epoch: string; seq: number }>();

  constructor(opts: GapMonitorOptions) {
    this.#opts = opts;
  }

  /** Notes changes shed up to `seq`: asked for like a gap until the position reaches it. */
  shed(vesselId: string, epoch: string, seq: number): void {
    const held = this.#shed.get(vesselId);
    if (!held || held.epoch !== epoch || held.seq < seq) this.#shed.set(vesselId, { epoch, seq });
  }

  /** Checks every `waitMs / 2` (at least every 100 ms) until {@linkcode stop}. */
  start(): void {
    this.#timer ??= setInterval(() => this.check(), Math.max(100, this.#opts.waitMs / 2));
  }

  /** Stops checking. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass: asks for every gap that is due; returns how many requests went out. */
  async check(now = Date.now()): Promise<number> {
    if (this.#checking) return 0;
    this.#checking = true;
    const { sql, log, waitMs, maxBackoffMs, request, maxLimit = 1_000, timeoutMs = 30_000 } =
      this.#opts;
    let sent = 0;
    try {
      const inInbox = await within(gaps(sql), timeoutMs);
      // Only the current epoch can be re-sent: an older one's database is gone from board.
      const vessels = new Set([...inInbox.map((g) => g.vesselId), ...this.#shed.keys()]);
      const seqWindow = DEFAULT_LIMITS.seqWindow;
      const positions = await within(ackPositions(sql, [...vessels]), timeoutMs);
      const current = new Map(positions.map((p) => [p.vesselId, p.epoch]));
      const found = inInbox.filter((g) => current.get(g.vesselId) === g.epoch);
      for (const p of positions) {
        const shed = this.#shed.get(p.vesselId);
        if (!shed) continue;
        // Reached, the vessel moved to another epoch (whose database re-sends from 1), or past
        // the window (a forged seq would be asked for for ever, as reportedGaps says).
        if (
          shed.epoch !== p.epoch || shed.seq <= p.seq || shed.seq > p.seq + seqWindow
        ) this.#shed.delete(p.vesselId);
        else if (!found.some((f) => f.vesselId === p.vesselId)) {
          found.push({
            vesselId: p.vesselId,
            epoch: p.epoch,
            lastSeq: p.seq,
            firstWaiting: shed.seq + 1,
            lastWaiting: shed.seq,
            waiting: 0,
          });
        }
      }
      // A status names the vessel's current epoch; an inbox gap of it is the more precise.
      for (const g of await within(reportedGaps(sql), timeoutMs)) {
        if (!found.some((f) => f.vesselId === g.vesselId && f.epoch === g.epoch)) found.push(g);
      }
      const seen = new Set<string>();
      for (const gap of found) {
        const key = `${gap.vesselId}|${gap.epoch}`;
        seen.add(key);
        let state = this.#states.get(key);
        if (!state || state.lastSeq !== gap.lastSeq) {
          // New, or it moved: give live traffic and re-sends the time to fill it.
          state = { lastSeq: gap.lastSeq, nextAt: now + waitMs, backoffMs: waitMs };
          this.#states.set(key, state);
        }
        if (now < state.nextAt) continue;
        const missing = gap.firstWaiting - 1 - gap.lastSeq;
        const body = { since: gap.lastSeq, limit: Math.max(1, Math.min(missing, maxLimit)) };
        if (await request(gap.vesselId, body)) {
          sent++;
          log.info("Gap asked for", { vesselId: gap.vesselId, ...body, waiting: gap.waiting });
        }
        state.backoffMs = Math.min(state.backoffMs * 2, maxBackoffMs);
        state.nextAt = now + state.backoffMs;
      }
      for (const key of this.#states.keys()) if (!seen.has(key)) this.#states.delete(key);
    } catch (err) {
      log.warn("Gap check failed", { error: err });
    } finally {
      this.#checking = false;
    }
    return sent;
  }
}
