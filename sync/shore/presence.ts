/**
 * Presence from each vessel's retained status topic, recorded one at a time in arrival order:
 * an `offline` must not overtake the `online` before it.
 */
import type { Sql } from "../../db/connection.ts";
import type { Logger } from "../../core/log.ts";
import { recordPresence } from "../../db/shore/fleet.ts";
import { within } from "../deadline.ts";
import type { Presence } from "./classify.ts";

/** Records presence updates in order; a failed one is logged and the next goes on. */
export class PresenceRecorder {
  #chain = Promise.resolve();

  constructor(readonly options: { sql: Sql; log: Logger; timeoutMs: number }) {}

  /** Queues `p` behind the updates before it. */
  record(p: Presence): void {
    const { sql, log, timeoutMs } = this.options;
    this.#chain = this.#chain.then(() => within(recordPresence(sql, p), timeoutMs))
      .catch((err) => log.warn("Presence not recorded", { vesselId: p.vesselId, error: err }));
  }

  /** Resolves once every queued update is done. */
  settled(): Promise<void> {
    return this.#chain;
  }
}
