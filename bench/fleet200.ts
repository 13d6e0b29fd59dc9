/**
 * 200 vessels against one shore (issue 13): one shore gateway process on PostgreSQL, fed by
 * the fleet simulator (tests/support/fleet-sim.ts: one protocol peer per vessel, all in this
 * process) through (a) Mosquitto and (b) a three-node NATS cluster (MQTT 3.1.1; the peers
 * spread over the nodes, the shore on the third).
 *
 * The mix: BENCH_FLEET_BACKLOG_VESSELS vessels return from an outage with BENCH_FLEET_BACKLOG
 * changes each, BENCH_FLEET_CHATTY send 10 changes/s, the rest are quiet (1 change / 10 s).
 * The baseline is the same shore fed by one vessel with the fleet's whole backlog.
 *
 * Figures: shore apply rate with the fleet vs with one vessel (changes acknowledged per second
 * from the first backlog change to the last backlog vessel's ack), p99 commit-to-applied of the
 * quiet vessels during that drain (envelope timestamp to inbox `applied_at`), NATS vs
 * Mosquitto, the time until every vessel is acknowledged again after kill -9 of one NATS node
 * (not the shore's), and the shore's RSS with the fleet connected vs idle. Every run checks
 * that every change was applied exactly once.
 *
 * Default: 200 vessels, 4 × 5,000 backlog, 180 s per wait; BENCH_FLEET_FULL=1 for 4 × 20,000.
 * Standalone: `deno run --allow-all bench/fleet200.ts`.
 */
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { SHORE_USER, startNatsCluster } from "../tests/support/nats.ts";
import { type GatewayProcess, spawnLocalGateway } from "../tests/support/process.ts";
import { createFleet, type Fleet, type PeerKind } from "../tests/support/fleet-sim.ts";
import { withDeadline } from "../tests/support/wait.ts";
import { envNumber } from "./common.ts";
import { type BenchRow, percentile } from "./types.ts";
import type { Sql } from "../db/connection.ts";

const FULL = Deno.env.get("BENCH_FLEET_FULL") === "1";
const VESSELS = envNumber("BENCH_FLEET_VESSELS", 200);
const BACKLOG = envNumber("BENCH_FLEET_BACKLOG", FULL ? 20_000 : 5_000);
const BACKLOG_VESSELS = envNumber("BENCH_FLEET_BACKLOG_VESSELS", 4);
const CHATTY = envNumber("BENCH_FLEET_CHATTY", 20);
/** Every wait of the bench ends here at the latest (a stuck run fails, it does not hang). */
const DEADLINE_MS = envNumber("BENCH_FLEET_DEADLINE_S", FULL ? 1_200 : 180) * 1000;
/**
 * The NATS cluster's `consumer_replicas` for this run (deploy/nats/nats.conf ships 3). Each MQTT
 * subscription of a persistent session is a JetStream consumer, each replicated consumer its own
 * raft group: with 3, the 200 vessels' 400 subscriptions were not all created within 15 minutes
 * on the shared 2-core machine (28,000 "Unable to add JetStream consumer ... timeout" in the
 * nodes' logs); with 1, in 8 s (docs/scaling.md).
 */
const NATS_CONSUMER_REPLICAS = envNumber("BENCH_FLEET_NATS_CONSUMER_REPLICAS", 1);
/** Which brokers to run (`mosquitto,nats` by default): one alone halves a long run. */
const BROKERS = (Deno.env.get("BENCH_FLEET_BROKERS") ?? "mosquitto,nats").split(",");

const mb = (pid: number): number => {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
};

/** The fleet's mix, peer by peer. */
function mix(vessels: number): PeerKind[] {
  return Array.from(
    { length: vessels },
    (_, i) =>
      i < BACKLOG_VESSELS
        ? { name: "backlog", perSecond: 0, backlog: BACKLOG }
        : i < BACKLOG_VESSELS + CHATTY
        ? { name: "chatty", perSecond: 10, backlog: 0 }
        : { name: "quiet", perSecond: 0.1, backlog: 0 },
  );
}

