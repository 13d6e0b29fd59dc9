/**
 * `GET /metrics`: Prometheus text exposition; open, no record data.
 */
import { Hono } from "hono";
import type { Metrics } from "../core/metrics.ts";
import type { Logger } from "../core/log.ts";

/** What the metrics route needs. */
export interface MetricsRoutesDeps {
  metrics: Metrics;
  /** Sets the gauges from live state before each scrape; a failure leaves them as they were. */
  refresh: () => Promise<void>;
  log: Logger;
}

/** The metrics route. */
export function metricsRoutes({ metrics, refresh, log }: MetricsRoutesDeps): Hono {
  const app = new Hono();
  app.get("/", async (c) => {
    try {
      await refresh();
    } catch (err) {
      log.warn("Metrics refresh failed", { error: err });
    }
    return c.text(await metrics.registry.metrics(), 200, {
      "Content-Type": metrics.registry.contentType,
    });
  });
  return app;
}
