/**
 * Two-way sync (issue 11): a vessel gateway and a shore gateway (processes of their own, as in
 * production, each reaching one Mosquitto through a TCP proxy of the bench's own).
 *
 * 1. Down drain against up drain of the same changes: `BENCH_TWO_WAY_N` work orders created on
 *    board while the vessel's link is held (the proxy black-holes it: the connection stays up,
 *    nothing passes), then released; the time until the shore has acknowledged every one. Then
 *    the same number created ashore for the vessel (through the shore's write store, as its API
 *    does) while the shore's link is held; the time until the vessel has acknowledged every one.
 *    The figure is down rate / up rate (= up seconds / down seconds), goal ≥ 0.9.
 * 2. Convergence after a two-way outage: `BENCH_TWO_WAY_N / 10` work orders made on board and
 *    synced; both links cut for `BENCH_TWO_WAY_OUTAGE_S` (default: as long as the writes take);
 *    meanwhile `BENCH_TWO_WAY_N` updates on board and as many ashore, to the same records (the
 *    crew edits status and description, the office title; each side edits every record's
 *    priority once, which makes one conflict per record). The figure is the time from both
 *    sides' reconnection until both directions are acknowledged and every record is identical
 *    on both sides, against the two one-way drains of part 1 added up (both directions at once
 *    should take no longer than one after the other); the reconnect back-off is a row of its
 *    own.
 *
 * Writes go through the stores the APIs use (db/vessel/records.ts, db/shore/writes.ts), from
 * this process, 16 at a time: their time is not measured. `BENCH_TWO_WAY_TRACE=1` prints where
 * the down drain's time went (per second: sent, received, applied, acknowledged).
 */
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { startProxy } from "../tests/support/proxy.ts";
import { type GatewayProcess, spawnLocalGateway } from "../tests/support/process.ts";
import { queryOf, shoreCopies, unconverged, vesselCopies } from "../tests/support/two-way.ts";
import { createRecordStore } from "../db/vessel/records.ts";
import { createShoreWrites } from "../db/shore/writes.ts";
import { OutboxGate } from "../core/outbox-gate.ts";
import { Hlc } from "../core/hlc.ts";
import { countPending } from "../db/vessel/outbox.ts";
import type { Sql } from "../db/connection.ts";
import type { BenchRow } from "./types.ts";
import mqtt from "mqtt";
import { envNumber, until } from "./common.ts";

const TOKEN = "bench-token-0123456789abcdef";
const VESSEL_ID = "bench-two-way";
const connects = (gw: GatewayProcess) => gw.stderr().split('"msg":"MQTT connected"').length - 1;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `task` for 0…n-1, `width` at a time. */
async function pool(n: number, width: number, task: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < n) await task(next++);
  }));
}

const count = async (sql: Sql, query: "up" | "down") => {
  const [row] = query === "up" ? [{ n: await countPending(sql) }] : await sql<{ n: number }[]>`
      select count(*)::int as n from shore_down_changes where acked_at is null`;
  return row!.n;
};

