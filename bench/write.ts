/**
 * HTTP create rate and latency at 16 concurrent clients against a real PostgreSQL, next to
 * the raw rate of the same write (record + change row, the record store's one statement)
 * issued directly with `postgres` at the same concurrency, in the same run.
 *
 * The gateway runs in a process of its own (as in production), so the load generator does
 * not share its event loop. Goal: HTTP ≥ 0.8 of raw, p99 ≤ 10 ms.
 */
import { createRecordStore } from "../db/records.ts";
import { OutboxGate } from "../db/outbox-gate.ts";
import { freshDatabase } from "../tests/support/pg.ts";
import { freePort } from "../tests/support/ports.ts";
import { spawnGateway } from "../tests/support/process.ts";
import { type BenchRow, percentile } from "./types.ts";

const CONCURRENCY = 16;
const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "5");
const TOKEN = "bench-token-0123456789abcdef";

interface Sample {
  rate: number;
  p50: number;
  p99: number;
  count: number;
}

/** Runs `op` from `CONCURRENCY` loops for `seconds`; returns rate and latency. */
async function load(op: (i: number) => Promise<void>, seconds: number): Promise<Sample> {
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  let n = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (performance.now() < until) {
      const t = performance.now();
      await op(n++);
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    rate: latencies.length / elapsed,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    count: latencies.length,
  };
}

const body = (i: number) =>
  JSON.stringify({
    title: `Inspect bilge pump ${i}`,
    equipmentId: "pump-7",
    description: "Vibration above threshold at 1,200 rpm; check mounts and impeller.",
    priority: 2,
  });

/** Measures raw and HTTP writes; returns the rows. */
export async function run(): Promise<BenchRow[]> {
  await using db = await freshDatabase({ max: CONCURRENCY });
  const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(1e12) });
  const raw = (i: number) => store.create("work_orders", JSON.parse(body(i))).then(() => {});

  const dataDir = await Deno.makeTempDir({ prefix: "bosun-bench-" });
  await using gw = spawnGateway({
    env: {
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      HOST: "127.0.0.1",
      PORT: "0",
      API_TOKENS: TOKEN,
      MQTT_BROKER_URL: `mqtt://127.0.0.1:${freePort()}`,
      LOCAL_MODE: "false",
    },
  });
  const url = `http://127.0.0.1:${await gw.port()}/api/work_orders`;
  const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
  const http = async (i: number) => {
    const res = await fetch(url, { method: "POST", headers, body: body(i) });
    if (res.status !== 201) throw new Error(`POST answered ${res.status}: ${await res.text()}`);
    await res.body?.cancel();
  };

  try {
    // Warm both paths (JIT, connection pools), then measure raw, HTTP, raw again and take the
    // better raw run, so a slow moment on the shared machine does not flatter the ratio.
    await load(raw, 1);
    await load(http, 1);
    const raw1 = await load(raw, SECONDS);
    const viaHttp = await load(http, SECONDS);
    const raw2 = await load(raw, SECONDS);
    const rawBest = raw1.rate >= raw2.rate ? raw1 : raw2;
    console.error(
      `write: raw ${raw1.rate.toFixed(0)}/s and ${raw2.rate.toFixed(0)}/s, ` +
        `HTTP ${viaHttp.rate.toFixed(0)}/s (${viaHttp.count} requests)`,
    );
    const ratio = viaHttp.rate / rawBest.rate;
    return [
      {
        figure: `create rate, HTTP vs raw postgres, ${CONCURRENCY} clients (/s)`,
        value: viaHttp.rate,
        baseline: rawBest.rate,
        ratio,
        goal: "≥ 0.8 of raw",
        holds: ratio >= 0.8,
      },
      {
        figure: `create p50, HTTP vs raw (ms)`,
        value: viaHttp.p50,
        baseline: rawBest.p50,
        ratio: viaHttp.p50 / rawBest.p50,
        goal: "",
        holds: null,
      },
      {
        figure: `create p99, HTTP vs raw (ms)`,
        value: viaHttp.p99,
        baseline: rawBest.p99,
        ratio: viaHttp.p99 / rawBest.p99,
        goal: "≤ 10 ms",
        holds: viaHttp.p99 <= 10,
      },
    ];
  } finally {
    await gw.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}
