/**
 * tests/support/proxy.ts in a process of its own, for benches that measure an emulated link.
 *
 * Why: the proxy times every segment with its own timers. On the bench's event loop, beside a
 * vessel engine and a shore ingest, those timers fire late whenever the loop is busy (claims,
 * frame encoding, applying, garbage collection), and the emulated link then carries less than
 * the link it emulates, for reasons that are the machine's, not the link's. A process of its own
 * has a loop that does nothing else, started at a higher scheduling priority where the OS
 * allows it (`nice`: a link does not slow down when the machine is busy).
 *
 * The parent talks to it over stdin/stdout, one JSON object a line: `{"mode": ProxyMode}` sets
 * the mode, `{"bytes": true}` asks for the bytes delivered; each gets one answer line.
 * Run directly: `deno run --allow-net tests/support/proxy-process.ts <target port>`.
 */
import { type ProxyMode, startProxy } from "./proxy.ts";
import { withDeadline } from "./wait.ts";

/** A proxy running in a child process: the same modes and counters, asked for over a pipe. */
export interface ProxyProcess {
  port: number;
  url(scheme?: string): string;
  /** Sets the mode; resolves once the child has applied it. */
  setMode(mode: ProxyMode): Promise<void>;
  /** Bytes delivered so far: `up` client → target, `down` target → client. */
  bytes(): Promise<{ up: number; down: number }>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode startProxyProcess}. */
export interface ProxyProcessOptions {
  /** Where connections go. */
  target: { port: number };
  /** Niceness for the child, where the OS allows it (lower runs first); default -5. */
  nice?: number;
}

const ANSWER_DEADLINE_MS = 10_000;

/** Starts the proxy process in `pass` mode and waits until it listens. */
export async function startProxyProcess(options: ProxyProcessOptions): Promise<ProxyProcess> {
  const script = new URL(import.meta.url).pathname;
  const child = new Deno.Command("nice", {
    args: [
      "-n",
      String(options.nice ?? -5),
      Deno.execPath(),
      "run",
      "--allow-net",
      script,
      String(options.target.port),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const lines = readLines(child.stdout);
  // One request at a time: each answer is the next line.
  let queue = Promise.resolve();
  const ask = <T>(request: unknown): Promise<T> => {
    const answer = queue.then(async () => {
      await writer.write(new TextEncoder().encode(JSON.stringify(request) + "\n"));
      const line = await withDeadline(lines.next(), "the proxy's answer", ANSWER_DEADLINE_MS);
      if (line.done) throw new Error("The proxy process exited");
      return JSON.parse(line.value) as T;
    });
    queue = answer.then(() => {}, () => {});
    return answer;
  };
  const first = await withDeadline(lines.next(), "the proxy's port", ANSWER_DEADLINE_MS);
  if (first.done) throw new Error("The proxy process exited before listening");
  const { port } = JSON.parse(first.value) as { port: number };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await writer.close().catch(() => {});
    try {
      child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await child.status;
  };
  return {
    port,
    url: (scheme = "mqtt") => `${scheme}://127.0.0.1:${port}`,
    async setMode(mode) {
      await ask({ mode });
    },
    bytes: () => ask<{ up: number; down: number }>({ bytes: true }),
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let at: number;
    while ((at = rest.indexOf("\n")) >= 0) {
      yield rest.slice(0, at);
      rest = rest.slice(at + 1);
    }
  }
}

if (import.meta.main) {
  const proxy = startProxy({ target: { port: Number(Deno.args[0]) } });
  const out = Deno.stdout.writable.getWriter();
  const say = (value: unknown) => out.write(new TextEncoder().encode(JSON.stringify(value) + "\n"));
  await say({ port: proxy.port });
  for await (const line of readLines(Deno.stdin.readable)) {
    const request = JSON.parse(line) as { mode?: ProxyMode; bytes?: boolean };
    if (request.mode) {
      proxy.setMode(request.mode);
      await say({ ok: true });
    } else await say({ ...proxy.bytes });
  }
  await proxy.close();
}
