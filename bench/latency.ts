/**
 * Commit-to-PUBACK latency at a steady write rate: creates through the record store paced at
 * `BENCH_LATENCY_RATE` per second (open loop: a slow write does not slow the schedule), an
 * engine publishing to a local Mosquitto; for every change, the time from its create
 * returning (committed) to the broker's PUBACK of its publish.
 */
import { createRecordStore } from "../db/vessel/records.ts";
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { type BenchRow, percentile } from "./types.ts";
import { benchEngine, envNumber, nextEvent, until } from "./common.ts";

const RATE = envNumber("BENCH_LATENCY_RATE", 500);
const SECONDS = envNumber("BENCH_LATENCY_SECONDS", 10);

/** Measures; returns p50 and p99 rows. */
export async function run(): Promise<BenchRow[]> {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const { engine, gate } = benchEngine(db.sql, broker.url, "bench-latency");
  const store = createRecordStore({ sql: db.sql, gate });
  const pubackAt = new Map<number, number>();
  engine.onEvent((e) => e.type === "published" && pubackAt.set(e.seq, performance.now()));
  const connected = nextEvent(engine, (e) => e.type === "connected");
  engine.start();
  await connected;
  try {
    const committedAt = new Map<string, number>();
    const write = async (i: number, measured: boolean) => {
      const r = await store.create("work_orders", {
        title: `Inspect bilge pump ${i}`,
        equipmentId: "pump-7",
        priority: 2,
      });
      if (measured) committedAt.set(r.id, performance.now());
    };
    // One second of warm-up at the same rate, then the measured run.
    const writes: Promise<void>[] = [];
    const total = RATE * (SECONDS + 1);
    const start = performance.now();
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      writes.push(write(i, i >= RATE));
    }
    await Promise.all(writes);
    const offered = (total - RATE) / ((performance.now() - start) / 1000 - 1);
    await until(() => Promise.resolve(pubackAt.size >= total), `all ${total} PUBACKs`);
    const rows = await db.sql<{ id: string; seq: number }[]>`
      select record_id::text as id, seq from changes`;
    const ms = rows.filter((r) => committedAt.has(r.id))
      .map((r) => pubackAt.get(r.seq)! - committedAt.get(r.id)!)
      .sort((a, b) => a - b);
    const p50 = percentile(ms, 0.5);
    const p99 = percentile(ms, 0.99);
    console.error(
      `latency: ${ms.length} changes at ${offered.toFixed(0)}/s offered: ` +
        `commit-to-PUBACK p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, ` +
        `max ${ms.at(-1)!.toFixed(1)} ms`,
    );
    return [
      {
        figure: `commit-to-PUBACK p50 at ${RATE} writes/s (ms)`,
        value: p50,
        baseline: null,
        ratio: null,
        goal: "",
        holds: null,
      },
      {
        figure: `commit-to-PUBACK p99 at ${RATE} writes/s (ms)`,
        value: p99,
        baseline: null,
        ratio: null,
        goal: "≤ 50 ms",
        holds: p99 <= 50,
      },
    ];
  } finally {
    await engine.stop();
  }
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
