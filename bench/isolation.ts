/**
 * Fleet isolation at the shore: an innocent vessel's write-to-applied time (envelope timestamp,
 * set as the change is made and published, to the inbox row's `applied_at`) at a paced load,
 * first alone, then while hostile vessels attack the same shore gateway process: poison the
 * database refuses (a trigger stands in for any such value, see tests/support/poison.ts),
 * seqs far past the window, new epochs, reused seqs under new messageIds, and gaps never filled.
 * Goal: p50 and p99 under attack at most 2× the unloaded ones.
 *
 * A third phase between the two sends the attack's volume as honest changes (the same number of
 * vessels at the same rate): on a 2-core machine shared with other work, any second stream
 * slows the innocent one by taking CPU, and the attacked phase against this one tells how much
 * of the slowdown is the hostility itself (a printed figure, no goal of its own).
 *
 * Standalone: `deno run --allow-all bench/isolation.ts` (BENCH_SECONDS, BENCH_RATE,
 * BENCH_HOSTILE, BENCH_HOSTILE_RATE override).
 */
import type mqtt from "mqtt";
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { spawnLocalGateway } from "../tests/support/process.ts";
import { rawClient, SimulatedVessel, topicOf } from "../tests/support/fleet.ts";
import { refusePoison } from "../tests/support/poison.ts";
import { type BenchRow, percentile } from "./types.ts";
import type { Sql } from "../db/connection.ts";
import type { Envelope } from "../sync/protocol.ts";

const SECONDS = Number(Deno.env.get("BENCH_SECONDS") ?? "20");
const RATE = Number(Deno.env.get("BENCH_RATE") ?? "20");
const HOSTILE = Number(Deno.env.get("BENCH_HOSTILE") ?? "4");
const HOSTILE_RATE = Number(Deno.env.get("BENCH_HOSTILE_RATE") ?? "50");

/** Publishes `make()` every `1000 / rate` ms for SECONDS. */
async function pace(client: mqtt.MqttClient, rate: number, make: () => Envelope) {
  const until = performance.now() + SECONDS * 1000;
  const sent: Promise<unknown>[] = [];
  while (performance.now() < until) {
    const e = make();
    sent.push(client.publishAsync(topicOf(e), JSON.stringify(e), { qos: 1 }));
    await new Promise((r) => setTimeout(r, 1000 / rate));
  }
  await Promise.all(sent);
}

/** One hostile change: mostly poison, the rest sequence abuse. */
function attack(v: SimulatedVessel): Envelope {
  const e = v.create();
  const roll = Math.random();
  if (roll < 0.5) return { ...e, data: { ...e.data, title: "poison" } };
  if (roll < 0.6) return { ...e, seq: Number.MAX_SAFE_INTEGER };
  if (roll < 0.7) return { ...e, seq: e.seq + 50_000 + Math.floor(Math.random() * 40_000) };
  if (roll < 0.8) return { ...e, epoch: crypto.randomUUID() };
  if (roll < 0.9) return { ...e, seq: 1, messageId: crypto.randomUUID() };
  return { ...e, seq: e.seq + 2 }; // a gap that is never filled
}

async function latencies(sql: Sql, vesselId: string) {
  const ms = (await sql<{ ms: number }[]>`
    select extract(epoch from applied_at - changed_at)::float8
      * 1000 as ms
    from shore_inbox where vessel_id = ${vesselId} and applied_at is not null`)
    .map((r) => r.ms).sort((a, b) => a - b);
  return { n: ms.length, p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) };
}