interface Broker {
  name: string;
  /** The shore's environment (broker URL, protocol, credentials). */
  shoreEnv: Record<string, string>;
  /** Peer `i`'s URLs (its own node first), protocol and credentials. */
  peer(i: number, id: string): {
    urls: string[];
    protocolVersion: 4 | 5;
    username?: string;
    password?: string;
  };
}

/** Every fleet made, so a run that fails still closes its peers (their timers hold the process). */
const open = new Set<Fleet>();

interface Drain {
  rate: number;
  quietP99: number;
  quietSamples: number;
  seconds: number;
}

/** Runs `kinds` against the shore until every backlog vessel is acknowledged. */
async function drain(
  sql: Sql,
  broker: Broker,
  kinds: PeerKind[],
  prefix: string,
): Promise<{ fleet: Fleet; drain: Drain }> {
  const fleet = createFleet(kinds, (i) => ({
    id: `${prefix}-${i}`,
    ...broker.peer(i, `${prefix}-${i}`),
    ackTimeoutMs: 30_000,
  }));
  open.add(fleet);
  await withDeadline(fleet.connected(), `${kinds.length} peers connect`, DEADLINE_MS);
  const t0 = performance.now();
  const startedAt = new Date();
  fleet.start();
  const backlogs = fleet.peers.filter((p) => p.kind.name === "backlog");
  await withDeadline(
    Promise.all(backlogs.map(({ peer, kind }) => peer.acknowledged(kind.backlog))),
    `the backlogs of ${prefix} are acknowledged`,
    DEADLINE_MS,
  );
  const seconds = (performance.now() - t0) / 1000;
  const acked = fleet.peers.reduce((n, { peer }) => n + peer.acked, 0);
  const endedAt = new Date();
  const quiet = fleet.peers.filter((p) => p.kind.name === "quiet").map((p) => p.peer.id);
  const ms = quiet.length === 0 ? [] : (await sql<{ ms: number }[]>`
    select extract(epoch from applied_at - changed_at)::float8
      * 1000 as ms
    from shore_inbox where vessel_id = any(${quiet})
      and changed_at between ${startedAt} and ${endedAt}
      and applied_at is not null`).map((r) => r.ms).sort((a, b) => a - b);
  return {
    fleet,
    drain: {
      rate: acked / seconds,
      quietP99: percentile(ms, 0.99),
      quietSamples: ms.length,
      seconds,
    },
  };
}

/** Stops the fleet's changes, waits for every ack and checks exactly-once ashore. */
async function settle(sql: Sql, fleet: Fleet, prefix: string): Promise<boolean> {
  fleet.stopDriving();
  await withDeadline(fleet.allAcknowledged(), `every ${prefix} peer is acknowledged`, DEADLINE_MS);
  const made = fleet.peers.reduce((n, { peer }) => n + peer.seq, 0);
  const [tally] = await sql<{ applied: number; inbox: number; seqs: number }[]>`
    select (select coalesce(sum(applied_count), 0) from shore_positions
              where vessel_id like ${prefix + "-%"})::int8 as applied,
      (select count(*) from shore_inbox where vessel_id like ${prefix + "-%"})::int8 as inbox,
      (select coalesce(sum(last_seq), 0) from shore_positions
        where vessel_id like ${prefix + "-%"})::int8 as seqs`;
  const ok = Number(tally!.applied) === made && Number(tally!.inbox) === made &&
    Number(tally!.seqs) === made;
  if (!ok) console.error(`fleet200: ${prefix} made ${made}, ashore ${JSON.stringify(tally)}`);
  return ok;
}

interface BrokerResult {
  single: Drain;
  fleet: Drain;
  exactlyOnce: boolean;
  idleRss: number;
  fleetRss: number;
  /** Seconds until every vessel was acknowledged again after kill -9 of one NATS node. */
  recovery?: number;
}

