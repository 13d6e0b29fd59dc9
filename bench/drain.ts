/**
 * Drain bench: 100,000 changes queued before the engine starts, then drained in frames
 * (`LINK_MODE=frames`, QoS 1) to a local Mosquitto started here and a shore ingest (timed until
 * every change is acknowledged ashore, and until every one was PUBACKed), against raw mqtt.js
 * publishing the same envelopes one message each at QoS 1 with the same in-flight window in the
 * same run (once before the engine and once after). Next to it, the ceiling: the same records
 * written ashore by COPY with nothing else running, which no drain acknowledged ashore can pass.
 * Then the process RSS idle and with 1,000,000 unacknowledged changes (the engine streams the
 * change log, so RSS should not follow it).
 *
 * `BENCH_DRAIN_N` and `BENCH_UNACKED_N` shrink the runs for a quick look
 * (`BENCH_UNACKED_N=0` skips the memory bench).
 */
import mqtt from "mqtt";
import process from "node:process";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { BenchRow } from "./types.ts";
import { benchEngine, fillChangeLog, WINDOW } from "./common.ts";
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { startShore } from "../tests/support/fleet.ts";
import type { Sql } from "../db/connection.ts";
import { applyAck, countPending, vesselState } from "../db/vessel/outbox.ts";
import { deriveMessageId } from "../sync/message-id.ts";
import { type ChangeRow, toEnvelope } from "../sync/protocol.ts";

const mib = (bytes: number) => Math.round(bytes / 1024 / 1024 * 10) / 10;
const ticks = 100; // USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s
/** Connections the ceiling writes on: more than the two cores, so neither waits for the other. */
const CEILING_CONNECTIONS = 4;

