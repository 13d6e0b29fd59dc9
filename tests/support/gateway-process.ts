/**
 * A gateway run as its own process (`deno run main.ts`), as an operator would start it, with
 * a clean environment and every line it writes to stdout and stderr kept for the test.
 */
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** A spawned gateway. */
export interface GatewayProcess {
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves with the HTTP port once the gateway logs that it listens. */
  listening(): Promise<number>;
  /** Resolves with the first match of `pattern` in the output; rejects if the process ends. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray>;
  /** Resolves with the exit code once the process ends by itself. */
  exited(): Promise<number>;
  /** SIGTERM, then waits for the exit; returns the exit code. */
  stop(): Promise<number>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `main.ts` with only `env` (plus PATH/HOME/DENO_DIR) in its environment. */
export function spawnGateway(env: Record<string, string>): GatewayProcess {
  const base: Record<string, string> = {};
  for (const key of ["PATH", "HOME", "DENO_DIR"]) {
    const value = Deno.env.get(key);
    if (value !== undefined) base[key] = value;
  }
  const child = new Deno.Command("deno", {
    args: ["run", "--allow-all", "main.ts"],
    cwd: ROOT,
    clearEnv: true,
    env: { ...base, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  const changed = new Set<() => void>();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      for (const fn of changed) fn();
    }
  };
  const pumped = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status.then(async (s) => {
    await pumped;
    for (const fn of changed) fn();
    return s.code;
  });
  let done = false;
  status.then(() => (done = true));

  const waitFor = (pattern: RegExp) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(text);
        if (m) {
          changed.delete(check);
          resolve(m);
        } else if (done) {
          changed.delete(check);
          reject(new Error(`Gateway exited before printing ${pattern}:\n${text}`));
        }
      };
      changed.add(check);
      check();
    });
  const listening = async () => Number((await waitFor(/"msg":"Listening"[^\n]*"port":(\d+)/))[1]);

  const stop = async () => {
    if (!done) {
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    }
    return await status;
  };
  return {
    output: () => text,
    listening,
    waitFor,
    exited: () => status,
    stop,
    async [Symbol.asyncDispose]() {
      if (!done) {
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      }
      await status;
    },
  };
}