/** Measures; returns the rows. */
export async function run(): Promise<BenchRow[]> {
  const n = envNumber("BENCH_TWO_WAY_N", 10_000);
  const outageS = envNumber("BENCH_TWO_WAY_OUTAGE_S", 0);
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  const store = await Deno.makeTempDir({ prefix: "bosun-bench-two-way-" });
  const brokerStore = await Deno.makeTempDir({ prefix: "bosun-bench-mosq-" });
  await using broker = await startMosquitto({ persistenceDir: brokerStore });
  await using vesselLink = startProxy({ target: { port: broker.port } });
  await using shoreLink = startProxy({ target: { port: broker.port } });
  // A held link must not be given up by a keepalive while the changes are written.
  const trace = Boolean(Deno.env.get("BENCH_TWO_WAY_TRACE"));
  const env = {
    OUTBOX_MAX_PENDING: String(n * 4),
    MQTT_KEEPALIVE_S: "900",
    ACK_TIMEOUT_S: "10",
    ...(trace ? { LOG_LEVEL: "debug" } : {}),
  };
  const shore = spawnLocalGateway({
    databaseUrl: shoreDb.url,
    dataDir: `${store}/shore`,
    token: TOKEN,
    env: { ...env, ROLE: "shore", VESSEL_ID: "shore-bench", MQTT_BROKER_URL: shoreLink.url() },
  });
  const vessel = spawnLocalGateway({
    databaseUrl: vesselDb.url,
    dataDir: store,
    token: TOKEN,
    env: { ...env, VESSEL_ID, MQTT_BROKER_URL: vesselLink.url() },
  });
  const records = createRecordStore({ sql: vesselDb.sql, gate: new OutboxGate(1e9) });
  const writes = createShoreWrites({ sql: shoreDb.sql, hlc: new Hlc({ origin: "shore" }) });
  const order = (i: number) => ({
    title: `Job ${i}`,
    equipmentId: `eq-${i % 40}`,
    priority: (i % 5) + 1,
  });
  const load = () => Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
  try {
    await shore.waitForLog(/"msg":"MQTT connected"/);
    await vessel.waitForLog(/"msg":"MQTT connected"/);
    await sleep(1_000); // subscriptions in place

    // 1. The same N creates up, then down, each through a held link released at once.
    vesselLink.setMode({ kind: "blackhole" });
    await pool(n, 16, (i) => records.create("work_orders", order(i)));
    let released = performance.now();
    vesselLink.setMode({ kind: "pass" });
    await until(async () => await count(vesselDb.sql, "up") === 0, `${n} changes up`);
    const upS = (performance.now() - released) / 1000;
    console.error(`two-way: ${n} creates up in ${upS.toFixed(1)} s (load ${load()})`);

    shoreLink.setMode({ kind: "blackhole" });
    const seen: string[] = [];
    const spy = trace ? await mqtt.connectAsync(broker.url) : undefined;
    if (spy) {
      spy.on("message", (topic, payload) => {
        seen.push(
          `${((performance.now() - released) / 1000).toFixed(1)} ${topic} ${
            topic.endsWith("ack") ? payload.toString() : payload.length
          }`,
        );
      });
      await spy.subscribeAsync("vessel/+/down/#", { qos: 1 });
    }
    await pool(n, 16, (i) => writes.create(VESSEL_ID, "work_orders", order(i)));
    released = performance.now();
    shoreLink.setMode({ kind: "pass" });
    await until(async () => await count(shoreDb.sql, "down") === 0, `${n} changes down`);
    const downS = (performance.now() - released) / 1000;
    if (trace) {
      const t0 = Date.now() - downS * 1000;
      const rel = (d: Date | null) => d ? ((d.getTime() - t0) / 1000).toFixed(1) : "-";
      const ashore = await shoreDb.sql<{ published: Date; acked: Date; n: number }[]>`
        select date_trunc('second', published_at) as published, max(acked_at) as acked,
          count(*)::int as n from shore_down_changes group by 1 order by 1`;
      for (const r of ashore) {
        console.error(`  published +${rel(r.published)} s: ${r.n}, last acked +${rel(r.acked)} s`);
      }
      const board = await vesselDb.sql<{ received: Date; n: number; applied: Date }[]>`
        select date_trunc('second', received_at) as received, count(*)::int as n,
          max(applied_at) as applied from down_inbox group by 1 order by 1`;
      for (const r of board) {
        console.error(`  received +${rel(r.received)} s: ${r.n}, applied by +${rel(r.applied)} s`);
      }
      const lines = (gw: GatewayProcess) =>
        gw.stderr().split("\n").filter((l) => /down|ack/i.test(l)).slice(-40).join("\n");
      console.error(`shore:\n${lines(shore)}\nvessel:\n${lines(vessel)}`);
      console.error(seen.join("\n"));
      await spy?.endAsync();
    }
    console.error(`two-way: ${n} creates down in ${downS.toFixed(1)} s (load ${load()})`);

    // 2. Shared records, synced; both links cut; both sides edit them; the links return.
    const m = Math.max(1, Math.floor(n / 10));
    const shared: string[] = [];
    await pool(m, 16, async (i) => shared.push((await records.create("work_orders", order(i))).id));
    await until(async () => await count(vesselDb.sql, "up") === 0, "the shared records ashore");
    const [vesselConnects, shoreConnects] = [connects(vessel), connects(shore)];
    const cut = performance.now();
    vesselLink.setMode({ kind: "cut" });
    shoreLink.setMode({ kind: "cut" });
    await Promise.all([
      pool(n, 16, (i) =>
        records.update(
          "work_orders",
          shared[i % m]!,
          i < m
            ? { priority: (i % 5) + 1 }
            : { status: i % 3 ? "in_progress" : "open", description: `crew ${i}` },
        )),
      pool(n, 16, (i) =>
        writes.update(
          VESSEL_ID,
          "work_orders",
          shared[i % m]!,
          i < m ? { priority: ((i + 2) % 5) + 1 } : { title: `office ${i}` },
        )),
    ]);
    const writtenS = (performance.now() - cut) / 1000;
    if (outageS > writtenS) await sleep((outageS - writtenS) * 1000);
    const outage = (performance.now() - cut) / 1000;
    const back = performance.now();
    vesselLink.setMode({ kind: "pass" });
    shoreLink.setMode({ kind: "pass" });
    let reconnectedS = NaN;
    await until(async () => {
      if (
        Number.isNaN(reconnectedS) && connects(vessel) > vesselConnects &&
        connects(shore) > shoreConnects
      ) reconnectedS = (performance.now() - back) / 1000;
      return await count(vesselDb.sql, "up") === 0 && await count(shoreDb.sql, "down") === 0;
    }, "both directions acknowledged after the outage");
    const ackedS = (performance.now() - back) / 1000;
    const differ = unconverged(
      await vesselCopies(queryOf(vesselDb.sql)),
      await shoreCopies(queryOf(shoreDb.sql), VESSEL_ID),
    );
    const convergedS = (performance.now() - back) / 1000;
    const [conflicts] = await vesselDb.sql<{ n: number }[]>`
      select count(*)::int as n from conflicts`;
    console.error(
      `two-way: outage of ${outage.toFixed(0)} s with ${n} changes each way on ${m} records: ` +
        `both reconnected after ${reconnectedS.toFixed(1)} s, both directions acknowledged ` +
        `after ${ackedS.toFixed(1)} s, ${differ.length} records differ ` +
        `${differ.slice(0, 3).join("; ")}, ${conflicts!.n} conflicts on board (load ${load()})`,
    );
    const convergence = differ.length === 0 ? convergedS - reconnectedS : NaN;
    return [
      {
        figure: `down drain rate / up drain rate, ${n} creates each (up ${upS.toFixed(1)} s)`,
        value: downS,
        baseline: upS,
        ratio: upS / downS,
        goal: "≥ 0.9",
        holds: upS / downS >= 0.9,
      },
      {
        figure: `convergence after a ${outage.toFixed(0)} s two-way outage, ${n} changes ` +
          `each way, from reconnection (s; baseline: the two drains above)`,
        value: convergence,
        baseline: upS + downS,
        ratio: convergence / (upS + downS),
        goal: "≤ 1 (and identical both sides)",
        holds: differ.length === 0 && convergence <= upS + downS,
      },
      {
        figure: "before it, both sides' reconnect back-off after the outage (s)",
        value: reconnectedS,
        baseline: null,
        ratio: null,
        goal: "",
        holds: null,
      },
      {
        figure: "conflicts recorded on board after the outage",
        value: conflicts!.n,
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
