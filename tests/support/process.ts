/**
 * A bosun process of the test's own (`deno run main.ts` or the compiled binary), with its
 * output collected so a test can wait for a log line and read the port it listens on.
 */

/** Options for {@linkcode spawnGateway}. */
export interface SpawnOptions {
  /** Environment on top of the inherited one. */
  env: Record<string, string>;
  /** The program and its arguments; the `start` task's command by default. */
  command?: string[];
  /**
   * Start from an empty environment (only PATH, HOME and DENO_DIR kept) instead of the
   * inherited one, so nothing the test runner has set reaches the gateway.
   */
  clearEnv?: boolean;
}

/** A running gateway process. */
export interface GatewayProcess {
  child: Deno.ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** stdout and stderr so far, one after the other. */
  output(): string;
  /** Waits until stderr matches `pattern` (or the process exits: then it throws). */
  waitForLog(pattern: RegExp, deadlineMs?: number): Promise<RegExpExecArray>;
  /**
   * Waits for the "Listening" line and returns its port (60 s by default: an embedded first
   * start on a loaded machine may need more).
   */
  port(deadlineMs?: number): Promise<number>;
  /** Waits for the process to end by itself (its output fully read); returns the exit code. */
  exited(): Promise<number>;
  /** Sends `signal` and returns the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

import { freePort } from "./ports.ts";
import { waitUntil } from "./wait.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * `deno task start` as a direct command (the task's own permission flags, so a test fails
 * when they fall short), without the task runner between the test and the signals it sends.
 */
function startTask(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`));
  const [deno, ...args] = String(config.tasks.start).split(/\s+/);
  if (deno !== "deno") throw new Error(`Unexpected start task: ${config.tasks.start}`);
  return [Deno.execPath(), ...args.map((a) => a.endsWith(".ts") ? `${ROOT}${a}` : a)];
}

/** Starts a gateway process. */
export function spawnGateway(options: SpawnOptions): GatewayProcess {
  const [cmd, ...args] = options.command ?? startTask();
  const base: Record<string, string> = {};
  if (options.clearEnv) {
    for (const key of ["PATH", "HOME", "DENO_DIR"]) {
      const value = Deno.env.get(key);
      if (value !== undefined) base[key] = value;
    }
  }
  const child = new Deno.Command(cmd!, {
    args,
    clearEnv: options.clearEnv ?? false,
    env: { ...base, LOG_LEVEL: "info", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let out = "";
  let err = "";
  let exited = false;
  const pump = async (stream: ReadableStream<Uint8Array>, add: (s: string) => void) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) add(chunk);
  };
  const pumped = Promise.all([
    pump(child.stdout, (s) => out += s),
    pump(child.stderr, (s) => err += s),
  ]);
  const status = child.status.then(async (s) => {
    await pumped;
    exited = true;
    return s;
  });

  const waitForLog = async (pattern: RegExp, deadlineMs = 60_000): Promise<RegExpExecArray> => {
    let m: RegExpExecArray | null = null;
    await waitUntil(
      () => {
        m = pattern.exec(err);
        if (!m && exited) {
          throw new Error(`Process exited before logging ${pattern}:\n${out}\n${err}`);
        }
        return m !== null;
      },
      `the process to log ${pattern}`,
      deadlineMs,
    );
    return m!;
  };
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!exited) {
      try {
        child.kill(signal);
      } catch {
        // already gone
      }
    }
    return (await status).code;
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    output: () => out + err,
    waitForLog,
    async port(deadlineMs?: number) {
      const m = await waitForLog(/"msg":"Listening".*?"port":(\d+)/, deadlineMs);
      return Number(m[1]);
    },
    stop,
    exited: async () => (await status).code,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}

/** Options for {@linkcode spawnLocalGateway}. */
export interface LocalGatewayOptions {
  databaseUrl: string;
  /** DATA_DIR; unset: the gateway's default. */
  dataDir?: string;
  /** The one API token it accepts. */
  token: string;
  /** More environment; it wins over the defaults (MQTT_BROKER_URL included). */
  env?: Record<string, string>;
  command?: string[];
}

/**
 * Starts a gateway on 127.0.0.1 at a port the OS picks, with a broker URL nothing listens
 * on unless `env` names one: the set-up shared by the process tests and the benches.
 * `await gw.port()` waits for it to listen.
 */
export function spawnLocalGateway(options: LocalGatewayOptions): GatewayProcess {
  return spawnGateway({
    command: options.command,
    env: {
      DATABASE_URL: options.databaseUrl,
      ...(options.dataDir === undefined ? {} : { DATA_DIR: options.dataDir }),
      HOST: "127.0.0.1",
      PORT: "0",
      API_TOKENS: options.token,
      MQTT_BROKER_URL: `mqtt://127.0.0.1:${freePort()}`,
      ...options.env,
    },
  });
}
