/**
 * A bosun gateway as a real child process (`deno run -A main.ts`), on a fixed port so that it
 * can be killed with SIGKILL and started again where the writers expect it.
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Options for {@linkcode gatewayProcess}. */
export interface GatewayProcessOptions {
  name: string;
  port: number;
  env: Record<string, string>;
  /** File that collects the process's stdout and stderr across restarts. */
  logFile: string;
  /**
   * How long a start may take to answer /health (default 60 s). An embedded vessel answers
   * only once PGlite is open: its WASM start and crash recovery take tens of seconds on this
   * loaded machine.
   */
  startTimeoutMs?: number;
}

/** A gateway process that can be killed and restarted. */
export interface GatewayProcess {
  name: string;
  port: number;
  baseUrl: string;
  readonly running: boolean;
  start(): Promise<void>;
  /** kill -9. */
  kill(): Promise<void>;
  /** SIGTERM, then waits for exit. */
  stop(): Promise<void>;
  /** Exits nobody asked for (a crash); each one is restarted a second later, as systemd would. */
  readonly crashes: number;
  /** GET /health, or undefined when it does not answer. */
  health(): Promise<Record<string, unknown> | undefined>;
  /** GET /metrics text, or undefined when it does not answer. */
  metrics(): Promise<string | undefined>;
}

/** Prepares (does not start) a gateway process. */
export function gatewayProcess(options: GatewayProcessOptions): GatewayProcess {
  const { name, port, env, logFile, startTimeoutMs = 60_000 } = options;
  const baseUrl = `http://127.0.0.1:${port}`;
  let child: Deno.ChildProcess | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  let halting: Deno.ChildProcess | undefined;
  let crashes = 0;
  let supervising = true;

  const get = async (path: string) => {
    try {
      const res = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(5_000) });
      return res;
    } catch {
      return undefined;
    }
  };

  const start = async () => {
    if (child) return;
    // The child appends to its log file itself (the shell's redirection, then exec): a log
    // pipe through this process would make the gateway's writes wait on this event loop.
    child = new Deno.Command("sh", {
      args: ["-c", `exec "$0" run -A main.ts >> "$1" 2>&1`, Deno.execPath(), logFile],
      cwd: ROOT,
      env: { ...env, PORT: String(port), HOST: "127.0.0.1" },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const c = child;
    exited = c.status;
    c.status.then(() => {
      if (child === c) child = undefined;
      if (halting === c || !supervising) return;
      crashes++;
      const restart = () => {
        if (!supervising || child) return;
        start().catch(() => setTimeout(restart, 1_000));
      };
      setTimeout(restart, 1_000);
    });
    // Started once it answers /health, whatever the status (it may be up before its database).
    const deadline = Date.now() + startTimeoutMs;
    while (Date.now() < deadline) {
      if (child !== c) throw new Error(`${name} exited during start-up (see ${logFile})`);
      const res = await get("/health");
      if (res) {
        await res.body?.cancel();
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(
      `${name} did not answer /health within ${startTimeoutMs / 1000} s (see ${logFile})`,
    );
  };

  const halt = async (signal: Deno.Signal) => {
    const c = child;
    if (!c) return;
    halting = c;
    try {
      c.kill(signal);
    } catch {
      // already gone
    }
    await c.status;
    await exited;
    child = undefined;
  };

  return {
    name,
    port,
    baseUrl,
    get running() {
      return child !== undefined;
    },
    start,
    kill: () => halt("SIGKILL"),
    async stop() {
      supervising = false;
      await halt("SIGTERM");
    },
    get crashes() {
      return crashes;
    },
    async health() {
      const res = await get("/health");
      if (!res) return undefined;
      try {
        return await res.json();
      } catch {
        return undefined;
      }
    },
    async metrics() {
      const res = await get("/metrics");
      if (!res) return undefined;
      // A kill -9 can land while the body is read: that is "did not answer", not a harness crash
      // (seed 4102 died of it at fault 237).
      try {
        return res.ok ? await res.text() : (await res.body?.cancel(), undefined);
      } catch {
        return undefined;
      }
    },
  };
}
