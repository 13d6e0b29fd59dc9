/**
 * Slow authenticated uploads against a real gateway process: `BENCH_SLOW_CONNECTIONS`
 * connections each declare a 1 MiB JSON body and send 5 bytes of it, then stall. Prints the
 * gateway's RSS under the attack against its RSS idle, and how long `/health` takes
 * meanwhile against idle. `deno run -A bench/slow-uploads.ts` runs it alone.
 */
import { freshDatabase } from "../tests/support/pg.ts";
import { spawnLocalGateway } from "../tests/support/process.ts";
import type { BenchRow } from "./types.ts";
import { envNumber } from "./common.ts";

const CONNECTIONS = envNumber("BENCH_SLOW_CONNECTIONS", 1000);
const HOLD_S = envNumber("BENCH_SLOW_HOLD_S", 8);
const TOKEN = "slow-uploads-bench-token-0123456789";

/** Resident set size of `pid`, in MiB. */
function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function healthMs(base: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${base}/health`);
  await res.body?.cancel();
  return performance.now() - t;
}

const encoder = new TextEncoder();

/** Opens one connection that declares a 1 MiB body and sends its first 5 bytes. */
async function stall(port: number, conns: Deno.TcpConn[]): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conns.push(conn);
  await conn.write(encoder.encode(
    `POST /api/crew HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${1024 * 1024}\r\n\r\n{"nam`,
  ));
}

/** Measures; returns the RSS ratio and the /health time ratio. */
export async function run(): Promise<BenchRow[]> {
  await using db = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-bench-slow-" });
  const conns: Deno.TcpConn[] = [];
  try {
    await using gw = spawnLocalGateway({ databaseUrl: db.url, dataDir, token: TOKEN });
    const port = await gw.port();
    const base = `http://127.0.0.1:${port}`;
    const pid = gw.child.pid;
    for (let i = 0; i < 5; i++) await healthMs(base);
    const idleHealth = await healthMs(base);
    const idleRss = rssMiB(pid);

    for (let i = 0; i < CONNECTIONS; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, CONNECTIONS - i) }, () => stall(port, conns)),
      );
    }
    let peakRss = rssMiB(pid);
    let worstHealth = 0;
    const until = performance.now() + HOLD_S * 1000;
    while (performance.now() < until) {
      worstHealth = Math.max(worstHealth, await healthMs(base));
      peakRss = Math.max(peakRss, rssMiB(pid));
      await new Promise((r) => setTimeout(r, 250));
    }
    console.error(
      `slow-uploads: ${CONNECTIONS} stalled uploads for ${HOLD_S} s: RSS ${idleRss.toFixed(1)} → ` +
        `${peakRss.toFixed(1)} MiB, /health ${idleHealth.toFixed(1)} → ${
          worstHealth.toFixed(1)
        } ms`,
    );
    return [
      {
        figure: `RSS MiB, ${CONNECTIONS} stalled 1 MiB uploads (baseline: idle)`,
        value: peakRss,
        baseline: idleRss,
        ratio: peakRss / idleRss,
        goal: "≤ 2× idle",
        holds: peakRss / idleRss <= 2,
      },
      {
        figure: `/health ms, worst under ${CONNECTIONS} stalled uploads (baseline: idle)`,
        value: worstHealth,
        baseline: idleHealth,
        ratio: worstHealth / idleHealth,
        goal: "",
        holds: null,
      },
    ];
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // closed by the gateway already
      }
    }
    await Deno.remove(dataDir, { recursive: true });
  }
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