/** CPU seconds used so far by this process (user + system). */
function ownCpu(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/**
 * CPU seconds used so far by this database's server processes (the pool's backends), read
 * from /proc: the least noisy measure of what the drain costs PostgreSQL on a shared machine.
 */
async function dbCpu(sql: Sql): Promise<number> {
  // Client backends only: an autovacuum worker that happens to run is not the drain's cost.
  const pids = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity
    where datname = current_database() and backend_type = 'client backend'`;
  let total = 0;
  for (const { pid } of pids) {
    try {
      const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += (Number(fields[11]) + Number(fields[12])) / ticks; // utime, stime
    } catch {
      // A backend that exited meanwhile: its time is lost to the figure, not to the drain.
    }
  }
  return total;
}

/** Waits until `n` publishes were PUBACKed; returns the seconds from `started`. */
function drained(engine: ReturnType<typeof benchEngine>["engine"], n: number, started: number) {
  let count = 0;
  return new Promise<number>((resolve) => {
    engine.onEvent((e) => {
      if (e.type === "published" && ++count === n) {
        resolve((performance.now() - started) / 1000);
      }
    });
  });
}

async function rawPublish(url: string, payloads: { topic: string; body: string }[]) {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: "bench-raw" });
  const started = performance.now();
  let next = 0;
  const sender = async () => {
    while (next < payloads.length) {
      const p = payloads[next++]!;
      await client.publishAsync(p.topic, p.body, { qos: 1 });
    }
  };
  await Promise.all(Array.from({ length: WINDOW }, sender));
  const seconds = (performance.now() - started) / 1000;
  await client.endAsync();
  return seconds;
}

/**
 * Raw mqtt.js runs right before and right after the engine, on the same broker, and the
 * baseline is the two together: on a shared machine the load drifts within a run, and a single
 * raw run after the engine's drifted with it.
 */
async function drainRows(n: number): Promise<BenchRow[]> {
  await using db = await freshDatabase();
  const vesselId = "bench-drain";
  await fillChangeLog(db.sql, n);

  // The envelopes the engine will publish: its claims hand out seq 1, 2, ... in
  // (priority, id) order; checked against the database after its drain.
  const rows = await db.sql<(ChangeRow & { id: number })[]>`select c.id, entity, operation,
    data, changed_at, message_id, s.epoch::text,
    row_number() over (order by priority, c.id)::int8 as seq
    from changes c, vessel_state s order by priority, c.id`;
  const payloads = rows.map((r) => ({
    topic: `vessel/${vesselId}/sync/${r.entity}`,
    body: JSON.stringify(toEnvelope({
      ...r,
      message_id: r.message_id ?? deriveMessageId(vesselId, r.epoch!, r.seq!),
    }, vesselId)),
  }));

  await using broker = await startMosquitto();
  const raw0 = ownCpu();
  const rawBefore = await rawPublish(broker.url, payloads);
  let rawCpu = ownCpu() - raw0;

  // A shore ingest with its production ack debounce, on a database of its own: the drain is
  // timed until every change is acknowledged ashore (applied there and its ack applied here),
  // and until every one was PUBACKed, for comparison with before.
  await using shoreDb = await freshDatabase();
  const shore = await startShore(broker.url, shoreDb.sql, { ackDebounceMs: 250 });
  const { engine } = benchEngine(db.sql, broker.url, vesselId, "frames");
  let acked = 0;
  const ackedAll = new Promise<number>((resolve) => {
    engine.onEvent((e) => {
      if (e.type === "acked" && e.seq >= n && !acked) {
        acked = performance.now();
        resolve(acked);
      }
    });
  });
  const commits = async () =>
    Number(
      (await shoreDb.sql<{ n: string }[]>`select xact_commit::text as n
      from pg_stat_database where datname = current_database()`)[0]!.n,
    );
  const commits0 = await commits();
  const cpu0 = ownCpu();
  const db0 = await dbCpu(db.sql);
  const shoreDb0 = await dbCpu(shoreDb.sql);
  let peakBuffered = 0;
  const sampler = setInterval(() => {
    peakBuffered = Math.max(peakBuffered, shore.shore.buffered);
  }, 20);
  const t0 = performance.now();
  const done = drained(engine, n, t0);
  engine.start();
  const pubackSeconds = await done;
  const engineSeconds = (await ackedAll - t0) / 1000;
  const engineCpu = ownCpu() - cpu0;
  const engineDbCpu = await dbCpu(db.sql) - db0;
  const shoreDbCpu = await dbCpu(shoreDb.sql) - shoreDb0;
  const shoreCommits = await commits() - commits0;
  clearInterval(sampler);
  await engine.stop();
  await shore.close();
  const m = shore.metrics.shore;
  const v = async (c: { get(): Promise<{ values: { value: number }[] }> }) =>
    (await c.get()).values.reduce((a, x) => a + x.value, 0);
  console.error(
    `drain ashore: ${await v(m.applied)} applied, ${await v(m.duplicates)} duplicates, ` +
      `${await v(m.shed)} shed, ${await v(m.catchupRequests)} catch-up requests, ` +
      `${await v(
        m.acksPublished,
      )} acks, ${shoreCommits} shore commits, at most ${peakBuffered} buffered ashore`,
  );
  const [moved] = await db.sql<{ n: number }[]>`select count(*)::int8 as n from changes c
    join (select id, row_number() over (order by priority, id) as rn from changes) r
    using (id) where c.seq is distinct from r.rn`;
  if (moved!.n) throw new Error(`${moved!.n} changes got another seq than the raw run used`);
  const [ashore] = await shoreDb.sql<{ n: number }[]>`
    select count(*)::int8 as n from shore_records`;
  if (ashore!.n !== n) throw new Error(`${ashore!.n} of ${n} records ashore`);

  const raw1 = ownCpu();
  const rawAfter = await rawPublish(broker.url, payloads);
  rawCpu += ownCpu() - raw1;
  const ceiling = await recordsCeiling(payloads.map((p) => JSON.parse(p.body).data));
  const us = (seconds: number, count: number) => (seconds / count * 1e6).toFixed(1);
  const engineRate = Math.round(n / engineSeconds);
  const rawRate = Math.round(2 * n / (rawBefore + rawAfter));
  console.error(
    `drain: engine ${n} acknowledged ashore in ${engineSeconds.toFixed(2)} s = ` +
      `${engineRate}/s (all PUBACKed after ${pubackSeconds.toFixed(2)} s = ` +
      `${Math.round(n / pubackSeconds)}/s), raw mqtt.js ${rawBefore.toFixed(2)} s before and ` +
      `${rawAfter.toFixed(2)} s after = ${rawRate}/s; CPU per change: vessel and shore ` +
      `process ${us(engineCpu, n)} µs + vessel PostgreSQL ${us(engineDbCpu, n)} µs + shore ` +
      `PostgreSQL ${us(shoreDbCpu, n)} µs, raw mqtt.js ${us(rawCpu, 2 * n)} µs; load ` +
      Deno.loadavg().map((l) => l.toFixed(1)).join(" "),
  );
  const ratio = engineRate / rawRate;
  const ceilingRate = Math.round(n / ceiling.seconds);
  console.error(
    `drain ceiling: the shore's bare record writes alone (COPY), ${n} in ${
      ceiling.seconds.toFixed(2)
    } s ` +
      `= ${ceilingRate}/s on ${CEILING_CONNECTIONS} connections, PostgreSQL ${
        us(ceiling.dbCpu, n)
      } µs a record`,
  );
  return [{
    figure:
      `drain ${n} changes in frames, acknowledged ashore (changes/s; baseline raw mqtt.js, window ${WINDOW})`,
    value: engineRate,
    baseline: rawRate,
    ratio,
    goal: "≥ 3× raw",
    holds: ratio >= 3,
  }, {
    figure:
      `ceiling: the shore's bare writes (COPY) of the same ${n} records alone, no vessel, no broker (records/s; baseline raw mqtt.js)`,
    value: ceilingRate,
    baseline: rawRate,
    ratio: ceilingRate / rawRate,
    goal: "",
    holds: null,
  }];
}

