/**
 * Recovery after an outage: a vessel gateway and a shore gateway (processes of their own, as
 * in production) on one Mosquitto with persistence; the broker goes away, 100,000 changes are
 * committed on the vessel meanwhile, the broker comes back; the figure is the time from its
 * return until shore's ack covers every one of them (no change unacknowledged on the vessel).
 *
 * Then the duplicates: changes the shore received more than once (its
 * `bosun_shore_duplicates_total`), after a wait of one more `ACK_TIMEOUT_S` so a late re-send
 * would show. Every one of them crossed the link twice for nothing.
 *
 * Memory: both gateways' RSS is sampled every 5 s from the broker's return until the last ack
 * and printed as a series; the rows give each side's RSS before the return against the highest
 * seen while draining (flat memory: a backlog of any length is read from the database in pages,
 * never held whole).
 *
 * `BENCH_OUTAGE_N` sets the backlog (100,000; 1,000,000 is issue 13's 30-day voyage);
 * `BENCH_OUTAGE_HOLD_S` how long the broker stays away after the backlog committed (0: only
 * the restart; 600 with 50,000 is issue 15's ten-minute outage, whose re-send timers expire many
 * times over while nothing can be sent); `BENCH_OUTAGE_DEADLINE_S` how long the drain may take
 * (1,200 s; past it the gateways' last log lines are printed and the bench fails).
 */
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { type GatewayProcess, spawnLocalGateway } from "../tests/support/process.ts";
import type { BenchRow } from "./types.ts";
import { countPending } from "../db/vessel/outbox.ts";
import {
  backendCpu,
  cpuSeconds,
  cpuSpent,
  envNumber,
  fillChangeLog,
  metricOf,
  mosquittoPid,
  until,
} from "./common.ts";

const TOKEN = "bench-token-0123456789abcdef";
/** A process's resident memory (MB); NaN once it is gone. */
const rssMb = (pid: number): number => {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
  } catch {
    return NaN;
  }
};
const connects = (gw: GatewayProcess) => gw.stderr().split('"msg":"MQTT connected"').length - 1;