/** One shore process on a fresh database, fed by one vessel and then by the fleet. */
async function measure(
  broker: Broker,
  afterDrain?: (fleet: Fleet) => Promise<number>,
): Promise<BrokerResult> {
  await using db = await freshDatabase({ migrated: false });
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-bench-fleet200-" });
  let shore: GatewayProcess | undefined;
  try {
    shore = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: "bench-token-0123456789abcdef",
      env: { ROLE: "shore", VESSEL_ID: "shore-0", ...broker.shoreEnv },
    });
    await shore.waitForLog(/"msg":"MQTT connected"/);
    await new Promise((r) => setTimeout(r, 1_000)); // its SUBACK, and a settled heap
    const idleRss = mb(shore.child.pid);

    const one = await drain(
      db.sql,
      broker,
      [{ name: "backlog", perSecond: 0, backlog: BACKLOG * BACKLOG_VESSELS }],
      `${broker.name}-single`,
    );
    const single = one.drain;
    const onceSingle = await settle(db.sql, one.fleet, `${broker.name}-single`);
    open.delete(one.fleet);
    await one.fleet.close();

    const many = await drain(db.sql, broker, mix(VESSELS), `${broker.name}-fleet`);
    console.error(
      `fleet200: ${broker.name}: fleet drained in ${many.drain.seconds.toFixed(1)} s`,
    );
    const fleetRss = mb(shore.child.pid);
    const recovery = afterDrain ? await afterDrain(many.fleet) : undefined;
    const onceFleet = await settle(db.sql, many.fleet, `${broker.name}-fleet`);
    open.delete(many.fleet);
    await many.fleet.close();
    return {
      single,
      fleet: many.drain,
      exactlyOnce: onceSingle && onceFleet,
      idleRss,
      fleetRss,
      recovery,
    };
  } finally {
    await Promise.all([...open].map((f) => f.close()));
    open.clear();
    await shore?.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
}