/**
 * What no drain acknowledged ashore can beat on this machine: the shore has applied a change
 * before it acks it, so the records' writes alone bound the rate. The same records go into a
 * fresh `shore_records` (every index it has) by the cheapest way PostgreSQL has, `COPY` (its
 * CPU a record was about two thirds of an `insert … select from unnest`), 1,000 a transaction as
 * the shore batches them, on `CEILING_CONNECTIONS` at once, without a vessel, a broker, a frame,
 * a check or a conflict rule: the drain's rate against raw mqtt.js can at most reach this
 * figure's.
 */
async function recordsCeiling(records: Record<string, unknown>[]) {
  await using db = await freshDatabase();
  // COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped.
  const escape = (s: string) =>
    s.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n").replace(/\r/g, "\\r");
  const batches: string[] = [];
  for (let i = 0; i < records.length; i += 1_000) {
    batches.push(
      records.slice(i, i + 1_000).map((r) =>
        `equipment\tbench-ceiling\t${r.id}\t${r.version}\t${escape(JSON.stringify(r))}\t` +
        `${r.createdAt}\t${r.updatedAt}\n`
      ).join(""),
    );
  }
  const db0 = await dbCpu(db.sql);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const batch = batches[next++]!;
      const into = await db.sql`copy shore_records
        (entity, vessel_id, id, version, data, created_at, updated_at) from stdin`.writable();
      await pipeline(Readable.from([batch]), into);
    }
  };
  await Promise.all(Array.from({ length: CEILING_CONNECTIONS }, worker));
  const seconds = (performance.now() - t0) / 1000;
  const [stored] = await db.sql<{ n: number }[]>`select count(*)::int8 as n from shore_records`;
  if (stored!.n !== records.length) {
    throw new Error(`the ceiling stored ${stored!.n} of ${records.length} records`);
  }
  return { seconds, dbCpu: await dbCpu(db.sql) - db0 };
}

