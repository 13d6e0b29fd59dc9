/**
 * What a role is to the process: the HTTP routes it adds, its live `/health` fields and
 * `/metrics` gauges, and its sync machinery, started once the port is bound.
 */
import type { Hono } from "hono";
import type { Config } from "../config.ts";
import { redactUrl } from "../config.ts";
import type { Sql } from "../db/connection.ts";
import type { Logger } from "../core/log.ts";
import type { Metrics } from "../core/metrics.ts";
import { VERSION } from "../core/version.ts";
import { createApp } from "../http/app.ts";
import { openApiDocument } from "../http/openapi.ts";
import { healthRoutes } from "../routes/health.ts";
import { metricsRoutes } from "../routes/metrics.ts";
import { statusRoutes } from "../routes/status.ts";
import type { FleetRow } from "../http/status-page.ts";
import type { RecentEvents } from "../core/recent-events.ts";
import type { TlsFiles } from "../sync/tls.ts";

/** What both roles are built from (constructed in `main.ts`, or by a test). */
export interface RoleDeps {
  config: Config;
  sql: Sql;
  log: Logger;
  metrics: Metrics;
  tls?: TlsFiles;
}

/** A role, built but not started: nothing connects until `start()`. */
export interface Role {
  /** Mounted under `/api`, in order. */
  api: Hono[];
  /** Mounted under `/catchup` (vessel role). */
  catchup?: Hono;
  /** The live `/health` fields; throws when the database does not answer. */
  report(): Promise<Record<string, unknown>>;
  /** The shore role's fleet, for the status page. */
  fleet?(): Promise<FleetRow[]>;
  /** Sets the `/metrics` gauges from live state before a scrape. */
  refresh(): Promise<void>;
  /** Connects sync; called once the HTTP port is bound. */
  start(): Promise<void>;
  /** Stops sync (the database is closed by its owner). */
  close(): Promise<void>;
}

/** The gateway's HTTP app for `role`: the role's routes, health, metrics, auth, errors. */
export function gatewayApp(
  options: {
    config: Config;
    role: Role;
    log: Logger;
    metrics: Metrics;
    tokens: string[];
    /** The recent warnings and errors the status page lists (main.ts's logger feeds them). */
    recent?: RecentEvents;
  },
) {
  const { config, role, log, metrics, tokens, recent } = options;
  return createApp({
    log,
    metrics,
    tokens,
    api: role.api,
    catchup: role.catchup,
    health: healthRoutes({
      fixed: {
        role: config.role,
        vesselId: config.vesselId,
        broker: redactUrl(config.mqtt.url),
        version: VERSION,
        linkMode: config.linkMode,
      },
      startedAt: Date.now(),
      report: role.report,
      log,
    }),
    metricsRoute: metricsRoutes({ metrics, refresh: role.refresh, log }),
    statusPage: statusRoutes({
      role: config.role,
      vesselId: config.vesselId,
      version: VERSION,
      broker: redactUrl(config.mqtt.url),
      report: role.report,
      fleet: role.fleet,
      recent,
      log,
    }),
    corsOrigins: config.corsOrigins,
    openapi: () => openApiDocument({ role: config.role, catchup: role.catchup !== undefined }),
  });
}
