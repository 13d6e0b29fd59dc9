/**
 * First start and warm start: the time from spawning `deno task start`'s command to the first
 * `200` on `/health`, for a fresh DATA_DIR (PGlite's initdb runs) and an existing one, with an
 * empty DENO_DIR (every npm package downloaded) and a warm one; and where the time goes, from
 * the gateway's own log lines.
 *
 * `BENCH_GATEWAY_ROOT` points at another checkout (to measure an older commit the same way);
 * `BENCH_COLD=0` skips the empty-DENO_DIR run (it downloads the runtime's npm graph).
 * Run alone: `deno run -A bench/first-start.ts`.
 */
import type { BenchRow } from "./types.ts";
import { freePort } from "../tests/support/ports.ts";

const ROOT = Deno.env.get("BENCH_GATEWAY_ROOT") ?? new URL("../", import.meta.url).pathname;

interface Start {
  /** Spawn to first 200 on /health. */
  ms: number;
  /** Spawn to the gateway's first log line (module loading, and downloading when cold). */
  firstLogMs: number;
  /** The embedded database's own open time ("Embedded PostgreSQL open" ms). */
  dbOpenMs: number;
  /** From the database open to "Listening" (migrations, token, role). */
  toListenMs: number;
  /** npm packages in DENO_DIR afterwards (cold runs only). */
  npmPackages?: number;
  npmBytes?: number;
}

function startCommand(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const [, ...args] = String(config.tasks.start).split(/\s+/);
  return args.map((a) => a.endsWith(".ts") ? `${ROOT}/${a}` : a);
}

/** One start: spawn, poll /health until 200, read the log, stop. */
async function startOnce(dataDir: string, denoDir?: string): Promise<Start> {
  const port = freePort();
  const t0 = performance.now();
  const wall0 = Date.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: startCommand(),
    cwd: ROOT,
    env: {
      DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      PORT: String(port),
      API_TOKENS: "first-start-bench-token-0123456789",
      MQTT_BROKER_URL: `mqtt://127.0.0.1:${freePort()}`,
      LOG_LEVEL: "info",
      NO_COLOR: "1",
      ...(denoDir ? { DENO_DIR: denoDir } : {}),
    },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let err = "";
  const pumped = (async () => {
    for await (const c of child.stderr.pipeThrough(new TextDecoderStream())) err += c;
  })();
  let ms = NaN;
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      await res.body?.cancel();
      if (res.status === 200) {
        ms = performance.now() - t0;
        break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill("SIGTERM");
  await child.status;
  await pumped;
  if (Number.isNaN(ms)) throw new Error(`No 200 on /health within 10 min:\n${err}`);
  const lines = err.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const at = (msg: string) => {
    const line = lines.find((l) => l.msg === msg);
    return line ? Date.parse(line.t) - wall0 : NaN;
  };
  const opened = lines.find((l) => l.msg === "Embedded PostgreSQL open");
  return {
    ms: Math.round(ms),
    firstLogMs: lines[0] ? Date.parse(lines[0].t) - wall0 : NaN,
    dbOpenMs: opened?.ms ?? NaN,
    toListenMs: at("Listening") - at("Embedded PostgreSQL open"),
  };
}

async function npmCache(denoDir: string): Promise<{ packages: number; bytes: number }> {
  const out = await new Deno.Command("du", { args: ["-sb", `${denoDir}/npm`] }).output();
  const bytes = Number(new TextDecoder().decode(out.stdout).split("\t")[0]);
  let packages = 0;
  const walk = async (dir: string, depth: number) => {
    for await (const e of Deno.readDir(dir)) {
      if (!e.isDirectory) continue;
      if (e.name.startsWith("@") && depth === 0) await walk(`${dir}/${e.name}`, 0);
      else packages++;
    }
  };
  await walk(`${denoDir}/npm/registry.npmjs.org`, 0);
  return { packages, bytes };
}

const row = (figure: string, value: number): BenchRow => ({
  figure,
  value,
  baseline: null,
  ratio: null,
  goal: "",
  holds: null,
});

/** Measures the three starts; every figure is one run (they are seconds, not microseconds). */
export async function run(): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const scratch = await Deno.makeTempDir({ prefix: "bosun-first-start-" });
  const add = (name: string, s: Start) => {
    rows.push(row(`${name}: ms to first 200 on /health`, s.ms));
    rows.push(row(`${name}: ms to first log line`, s.firstLogMs));
    if (!Number.isNaN(s.dbOpenMs)) rows.push(row(`${name}: ms opening PGlite`, s.dbOpenMs));
    rows.push(row(`${name}: ms from PGlite open to Listening`, s.toListenMs));
  };
  try {
    if (Deno.env.get("BENCH_COLD") !== "0") {
      const denoDir = `${scratch}/deno-dir`;
      const cold = await startOnce(`${scratch}/cold`, denoDir);
      add("fresh DATA_DIR, empty DENO_DIR", cold);
      const npm = await npmCache(denoDir);
      rows.push(row("empty DENO_DIR: npm packages fetched", npm.packages));
      rows.push(row("empty DENO_DIR: MB of npm packages", Math.round(npm.bytes / 1e5) / 10));
    }
    add("fresh DATA_DIR, warm DENO_DIR", await startOnce(`${scratch}/fresh`));
    add("existing DATA_DIR, warm DENO_DIR", await startOnce(`${scratch}/fresh`));
  } finally {
    await Deno.remove(scratch, { recursive: true });
  }
  return rows;
}

if (import.meta.main) {
  for (const r of await run()) console.log(`${r.figure.padEnd(62)} ${r.value}`);
}
