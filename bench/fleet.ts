/**
 * Fleet ingest: 50 simulated vessels × 2,000 changes (raw mqtt.js publishers sending valid
 * envelopes, seq in order, 32 in flight per vessel) into shore gateway processes on a real
 * Mosquitto and PostgreSQL: the apply rate, commit-to-applied latency p50/p99, and the same
 * with two shore instances in one shared-subscription group. Latency is measured twice: with
 * all changes offered at once (a backlog: latency is mostly queueing) and at a paced load
 * below capacity (BENCH_PACED_RATE changes/s fleet-wide for BENCH_PACED_SECONDS).
 *
 * "Commit" is the envelope's timestamp, set when the simulated vessel makes the change just
 * before publishing it; "applied" is the inbox row's `applied_at`. One machine's clock for
 * both. The run also checks that every change was applied exactly once.
 *
 * Standalone: `deno run --allow-all bench/fleet.ts` (BENCH_VESSELS, BENCH_CHANGES override).
 */
import type mqtt from "mqtt";
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { spawnLocalGateway } from "../tests/support/process.ts";
import { rawClient, SimulatedVessel, topicOf } from "../tests/support/fleet.ts";
import { type BenchRow, percentile } from "./types.ts";
import type { Sql } from "../db/connection.ts";

const VESSELS = Number(Deno.env.get("BENCH_VESSELS") ?? "50");
const CHANGES = Number(Deno.env.get("BENCH_CHANGES") ?? "2000");
const WINDOW = 32;
/** The paced phase: changes per second offered by the whole fleet, and for how long. */
const PACED_RATE = Number(Deno.env.get("BENCH_PACED_RATE") ?? "2000");
const PACED_SECONDS = Number(Deno.env.get("BENCH_PACED_SECONDS") ?? "10");

interface Sample {
  rate: number;
  publishRate: number;
  /** Latency with every change offered at once (a backlog drained as fast as it goes). */
  p50: number;
  p99: number;
  /** Latency at a paced load below capacity. */
  pacedP50: number;
  pacedP99: number;
  exactlyOnce: boolean;
}