const rss = () => Deno.memoryUsage().rss;
const settle = async () => {
  (globalThis as { gc?: () => void }).gc?.(); // with --v8-flags=--expose-gc
  await new Promise((r) => setTimeout(r, 1_000));
};

/** Queues `n` changes on a connected engine and waits until all are PUBACKed. */
async function drainAll(
  sql: Sql,
  vessel: ReturnType<typeof benchEngine>,
  n: number,
  onSample: () => void,
) {
  // Counting starts before queueing: the publisher's fallback poll may pick up early batches.
  let count = 0;
  const off = vessel.engine.onEvent((e) => e.type === "published" && count++);
  const sampler = setInterval(onSample, 100);
  const started = performance.now();
  await fillChangeLog(sql, n);
  vessel.gate.added(n);
  while (count < n) await new Promise((r) => setTimeout(r, 200));
  off();
  clearInterval(sampler);
  return (performance.now() - started) / 1000;
}

async function rssRows(n: number): Promise<BenchRow[]> {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const vessel = benchEngine(db.sql, broker.url, "bench-rss");
  const connected = new Promise<void>((r) =>
    vessel.engine.onEvent((e) => e.type === "connected" && r())
  );
  vessel.engine.start();
  await connected;
  await settle();
  const cold = rss();

  // Warm-up: the V8 heap grows to its working size under publishing load, whatever the
  // backlog; drain 20,000 and acknowledge them so "idle" is an empty outbox on a warm process.
  let peak = 0;
  const sample = () => peak = Math.max(peak, rss());
  await drainAll(db.sql, vessel, 20_000, sample);
  const { epoch } = await vesselState(db.sql);
  await applyAck(db.sql, { epoch, seq: 20_000 });
  await settle();
  const idle = rss();
  const idleHeap = Deno.memoryUsage().heapUsed;

  peak = 0;
  const seconds = await drainAll(db.sql, vessel, n, sample);
  await settle();
  const loaded = rss();
  const loadedHeap = Deno.memoryUsage().heapUsed;
  const unacked = { n: await countPending(db.sql) };
  await vessel.engine.stop();
  console.error(
    `rss: cold idle ${mib(cold)} MiB, warm idle ${mib(idle)} MiB, ` +
      `${unacked.n} unacknowledged ${mib(loaded)} MiB, peak while draining them ` +
      `${mib(peak)} MiB (queued and drained in ${seconds.toFixed(1)} s); V8 heap in use ` +
      `${mib(idleHeap)} MiB idle, ${mib(loadedHeap)} MiB loaded`,
  );
  return [
    {
      figure: `RSS with ${unacked.n} unacknowledged changes (MiB; baseline warm idle)`,
      value: mib(loaded),
      baseline: mib(idle),
      ratio: loaded / idle,
      goal: "≤ 1.2× idle",
      holds: loaded / idle <= 1.2,
    },
    {
      figure: `peak RSS while draining ${n} changes (MiB; baseline warm idle)`,
      value: mib(peak),
      baseline: mib(idle),
      ratio: peak / idle,
      goal: "",
      holds: null,
    },
    {
      figure: "RSS idle before any publishing (MiB)",
      value: mib(cold),
      baseline: null,
      ratio: null,
      goal: "",
      holds: null,
    },
  ];
}

/** Runs the drain and memory benches. */
export async function run(): Promise<BenchRow[]> {
  const env = (k: string, d: number) => Number(Deno.env.get(k) ?? d);
  const unacked = env("BENCH_UNACKED_N", 1_000_000);
  const rss = unacked > 0 ? await rssRows(unacked) : []; // 0 skips the memory bench
  const drain = await drainRows(env("BENCH_DRAIN_N", 100_000));
  return [...drain, ...rss];
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