export async function run(): Promise<BenchRow[]> {
  const label = `${VESSELS} vessels (${BACKLOG_VESSELS} × ${BACKLOG} backlog, ${CHATTY} × 10/s, ` +
    `rest 1 / 10 s)`;
  console.error(
    `fleet200: ${label}${
      FULL ? ", full size" : ""
    }; NATS consumer_replicas ${NATS_CONSUMER_REPLICAS}`,
  );

  // A broker whose run fails (a deadline passed) gives empty figures and says why, so the
  // other broker's figures are still printed.
  const failed: string[] = [];
  const guard = async (name: string, f: () => Promise<BrokerResult>): Promise<BrokerResult> => {
    try {
      return await f();
    } catch (err) {
      failed.push(`${name}: ${(err as Error).message.split("\n")[0]}`);
      console.error(`fleet200: ${name} failed: ${(err as Error).stack}`);
      const none = { rate: NaN, quietP99: NaN, quietSamples: 0, seconds: NaN };
      return { single: none, fleet: none, exactlyOnce: false, idleRss: NaN, fleetRss: NaN };
    }
  };
  const skipped = (name: string) => async (): Promise<BrokerResult> => {
    await Promise.resolve();
    throw new Error(`not run (BENCH_FLEET_BROKERS=${BROKERS.join(",")} leaves out ${name})`);
  };
  const mosq = await guard(
    "Mosquitto",
    !BROKERS.includes("mosquitto") ? skipped("mosquitto") : async () => {
      await using broker = await startMosquitto();
      return await measure({
        name: "mosq",
        shoreEnv: { MQTT_BROKER_URL: broker.url },
        peer: () => ({ urls: [broker.url], protocolVersion: 5 }),
      });
    },
  );
  console.error(`fleet200: mosquitto ${JSON.stringify(mosq)}`);

  const nats = await guard(
    "NATS",
    !BROKERS.includes("nats") ? skipped("nats") : async () => {
      const ids = [
        "nats-single-0",
        ...Array.from({ length: VESSELS }, (_, i) => `nats-fleet-${i}`),
      ];
      await using cluster = await startNatsCluster({
        vessels: ids,
        readyTimeoutMs: 120_000,
        mqtt: { consumer_replicas: String(NATS_CONSUMER_REPLICAS) },
      });
      const urls = cluster.nodes.map((n) => n.mqttUrl);
      // A run that fails leaves the nodes' logs behind for its diagnosis.
      const keepLogs = async () => {
        const path = await Deno.makeTempFile({ prefix: "fleet200-nats-", suffix: ".log" });
        await Deno.writeTextFile(path, (await Promise.all([0, 1, 2].map(cluster.log))).join("\n"));
        console.error(`fleet200: the NATS nodes' logs are in ${path}`);
      };
      try {
        return await measure(
          {
            name: "nats",
            shoreEnv: {
              MQTT_BROKER_URL: urls[2]!,
              MQTT_PROTOCOL: "3.1.1",
              MQTT_USERNAME: SHORE_USER,
              MQTT_PASSWORD: cluster.passwords[SHORE_USER]!,
            },
            peer: (i, id) => ({
              urls: [0, 1, 2].map((k) => urls[(i + k) % 3]!),
              protocolVersion: 4,
              username: id,
              password: cluster.passwords[id],
            }),
          },
          async (fleet) => {
            // kill -9 of node 1 (a third of the vessels' own node; not the shore's), then the
            // time until every vessel is acknowledged again.
            // Every vessel makes one change right after the kill: the figure is until each has
            // that change acknowledged (a vessel with nothing unacked would otherwise count 0 s).
            const t = performance.now();
            await cluster.kill(0);
            for (const { peer } of fleet.peers) peer.change(1);
            const targets = fleet.peers.map(({ peer }) => peer.seq);
            await withDeadline(
              Promise.all(fleet.peers.map(({ peer }, i) => peer.acknowledged(targets[i]))),
              "every vessel acknowledged again after kill -9 of a NATS node",
              DEADLINE_MS,
            );
            const seconds = (performance.now() - t) / 1000;
            await cluster.restart(0);
            return seconds;
          },
        );
      } catch (err) {
        await keepLogs();
        throw err;
      }
    },
  );
  console.error(`fleet200: nats ${JSON.stringify(nats)}`);

  const row = (
    figure: string,
    value: number,
    baseline: number | null,
    goal = "",
    holds: boolean | null = null,
  ): BenchRow => ({
    figure,
    value,
    baseline,
    ratio: baseline === null ? null : value / baseline,
    goal,
    holds,
  });
  const rateRow = (name: string, r: BrokerResult) =>
    row(
      `shore apply rate, ${name}: ${VESSELS} vessels vs 1 vessel, same backlog (/s)`,
      r.fleet.rate,
      r.single.rate,
      "≥ 0.8",
      r.fleet.rate / r.single.rate >= 0.8,
    );
  return [
    ...failed.map((why) => row(`FAILED ${why}`, NaN, null, "", false)),
    rateRow("Mosquitto", mosq),
    rateRow("NATS cluster", nats),
    row(
      `p99 commit-to-applied, quiet vessels during the drain, Mosquitto (ms; ${mosq.fleet.quietSamples} samples)`,
      mosq.fleet.quietP99,
      null,
    ),
    row(
      `p99 commit-to-applied, quiet vessels during the drain, NATS (ms; ${nats.fleet.quietSamples} samples)`,
      nats.fleet.quietP99,
      null,
    ),
    row(
      `shore apply rate, ${VESSELS} vessels: NATS cluster vs Mosquitto (/s)`,
      nats.fleet.rate,
      mosq.fleet.rate,
    ),
    row(
      `every vessel acknowledged again after kill -9 of one NATS node (s)`,
      nats.recovery ?? NaN,
      null,
    ),
    row(
      `shore RSS, ${VESSELS} vessels connected vs idle, Mosquitto (MB)`,
      mosq.fleetRss,
      mosq.idleRss,
    ),
    row(`shore RSS, ${VESSELS} vessels connected vs idle, NATS (MB)`, nats.fleetRss, nats.idleRss),
    row(
      "changes applied exactly once (Mosquitto, NATS)",
      Number(mosq.exactlyOnce) + Number(nats.exactlyOnce),
      2,
      "both",
      mosq.exactlyOnce && nats.exactlyOnce,
    ),
  ];
}

if (import.meta.main) {
  for (const r of await run()) console.log(JSON.stringify(r));
}
