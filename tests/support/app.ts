/**
 * The vessel HTTP app built as `main.ts` builds it, over a database the test owns, for
 * `app.request()` tests that need no socket.
 */
import type { Hono } from "hono";
import type { Sql } from "../../db/connection.ts";
import { createApp } from "../../app.ts";
import { createRecordStore } from "../../db/records.ts";
import { OutboxGate } from "../../db/outbox-gate.ts";
import { outboxStats } from "../../db/outbox.ts";
import { createMetrics, type Metrics } from "../../metrics.ts";
import { recordRoutes } from "../../routes/records.ts";
import { healthRoutes } from "../../routes/health.ts";
import { metricsRoutes } from "../../routes/metrics.ts";
import { createLogger, type Logger, silentLogger } from "../../log.ts";

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
}

/** Builds the app over `sql`; log lines go to `logLines` when given. */
export function testApp(sql: Sql, options: TestAppOptions = {}): TestApp {
  const { tokens = [TEST_TOKEN], logLines } = options;
  const log: Logger = logLines
    ? createLogger({ level: "debug", write: (line) => logLines.push(line) })
    : silentLogger;
  const metrics = createMetrics();
  const gate = new OutboxGate(options.outboxMaxPending ?? 1_000_000);
  const records = createRecordStore({ sql, gate });
  const app = createApp({
    log,
    metrics,
    tokens,
    api: recordRoutes({ records }),
    health: healthRoutes({
      fixed: { role: "vessel", vesselId: "vessel-1", broker: "mqtt://localhost:1883" },
      startedAt: Date.now(),
      report: async () => {
        const s = await outboxStats(sql);
        return { status: "disconnected", queuedMessages: s.queued, unackedMessages: s.unacked };
      },
      log,
    }),
    metricsRoute: metricsRoutes({
      metrics,
      refresh: async () => {
        metrics.queueDepth.set((await outboxStats(sql)).queued);
      },
      log,
    }),
  });
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
  return { app, metrics, gate, call };
}

/** The app alone, for tests that call `app.request()` themselves. */
export function buildTestApp(options: TestAppOptions & { sql: Sql }) {
  return testApp(options.sql, options).app;
}
