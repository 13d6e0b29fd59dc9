/**
 * The vessel HTTP app built through the role wiring main.ts uses (roles/vessel.ts and
 * roles/role.ts), over a database the test owns, with sync off (`LOCAL_MODE=false`), for
 * `app.request()` tests that need no socket.
 */
import type { Hono } from "hono";
import type { Sql } from "../../db/connection.ts";
import { parseConfig } from "../../config.ts";
import type { OutboxGate } from "../../core/outbox-gate.ts";
import { createMetrics, type Metrics } from "../../core/metrics.ts";
import { createLogger, type Logger, silentLogger } from "../../core/log.ts";
import { gatewayApp } from "../../roles/role.ts";
import { createVesselRole } from "../../roles/vessel.ts";

/** The token every test app accepts. */
export const TEST_TOKEN = "test-token-0123456789abcdef";

/** A built app and what a test needs to drive it. */
export interface TestApp {
  // deno-lint-ignore no-explicit-any
  app: Hono<any>;
  metrics: Metrics;
  gate: OutboxGate;
  /** `app.request` with the bearer token and a JSON body. */
  call(method: string, path: string, body?: unknown, headers?: HeadersInit): Promise<Response>;
}

/** Options for {@linkcode testApp}. */
export interface TestAppOptions {
  outboxMaxPending?: number;
  tokens?: string[];
  /** Receives every log line (JSON text) at debug level and above. */
  logLines?: string[];
  /** More environment for the configuration (`CORS_ORIGINS`, …). */
  env?: Record<string, string>;
}

/** Builds the app over `sql`; log lines go to `logLines` when given. */
export async function testApp(sql: Sql, options: TestAppOptions = {}): Promise<TestApp> {
  const { tokens = [TEST_TOKEN], logLines } = options;
  const log: Logger = logLines
    ? createLogger({ level: "debug", write: (line) => logLines.push(line) })
    : silentLogger;
  const metrics = createMetrics();
  const config = parseConfig({
    LOCAL_MODE: "false",
    DATABASE_URL: "postgres://unused",
    OUTBOX_MAX_PENDING: String(options.outboxMaxPending ?? 1_000_000),
    ...options.env,
  });
  const role = await createVesselRole({ config, sql, log, metrics });
  const app = gatewayApp({ config, role, log, metrics, tokens });
  const call = (method: string, path: string, body?: unknown, headers: HeadersInit = {}) => {
    const h = new Headers(headers);
    if (!h.has("authorization")) h.set("authorization", `Bearer ${TEST_TOKEN}`);
    if (body !== undefined && !h.has("content-type")) h.set("content-type", "application/json");
    return Promise.resolve(app.request(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    }));
  };
  return { app, metrics, gate: role.gate, call };
}

/** The app alone, for tests that call `app.request()` themselves. */
export async function buildTestApp(options: TestAppOptions & { sql: Sql }) {
  return (await testApp(options.sql, options)).app;
}