async function applied(sql: Sql, vessel: SimulatedVessel) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`
      select coalesce(max(last_seq), 0)::int8 as n from shore_positions
      where vessel_id = ${vessel.vesselId} and epoch = ${vessel.epoch}`;
    if (Number(row!.n) >= vessel.seq) return;
    if (Date.now() > deadline) throw new Error(`${vessel.vesselId} stuck at ${row!.n}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Runs the unloaded and the attacked phase on one shore gateway; returns the rows. */
export async function run(): Promise<BenchRow[]> {
  await using db = await freshDatabase({ migrated: false });
  await using broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-bench-isolation-" });
  const gateway = spawnLocalGateway({
    databaseUrl: db.url,
    dataDir,
    token: "bench-token-0123456789abcdef",
    env: { ROLE: "shore", VESSEL_ID: "shore-0", MQTT_BROKER_URL: broker.url },
  });
  try {
    await gateway.waitForLog(/"msg":"MQTT connected"/);
    await new Promise((r) => setTimeout(r, 500));
    await refusePoison(db.sql);
    const client = await rawClient(broker.url);

    const alone = new SimulatedVessel("innocent-alone");
    await pace(client, RATE, () => alone.mixed());
    await applied(db.sql, alone);
    const base = await latencies(db.sql, alone.vesselId);

    const busy = new SimulatedVessel("innocent-busy");
    const honest = Array.from({ length: HOSTILE }, (_, i) => new SimulatedVessel(`honest-${i}`));
    const honestClients = await Promise.all(honest.map(() => rawClient(broker.url)));
    await Promise.all([
      pace(client, RATE, () => busy.mixed()),
      ...honest.map((v, i) => pace(honestClients[i]!, HOSTILE_RATE, () => v.mixed())),
    ]);
    await applied(db.sql, busy);
    const loaded = await latencies(db.sql, busy.vesselId);
    await Promise.all(honestClients.map((c) => c.endAsync()));

    const attacked = new SimulatedVessel("innocent-attacked");
    const hostile = Array.from({ length: HOSTILE }, (_, i) => new SimulatedVessel(`hostile-${i}`));
    const hostileClients = await Promise.all(hostile.map(() => rawClient(broker.url)));
    await Promise.all([
      pace(client, RATE, () => attacked.mixed()),
      ...hostile.map((v, i) => pace(hostileClients[i]!, HOSTILE_RATE, () => attack(v))),
    ]);
    await applied(db.sql, attacked);
    const hit = await latencies(db.sql, attacked.vesselId);
    const [dead] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from shore_dead_letters where vessel_id like 'hostile-%'`;
    const [innocentDead] = await db.sql<{ n: number }[]>`
      select count(*)::int as n from shore_dead_letters where vessel_id like 'innocent-%'`;
    console.error(
      `isolation: alone p50 ${base.p50.toFixed(1)} ms p99 ${base.p99.toFixed(1)} ms (${base.n}); ` +
        `honest load p50 ${loaded.p50.toFixed(1)} ms p99 ${
          loaded.p99.toFixed(1)
        } ms (${loaded.n}); ` +
        `attacked p50 ${hit.p50.toFixed(1)} ms p99 ${hit.p99.toFixed(1)} ms (${hit.n}); ` +
        `hostile dead letters ${dead!.n}, innocent dead letters ${innocentDead!.n}`,
    );
    await Promise.all([client, ...hostileClients].map((c) => c.endAsync()));
    const label = `${RATE}/s, ${HOSTILE} hostile × ${HOSTILE_RATE}/s, ${SECONDS} s`;
    const row = (figure: string, value: number, baseline: number): BenchRow => ({
      figure,
      value,
      baseline,
      ratio: value / baseline,
      goal: "≤ 2×",
      holds: value <= 2 * baseline,
    });
    return [
      row(`innocent write-to-applied p50 under attack vs alone (ms), ${label}`, hit.p50, base.p50),
      row(`innocent write-to-applied p99 under attack vs alone (ms), ${label}`, hit.p99, base.p99),
      {
        figure: `innocent write-to-applied p50 under attack vs under the same honest load (ms)`,
        value: hit.p50,
        baseline: loaded.p50,
        ratio: hit.p50 / loaded.p50,
        goal: "",
        holds: null,
      },
      {
        figure: "innocent changes dead-lettered under attack",
        value: innocentDead!.n,
        baseline: 0,
        ratio: null,
        goal: "0",
        holds: innocentDead!.n === 0,
      },
    ];
  } finally {
    await gateway.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

if (import.meta.main) {
  for (const r of await run()) console.log(JSON.stringify(r));
}
