/**
 * A small structured logger: one JSON line per event on stderr.
 *
 * Record contents never go to the log at info level; callers pass ids and counts.
 */

export type Level = "debug" | "info" | "warn" | "error";
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** A logger bound to fixed fields (a module name, a request id). */
export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** Options for {@linkcode createLogger}. */
export interface LoggerOptions {
  level?: Level;
  fields?: Record<string, unknown>;
  write?: (line: string) => void;
  /** Sees every event written (core/recent-events.ts keeps the warnings for the status page). */
  observe?: (event: { t: string; level: Level; msg: string; error?: string }) => void;
}

const encoder = new TextEncoder();
const writeStderr = (line: string) => {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible to do.
  }
};

function describe(value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? value.message : `${value.message} (${String(code)})`;
  }
  return value;
}

/** Builds a logger; `level` below which lines are dropped defaults to `info`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const { level = "info", fields = {}, write = writeStderr, observe } = options;
  const min = ORDER[level];
  const emit = (lvl: Level, msg: string, extra?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    const line: Record<string, unknown> = { t: new Date().toISOString(), level: lvl, msg };
    for (const [k, v] of Object.entries(fields)) line[k] = v;
    if (extra) { for (const [k, v] of Object.entries(extra)) line[k] = describe(v); }
    write(JSON.stringify(line));
    if (observe) {
      const error = line.error === undefined ? undefined : String(line.error);
      observe({ t: line.t as string, level: lvl, msg, error });
    }
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (more) => createLogger({ level, write, observe, fields: { ...fields, ...more } }),
  };
}

/** A logger that drops everything, for tests that do not read the log. */
export const silentLogger: Logger = createLogger({ write: () => {} });
