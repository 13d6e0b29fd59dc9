/**
 * The vessel HTTP app built the way `main.ts` builds it, over a test database, for tests that
 * call `app.request()` without a socket.
 */
import { createApp } from "../../app.ts";
import { createMetrics } from "../../metrics.ts";
import { createRecordStore } from "../../db/records.ts";
import { OutboxGate } from "../../db/outbox-gate.ts";
import type { Sql } from "../../db/connection.ts";
import { createLogger, type Logger } from "../../log.ts";
import { recordRoutes } from "../../routes/records.ts";
import { healthRoutes } from "../../routes/health.ts";
import { metricsRoutes } from "../../routes/metrics.ts";

/** A token every test app accepts. */
export const TEST_TOKEN = "test-token-0123456789abcdef";

/** Options for {@linkcode buildTestApp}. */
export interface TestAppOptions {
  sql: Sql;
  tokens?: string[];
  /** Receives every log line (JSON text) at debug level and above. */
  logLines?: string[];
}

/** Builds the app; log lines go to `logLines` when given. */
export function buildTestApp(options: TestAppOptions) {
  const { sql, tokens = [TEST_TOKEN], logLines } = options;
  const log: Logger = createLogger({
    level: "debug",
    write: (line) => logLines?.push(line),
  });
  const metrics = createMetrics();
  return createApp({
    log,
    metrics,
    tokens,
    api: recordRoutes({ records: createRecordStore({ sql, gate: new OutboxGate(1_000_000) }) }),
    health: healthRoutes({
      fixed: { role: "vessel", vesselId: "test" },
      startedAt: Date.now(),
      report: () => Promise.resolve({ status: "disabled" }),
      log,
    }),
    metricsRoute: metricsRoutes({ metrics, refresh: () => Promise.resolve(), log }),
  });
}