/** Measures; returns the recovery row. */
export async function run(): Promise<BenchRow[]> {
  const n = envNumber("BENCH_OUTAGE_N", 100_000);
  const holdS = envNumber("BENCH_OUTAGE_HOLD_S", 0);
  const deadlineS = envNumber("BENCH_OUTAGE_DEADLINE_S", 1_200);
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  const store = await Deno.makeTempDir({ prefix: "bosun-bench-outage-" });
  const brokerStore = await Deno.makeTempDir({ prefix: "bosun-bench-mosq-" });
  await using broker = await startMosquitto({ persistenceDir: brokerStore });
  const env = { MQTT_BROKER_URL: broker.url, OUTBOX_MAX_PENDING: String(n * 2) };
  const shore = spawnLocalGateway({
    databaseUrl: shoreDb.url,
    dataDir: `${store}/shore`,
    token: TOKEN,
    env: { ...env, ROLE: "shore", VESSEL_ID: "shore-bench" },
  });
  const vessel = spawnLocalGateway({
    databaseUrl: vesselDb.url,
    dataDir: store,
    token: TOKEN,
    // ACK_TIMEOUT_S shorter than its default (60 s): a needless re-send shows sooner.
    env: { ...env, VESSEL_ID: "bench-outage", ACK_TIMEOUT_S: "10" },
  });
  try {
    await shore.waitForLog(/"msg":"MQTT connected"/);
    await vessel.waitForLog(/"msg":"MQTT connected"/);
    await new Promise((r) => setTimeout(r, 1_000)); // subscriptions in place

    // The outage: the broker is gone while the vessel commits its backlog. The rows are
    // written beforehand in a transaction that commits during the outage, so the outage is
    // short: its length only sets the reconnect back-off, reported on its own row.
    const writer = await vesselDb.sql.reserve();
    await writer`begin`;
    await fillChangeLog(writer as unknown as typeof vesselDb.sql, n);
    await broker.stop();
    const shoreConnects = connects(shore);
    const vesselConnects = connects(vessel);
    await writer`commit`;
    writer.release();
    if (holdS > 0) {
      console.error(`outage: ${n} changes committed; the broker stays away ${holdS} s`);
      await new Promise((r) => setTimeout(r, holdS * 1_000));
    }
    const cpuBefore = {
      vessel: cpuSeconds(vessel.child.pid),
      shore: cpuSeconds(shore.child.pid),
      vesselDb: await backendCpu(vesselDb.sql),
      shoreDb: await backendCpu(shoreDb.sql),
    };
    const rssBefore = { vessel: rssMb(vessel.child.pid), shore: rssMb(shore.child.pid) };
    await broker.restart();
    const back = performance.now();
    const rss: { s: number; vessel: number; shore: number }[] = [];
    const sampler = setInterval(() => {
      rss.push({
        s: Math.round((performance.now() - back) / 1000),
        vessel: Math.round(rssMb(vessel.child.pid)),
        shore: Math.round(rssMb(shore.child.pid)),
      });
    }, 5_000);

    let vesselBackS = NaN;
    const progress = Deno.env.get("BENCH_PROGRESS")
      ? setInterval(async () => {
        const [v] = await vesselDb.sql<{ p: number; a: number }[]>`
        select (select published_seq from vessel_state)::int8 as p,
          (select acked_seq from vessel_state)::int8 as a`;
        const [s] = await shoreDb.sql<{ n: number; i: number }[]>`
        select (select coalesce(sum(applied_count), 0) from shore_positions)::int8 as n,
          (select count(*) from shore_inbox)::int8 as i`;
        console.error(
          `outage: +${((performance.now() - back) / 1000).toFixed(0)} s published ${v!.p} ` +
            `acked ${v!.a}, shore inbox ${s!.i} applied ${s!.n}, cpu vessel ` +
            `${cpuSeconds(vessel.child.pid)} shore ${cpuSeconds(shore.child.pid)}`,
        );
      }, 2_000)
      : undefined;
    // Re-sends, gaps, refusals, failures: the gateways' own words, when it takes long.
    const printLogs = () => {
      for (const [name, gw] of [["vessel", vessel], ["shore", shore]] as const) {
        const lines = gw.stderr().split("\n").filter((l) => !l.includes('"level":"debug"'));
        console.error(`outage: ${name} log:\n${lines.slice(-60).join("\n")}`);
      }
    };
    await until(
      async () => {
        if (Number.isNaN(vesselBackS) && connects(vessel) > vesselConnects) {
          vesselBackS = (performance.now() - back) / 1000;
        }
        return await countPending(vesselDb.sql) === 0;
      },
      "every change acknowledged after the outage",
      deadlineS * 1000,
    ).catch((err) => {
      printLogs();
      throw err;
    });
    const seconds = (performance.now() - back) / 1000;
    clearInterval(progress);
    clearInterval(sampler);
    console.error(
      `outage: RSS (MB) before the return: vessel ${rssBefore.vessel.toFixed(0)}, shore ` +
        `${rssBefore.shore.toFixed(0)}; then every 5 s (s:vessel/shore): ` +
        rss.map((r) => `${r.s}:${r.vessel}/${r.shore}`).join(" "),
    );
    const peak = (k: "vessel" | "shore") => Math.max(rssBefore[k], ...rss.map((r) => r[k]));
    // Where the CPU went, per change: on a 2-core machine the four programs share the cores,
    // so the recovery cannot be faster than 2 s / (their CPU per change summed).
    const brokerPid = mosquittoPid(broker.port);
    const perChange = (s: number) => s / n * 1e6;
    const cpu = {
      vessel: perChange(cpuSeconds(vessel.child.pid) - cpuBefore.vessel),
      shore: perChange(cpuSeconds(shore.child.pid) - cpuBefore.shore),
      broker: perChange(brokerPid ? cpuSeconds(brokerPid) : NaN),
      postgres: perChange(
        cpuSpent(cpuBefore.vesselDb, await backendCpu(vesselDb.sql)) +
          cpuSpent(cpuBefore.shoreDb, await backendCpu(shoreDb.sql)),
      ),
    };
    const cpuTotal = cpu.vessel + cpu.shore + cpu.broker + cpu.postgres;
    console.error(
      `outage: CPU per change: vessel ${cpu.vessel.toFixed(0)} µs, shore ${cpu.shore.toFixed(0)}` +
        ` µs, Mosquitto ${cpu.broker.toFixed(0)} µs, PostgreSQL ${cpu.postgres.toFixed(0)} µs; ` +
        `${cpuTotal.toFixed(0)} µs in all, ${(n * cpuTotal / 1e6).toFixed(1)} CPU-seconds`,
    );
    if (seconds > 20) printLogs(); // what the gateways said while it took this long
    // A needless re-send would come within ACK_TIMEOUT_S (10 s here): wait that long.
    await new Promise((r) => setTimeout(r, 11_000));
    const duplicates = await metricOf(await shore.port(), "bosun_shore_duplicates_total");
    const [applied] = await shoreDb.sql<{ n: number }[]>`
      select coalesce(sum(applied_count), 0)::int8 as n from shore_positions`;
    console.error(
      `outage: ${n} changes acknowledged ${seconds.toFixed(1)} s after the broker returned ` +
        `(vessel reconnected after ${vesselBackS.toFixed(1)} s, shore reconnected: ` +
        `${connects(shore) > shoreConnects}); shore applied ${applied!.n}, duplicates ` +
        `${duplicates}`,
    );
    return [
      {
        figure: `${n} backlog after an outage until acknowledged by shore (s)`,
        value: seconds,
        baseline: null,
        ratio: null,
        goal: "≤ 20 s",
        holds: seconds <= 20,
      },
      {
        figure: `duplicates at the shore after ${
          holdS > 0 ? `a ${holdS} s outage` : "an outage"
        } with ${n} behind it`,
        value: duplicates,
        baseline: null,
        ratio: null,
        goal: "0",
        holds: duplicates === 0,
      },
      ...(["vessel", "shore", "broker", "postgres"] as const).map((k) => ({
        figure: `CPU per change during the recovery: ${k} (µs)`,
        value: cpu[k],
        baseline: null,
        ratio: null,
        goal: "",
        holds: null,
      })),
      ...(["vessel", "shore"] as const).map((k) => ({
        figure: `${k} RSS while draining ${n}: highest vs before the broker returned (MB)`,
        value: peak(k),
        baseline: rssBefore[k],
        ratio: peak(k) / rssBefore[k],
        goal: "",
        holds: null,
      })),
      {
        figure: "of which the vessel's reconnect back-off (s)",
        value: vesselBackS,
        baseline: null,
        ratio: null,
        goal: "",
        holds: null,
      },
    ];
  } finally {
    await vessel.stop();
    await shore.stop();
    await Deno.remove(store, { recursive: true });
    await Deno.remove(brokerStore, { recursive: true });
  }
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
