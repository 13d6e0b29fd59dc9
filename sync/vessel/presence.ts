/**
 * The vessel's presence on its retained status topic: `online` with its epoch and last seq at
 * every (re)connect and after a new epoch, `offline` when it stops, and the same `offline` as
 * the session's will for when it dies. Shore's side: sync/shore/presence.ts.
 */
import type { Sql } from "../../db/connection.ts";
import type { Logger } from "../../core/log.ts";
import { VERSION } from "../../core/version.ts";
import { vesselState } from "../../db/vessel/outbox.ts";
import type { Session } from "../session.ts";
import { type Status, statusPayload, topicsOf } from "../protocol.ts";

/** What the engine publishes as the vessel's presence. */
export interface Presence {
  /** The session's will: `offline`, retained. */
  readonly will: { topic: string; payload: string; qos: 1; retain: true };
  /** Publishes `online` with the outbox's epoch and last seq; a failure is logged. */
  announce(session: Session): Promise<void>;
  /** Publishes `offline` (when connected); a failure is logged. */
  leave(session: Session): Promise<void>;
}

/** Builds the vessel's presence. */
export function createPresence(
  { sql, vesselId, log }: { sql: Sql; vesselId: string; log: Logger },
): Presence {
  const topic = topicsOf(vesselId).status;
  const status = (s: "online" | "offline", extra: Partial<Status> = {}) =>
    statusPayload({ status: s, vesselId, ...extra, version: VERSION });
  return {
    will: { topic, payload: status("offline"), qos: 1, retain: true },
    async announce(session) {
      try {
        const { epoch, lastSeq } = await vesselState(sql);
        const payload = status("online", { epoch, lastSeq, timestamp: new Date().toISOString() });
        await session.publish(topic, payload, { qos: 1, retain: true });
      } catch (err) {
        log.warn("Publishing presence failed", { error: err });
      }
    },
    async leave(session) {
      if (!session.connected) return;
      await session.publish(topic, status("offline", { timestamp: new Date().toISOString() }), {
        qos: 1,
        retain: true,
      }).catch((err) => log.warn("Publishing offline failed", { error: err }));
    },
  };
}
