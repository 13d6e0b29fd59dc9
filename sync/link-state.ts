/**
 * Since when the broker link is down, for `/health` (`disconnectedSince`), `/metrics`
 * (`bosun_link_down_seconds`) and the status page: a link down for days must say so at a
 * glance, and a link never up since start counts as down since start.
 */
import type { Session } from "./session.ts";

/** The link's state, fed by a session's events. */
export class LinkState {
  #downSince: Date | null;

  /** Starts down, since `since` (the role's creation). */
  constructor(since: Date = new Date()) {
    this.#downSince = since;
  }

  /** Follows `session` from now on; returns the unsubscribe. */
  watch(session: Session): () => void {
    if (session.connected) this.#downSince = null;
    return session.onEvent((e) => {
      if (e.type === "connected") this.#downSince = null;
      else if (e.type === "disconnected") this.#downSince = new Date();
    });
  }

  /** When the link went down; null while it is up. */
  get downSince(): Date | null {
    return this.#downSince;
  }

  /** Whole seconds the link has been down, 0 while up. */
  downSeconds(now: number = Date.now()): number {
    return this.#downSince ? Math.max(0, Math.floor((now - this.#downSince.getTime()) / 1000)) : 0;
  }
}