/** Publishes one change every `intervalMs` for `seconds`, each as it is made. */
async function pace(client: mqtt.MqttClient, vessel: SimulatedVessel, intervalMs: number) {
  const until = performance.now() + PACED_SECONDS * 1000;
  // Spread the vessels' first changes over one interval so the fleet does not tick at once.
  await new Promise((r) => setTimeout(r, Math.random() * intervalMs));
  const sent: Promise<unknown>[] = [];
  while (performance.now() < until) {
    const e = vessel.mixed();
    sent.push(client.publishAsync(topicOf(e), JSON.stringify(e), { qos: 1 }));
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await Promise.all(sent);
}

/** Latency percentiles (ms) of the inbox rows of vessels named `prefix…`. */
async function latencies(sql: Sql, prefix: string) {
  const ms = (await sql<{ ms: number }[]>`
    select extract(epoch from applied_at - changed_at)::float8
      * 1000 as ms
    from shore_inbox where vessel_id like ${prefix + "%"}`).map((r) => r.ms).sort((a, b) => a - b);
  return { p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

/** Waits until shore has applied `total` changes of the vessels named `prefix…`. */
async function applied(sql: Sql, prefix: string, total: number) {
  for (;;) {
    const [row] = await sql<{ n: number }[]>`
      select coalesce(sum(last_seq), 0)::int8 as n from shore_positions
      where vessel_id like ${prefix + "%"}`;
    if (row!.n >= total) return;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Publishes one vessel's changes in seq order with `WINDOW` awaiting PUBACK. */
async function sail(client: mqtt.MqttClient, vessel: SimulatedVessel): Promise<void> {
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < CHANGES; i++) {
    const e = vessel.mixed();
    const p = client.publishAsync(topicOf(e), JSON.stringify(e), { qos: 1 });
    inFlight.add(p);
    p.finally(() => inFlight.delete(p));
    if (inFlight.size >= WINDOW) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
}

async function measure(shores: number): Promise<Sample> {
  await using db = await freshDatabase({ migrated: false });
  await using broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-bench-fleet-" });
  const gateways = Array.from({ length: shores }, (_, i) =>
    spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: "bench-token-0123456789abcdef",
      env: {
        ROLE: "shore",
        VESSEL_ID: `shore-${i}`,
        MQTT_BROKER_URL: broker.url,
        ...(shores > 1 ? { SHORE_SHARED_GROUP: "bench" } : {}),
      },
    }));
  try {
    for (const g of gateways) await g.waitForLog(/"msg":"MQTT connected"/);
    // The shore subscribes right after connecting; give the SUBACK a moment.
    await new Promise((r) => setTimeout(r, 500));
    const vessels = Array.from({ length: VESSELS }, (_, i) => new SimulatedVessel(`bench-${i}`));
    const clients = await Promise.all(vessels.map(() => rawClient(broker.url)));
    const total = VESSELS * CHANGES;
    const started = performance.now();
    await Promise.all(vessels.map((v, i) => sail(clients[i]!, v)));
    const published = performance.now();
    await applied(db.sql, "bench-", total);
    const [done] = await db.sql<{ at: Date }[]>`select max(applied_at) as at from shore_inbox`;
    const startedAt = Date.now() - (performance.now() - started);
    const elapsedS = (done!.at.getTime() - startedAt) / 1000;
    const backlog = await latencies(db.sql, "bench-");

    const paced = vessels.map((_, i) => new SimulatedVessel(`paced-${i}`));
    await Promise.all(paced.map((v, i) => pace(clients[i]!, v, (1000 * VESSELS) / PACED_RATE)));
    await applied(db.sql, "paced-", paced.reduce((n, v) => n + v.seq, 0));
    const steady = await latencies(db.sql, "paced-");

    const [tally] = await db.sql<{ applied: number; inbox: number }[]>`
      select (select sum(applied_count) from shore_positions)::int8 as applied,
        (select count(*) from shore_inbox)::int8 as inbox`;
    const sent = total + paced.reduce((n, v) => n + v.seq, 0);
    await Promise.all(clients.map((c) => c.endAsync()));
    return {
      rate: total / elapsedS,
      publishRate: total / ((published - started) / 1000),
      ...backlog,
      pacedP50: steady.p50,
      pacedP99: steady.p99,
      exactlyOnce: tally!.applied === sent && tally!.inbox === sent,
    };
  } finally {
    for (const g of gateways) await g.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** Runs one shore, then two in one group; returns the rows. */
export async function run(): Promise<BenchRow[]> {
  const one = await measure(1);
  console.error(
    `fleet: 1 shore ${one.rate.toFixed(0)}/s (published ${one.publishRate.toFixed(0)}/s)`,
  );
  const two = await measure(2);
  console.error(
    `fleet: 2 shores ${two.rate.toFixed(0)}/s (published ${two.publishRate.toFixed(0)}/s)`,
  );
  const label = `${VESSELS} vessels × ${CHANGES}`;
  const paced = `paced ${PACED_RATE}/s`;
  const row = (figure: string, value: number, baseline: number | null): BenchRow => ({
    figure,
    value,
    baseline,
    ratio: baseline === null ? null : value / baseline,
    goal: "",
    holds: null,
  });
  return [
    row(`shore apply rate, 1 shore, ${label}, vs publish rate (/s)`, one.rate, one.publishRate),
    row(`commit-to-applied p50, 1 shore, all at once (ms)`, one.p50, null),
    row(`commit-to-applied p99, 1 shore, all at once (ms)`, one.p99, null),
    row(`commit-to-applied p50, 1 shore, ${paced} (ms)`, one.pacedP50, null),
    row(`commit-to-applied p99, 1 shore, ${paced} (ms)`, one.pacedP99, null),
    row(`shore apply rate, 2 shores in one group, vs 1 shore (/s)`, two.rate, one.rate),
    row(`commit-to-applied p50, 2 shores, all at once, vs 1 shore (ms)`, two.p50, one.p50),
    row(`commit-to-applied p99, 2 shores, all at once, vs 1 shore (ms)`, two.p99, one.p99),
    row(`commit-to-applied p50, 2 shores, ${paced}, vs 1 shore (ms)`, two.pacedP50, one.pacedP50),
    row(`commit-to-applied p99, 2 shores, ${paced}, vs 1 shore (ms)`, two.pacedP99, one.pacedP99),
    {
      figure: "changes applied exactly once (1 shore, 2 shores)",
      value: Number(one.exactlyOnce) + Number(two.exactlyOnce),
      baseline: 2,
      ratio: (Number(one.exactlyOnce) + Number(two.exactlyOnce)) / 2,
      goal: "both runs",
      holds: one.exactlyOnce && two.exactlyOnce,
    },
  ];
}

if (import.meta.main) {
  for (const r of await run()) console.log(JSON.stringify(r));
}
