/**
 * Down catch-up by request, the vessel's side (contract §4: `vessel/<id>/down/catchup/request`):
 * sync/shore/gaps.ts mirrored for the shore's stream. Changes that wait in the down inbox past
 * a missing seq mean the missing ones were lost on the way (a broker crash, a dropped queue);
 * when such a gap has not moved for `waitMs`, shore is asked for the changes after the last
 * applied seq, and while the gap stays unfilled the requests back off.
 *
 * It also asks at once, without waiting for a gap to show, at every connect where the broker
 * kept no session (what it had queued for this vessel is gone), and at a start on a database
 * that holds no down position yet (a new or emptied one). A restart whose session is still
 * there asks nothing: the session holds the stream, and a database restored from a backup is
 * served by the shore from the down ack every connect publishes (sync/shore/down.ts takes an ack
 * below the last one for a restore). Recovery never waits out the shore's re-send timer.
 *
 * The gap is read from the database, not from memory, so a restart finds it again.
 */
import type { Sql } from "../../db/connection.ts";
import { downInboxFigures } from "../../db/vessel/down-inbox.ts";
import type { Logger } from "../../core/log.ts";
import type { Session } from "../session.ts";
import {
  type DownCatchupRequest,
  downCatchupRequestPayload,
  MAX_CATCHUP_LIMIT,
  topicsOf,
} from "../protocol.ts";

/** Options for {@linkcode createDownGapWatch}. */
export interface DownGapWatchOptions {
  sql: Sql;
  session: Session;
  vesselId: string;
  log: Logger;
  /** How long a gap must stay where it is before it is asked for (default 2 s). */
  waitMs?: number;
  /** Ceiling of the back-off between two requests for one gap (default 60 s). */
  maxBackoffMs?: number;
  /** A request was published. */
  onRequest?: (request: DownCatchupRequest) => void;
}

/** The running watch. */
export interface DownGapWatch {
  /** One check: asks for the gap if it is due; true when a request went out. */
  check(now?: number): Promise<boolean>;
  /** Changes were left waiting past a gap: watch the database until it is filled. */
  poke(): void;
  stop(): void;
}

/** Watches the down inbox for gaps and asks shore to fill them. */
export function createDownGapWatch(options: DownGapWatchOptions): DownGapWatch {
  const { sql, session, vesselId, log, onRequest = () => {} } = options;
  const waitMs = options.waitMs ?? 2_000;
  const maxBackoffMs = options.maxBackoffMs ?? 60_000;
  const topic = topicsOf(vesselId).downCatchupRequest;
  let state: { epoch: string; lastSeq: number; nextAt: number; backoffMs: number } | null = null;
  let checking = false;
  let firstConnect = true;
  // The database is read only while a gap may exist: at start (a restart finds one again),
  // and from an ingest that left changes waiting until the gap is gone. An idle vessel
  // costs no query.
  let armed = true;

  async function ask(request: DownCatchupRequest, why: string): Promise<boolean> {
    if (!session.connected) return false;
    await session.publish(topic, downCatchupRequestPayload(request), { qos: 1 });
    log.info("Down catch-up asked for", { ...request, why });
    onRequest(request);
    return true;
  }

  async function check(now = Date.now()): Promise<boolean> {
    if (checking || !armed) return false;
    checking = true;
    try {
      const f = await downInboxFigures(sql);
      if (!f.epoch || f.firstWaiting === null) {
        state = null;
        armed = false;
        return false;
      }
      if (!state || state.epoch !== f.epoch || state.lastSeq !== f.lastSeq) {
        // New, or it moved: give the stream and the shore's re-sends the time to fill it.
        state = { epoch: f.epoch, lastSeq: f.lastSeq, nextAt: now + waitMs, backoffMs: waitMs };
      }
      if (now < state.nextAt) return false;
      const missing = f.firstWaiting - 1 - f.lastSeq;
      const request = {
        since: f.lastSeq,
        epoch: f.epoch,
        limit: Math.max(1, Math.min(missing, MAX_CATCHUP_LIMIT)),
      };
      state.backoffMs = Math.min(state.backoffMs * 2, maxBackoffMs);
      state.nextAt = now + state.backoffMs;
      return await ask(request, "gap");
    } catch (err) {
      log.warn("Down gap check failed", { error: err });
      return false;
    } finally {
      checking = false;
    }
  }

  async function onConnect(sessionPresent: boolean) {
    const first = firstConnect;
    firstConnect = false;
    if (!first && sessionPresent) return;
    try {
      const f = await downInboxFigures(sql);
      if (sessionPresent && f.epoch) return;
      const request = f.epoch
        ? { since: f.lastSeq, epoch: f.epoch, limit: MAX_CATCHUP_LIMIT }
        : { since: 0, limit: MAX_CATCHUP_LIMIT };
      await ask(request, first ? "start" : "session_lost");
    } catch (err) {
      log.warn("Down catch-up request failed", { error: err });
    }
  }

  const offEvent = session.onEvent((e) => {
    if (e.type === "connected") void onConnect(e.sessionPresent);
  });
  const timer = setInterval(() => void check(), Math.max(100, waitMs / 2));

  return {
    check,
    poke() {
      armed = true;
    },
    stop() {
      offEvent();
      clearInterval(timer);
    },
  };
}
