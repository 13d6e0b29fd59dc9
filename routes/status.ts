/**
 * `GET /`: the status page (http/status-page.ts) from the role's live report, the recent
 * warnings and, in the shore role, the fleet. Open like `/health`, and like it holds no record
 * data.
 */
import { Hono } from "hono";
import type { Logger } from "../core/log.ts";
import type { RecentEvents } from "../core/recent-events.ts";
import { type FleetRow, renderStatusPage, type StatusReport } from "../http/status-page.ts";

/** What the status route needs. */
export interface StatusRoutesDeps {
  role: "vessel" | "shore";
  vesselId: string;
  version: string;
  broker: string;
  /** The role's `/health` fields; throws when the database does not answer. */
  report: () => Promise<Record<string, unknown>>;
  /** The shore role's fleet table. */
  fleet?: () => Promise<FleetRow[]>;
  recent?: RecentEvents;
  log: Logger;
}

/** The status page route. */
export function statusRoutes(deps: StatusRoutesDeps): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    const base: StatusReport = {
      role: deps.role,
      vesselId: deps.vesselId,
      version: deps.version,
      broker: deps.broker,
      now: new Date(),
      status: "disconnected",
      disconnectedSince: null,
      databaseUp: true,
      lastAckAt: null,
      recent: deps.recent?.list() ?? [],
    };
    let page: StatusReport;
    try {
      const h = await deps.report();
      page = {
        ...base,
        status: String(h.status),
        disconnectedSince: (h.disconnectedSince as string | null) ?? null,
        queued: h.queuedMessages as number | undefined,
        unacked: h.unackedMessages as number | undefined,
        oldestUnackedAgeSeconds: h.oldestUnackedAgeSeconds as number | null | undefined,
        lastAckAt: (h.lastAckAt as string | null) ?? null,
        fleet: deps.fleet ? await deps.fleet() : undefined,
      };
    } catch (err) {
      deps.log.warn("Status page: database unreachable", { error: err });
      page = { ...base, databaseUp: false };
    }
    c.header("Cache-Control", "no-store");
    return c.html(renderStatusPage(page), page.databaseUp ? 200 : 503);
  });
  return app;
}
