/**
 * Catch-up: one page of 1,000 from a 1,000,000-change log (`GET /catchup` on a gateway
 * process, pages at random positions), and a full replay of 100,000 changes through the
 * catch-up re-publisher next to the rate the engine drained the same backlog in this run.
 *
 * `BENCH_CATCHUP_LOG` and `BENCH_REPLAY_N` shrink the runs for a quick look.
 */
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { freePort } from "../tests/support/ports.ts";
import { spawnGateway } from "../tests/support/process.ts";
import { type BenchRow, percentile } from "./types.ts";
import { benchEngine, envNumber, fillChangeLog, nextEvent } from "./common.ts";

const TOKEN = "bench-token-0123456789abcdef";
const PAGE = 1_000;
const PAGES = 50;

async function pageRows(logSize: number): Promise<BenchRow[]> {
  await using db = await freshDatabase();
  const filled = performance.now();
  await fillChangeLog(db.sql, logSize, true);
  await db.sql`analyze changes`;
  console.error(
    `catchup: ${logSize} changes logged in ${((performance.now() - filled) / 1000).toFixed(1)} s`,
  );
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-bench-catchup-" });
  // The engine's routes without a broker: reading the log needs none.
  await using gw = spawnGateway({
    env: {
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      PORT: "0",
      API_TOKENS: TOKEN,
      VESSEL_ID: "bench-catchup",
      MQTT_BROKER_URL: `mqtt://127.0.0.1:${freePort()}`,
      OUTBOX_MAX_PENDING: String(logSize * 2),
    },
  });
  try {
    const base = `http://127.0.0.1:${await gw.port()}/catchup`;
    const headers = { authorization: `Bearer ${TOKEN}` };
    const page = async (since: number) => {
      const t = performance.now();
      const res = await fetch(`${base}?since=${since}&limit=${PAGE}`, { headers });
      const body = await res.json();
      const ms = performance.now() - t;
      if (res.status !== 200 || body.changes.length !== Math.min(PAGE, logSize - since)) {
        throw new Error(`GET /catchup?since=${since} answered ${res.status}`);
      }
      return ms;
    };
    for (let i = 0; i < 5; i++) await page(0); // warm-up: JIT, pool, plan cache
    const times: number[] = [];
    for (let i = 0; i < PAGES; i++) {
      times.push(await page(Math.floor(Math.random() * (logSize - PAGE))));
    }
    times.sort((a, b) => a - b);
    const p50 = percentile(times, 0.5);
    const p99 = percentile(times, 0.99);
    console.error(`catchup: page of ${PAGE} p50 ${p50.toFixed(1)} ms, max ${p99.toFixed(1)} ms`);
    return [
      {
        figure: `catch-up page of ${PAGE} from a ${logSize}-change log, HTTP, median (ms)`,
        value: p50,
        baseline: null,
        ratio: null,
        goal: "≤ 20 ms",
        holds: p50 <= 20,
      },
      {
        figure: `catch-up page of ${PAGE}, slowest of ${PAGES} (ms)`,
        value: p99,
        baseline: null,
        ratio: null,
        goal: "",
        holds: null,
      },
    ];
  } finally {
    await gw.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

async function replayRows(n: number): Promise<BenchRow[]> {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const { engine, gate } = benchEngine(db.sql, broker.url, "bench-replay");
  const connected = nextEvent(engine, (e) => e.type === "connected");
  engine.start();
  await connected;
  try {
    // The backlog, drained by the engine: the baseline.
    await fillChangeLog(db.sql, n);
    let published = 0;
    const drained = new Promise<void>((resolve) =>
      engine.onEvent((e) => e.type === "published" && ++published === n && resolve())
    );
    const drainStart = performance.now();
    gate.added(n);
    await drained;
    const drainS = (performance.now() - drainStart) / 1000;

    // The same changes again, as a shore's catch-up request would have them re-published.
    const replayStart = performance.now();
    let replayed = 0;
    for (let since = 0; since < n; since += 10_000) {
      replayed += (await engine.catchup.republish({ since, limit: 10_000 })).published;
    }
    const replayS = (performance.now() - replayStart) / 1000;
    if (replayed !== n) throw new Error(`Replayed ${replayed} of ${n}`);
    const drainRate = n / drainS;
    const replayRate = n / replayS;
    console.error(
      `replay: drain ${drainRate.toFixed(0)}/s, catch-up replay ${replayRate.toFixed(0)}/s`,
    );
    return [{
      figure: `full catch-up replay of ${n} (msg/s; baseline backlog drain in this run)`,
      value: replayRate,
      baseline: drainRate,
      ratio: replayRate / drainRate,
      goal: "≥ 0.9 of drain",
      holds: replayRate / drainRate >= 0.9,
    }];
  } finally {
    await engine.stop();
  }
}

/** Runs the page and replay benches. */
export async function run(): Promise<BenchRow[]> {
  const page = await pageRows(envNumber("BENCH_CATCHUP_LOG", 1_000_000));
  const replay = await replayRows(envNumber("BENCH_REPLAY_N", 100_000));
  return [...page, ...replay];
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
