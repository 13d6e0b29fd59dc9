/**
 * `deno task chaos -- --seed S --faults N --minutes M [--profile satellite] [--ci]
 *   [--vessel-db postgres|embedded] [--link-mode frames|messages] [--broker mosquitto|nats]
 *   [--two-way]`
 *
 * Runs a vessel gateway, a shore gateway, a broker (one Mosquitto, or a three-node NATS
 * cluster with the vessel on one node and the shore on another) and PostgreSQL clusters of its
 * own (the vessel's only with `--vessel-db postgres`; `embedded` runs it on PGlite under its
 * DATA_DIR), with a TCP proxy between each gateway and the broker; drives concurrent writers on
 * board; injects randomized faults from the seed until N faults or M minutes, whichever comes
 * first; lets the system settle, and prints the verdict computed from both databases as one
 * line:
 *
 *   faults=N changes=M lost=0 double_applied=0 diverged=0 reports_untrue=0 redelivery_ratio=R
 *   max_recovery_s=S link_mode=L vessel_db=D broker=B
 *
 * With `--two-way` the office writes through the shore's API on the same records as the crew
 * (tests/chaos/two-way.ts), the run settles only once the down stream is acknowledged too, and
 * the line adds the down direction, conflicts and convergence:
 *
 *   office_writes=N down_changes=M down_lost=0 down_double_applied=0 conflicts_recorded=C
 *   conflicts_unmatched=0 unconverged=0
 *
 * Exits non-zero on any loss, double apply or divergence, on a /health or /metrics statement
 * the vessel's database contradicts once settled, or when the system never settles.
 */
import { parseArgs } from "node:util";
import { guardProcess } from "../../core/guard.ts";
import { createLogger } from "../../core/log.ts";
import { createPgCluster } from "../support/pgcluster.ts";
import { type Mosquitto, startMosquitto } from "../support/mosquitto.ts";
import { type NatsCluster, SHORE_USER, startNatsCluster } from "../support/nats.ts";
import { type ProxyMode, SATELLITE, startProxy } from "../support/proxy.ts";
import { freePort } from "../support/ports.ts";
import { createRng } from "./prng.ts";
import { gatewayProcess } from "./process.ts";
import { startWriters } from "./writers.ts";
import type { Entity } from "../../core/entities.ts";
import { type FaultKind, heal, kindsFor, type World } from "./faults.ts";
import { runSchedule } from "./schedule.ts";
import { trackRecovery, trackRecoveryByHealth, watchCounters } from "./observe.ts";
import { computeVerdict, openVesselDb, type Verdict, type VesselReports } from "./verdict.ts";
import {
  computeTwoWayVerdict,
  downUnacked,
  twoWayLine,
  twoWayOk,
  type TwoWayVerdict,
} from "./two-way.ts";

/** Options for {@linkcode runChaos}. */
export interface ChaosOptions {
  seed: number;
  /** Stop injecting after this many faults… */
  faults: number;
  /** …or after this many minutes, whichever comes first. */
  minutes: number;
  /** `satellite`: both links throttled to {@linkcode SATELLITE} for the whole run. */
  profile?: "lan" | "satellite";
  /** Short partitions and spells only, for the run inside `deno task test`. */
  ci?: boolean;
  /** How long to wait for the system to settle after the last fault. */
  settleMinutes?: number;
  /** Progress lines (stderr by default). */
  log?: (line: string) => void;
  /** Faults at once, on disjoint parts of the system (default 2, 1 with `ci`). */
  concurrency?: number;
  /** Keep the working directory (logs, data) even when the run passes. */
  keep?: boolean;
  /** The vessel's database: server PostgreSQL (default), or embedded PGlite (no DATABASE_URL). */
  vesselDb?: "postgres" | "embedded";
  /** LINK_MODE for both gateways; unset, each takes its own default. */
  linkMode?: "frames" | "messages";
  /** One Mosquitto (default), or a three-node NATS cluster with MQTT 3.1.1. */
  broker?: "mosquitto" | "nats";
  /** Office writers on the shore's API as well, on the same records (two-way sync). */
  twoWay?: boolean;
}

/** What a run found. */
export interface ChaosResult {
  seed: number;
  faults: number;
  byKind: Record<FaultKind, number>;
  settled: boolean;
  verdict: Verdict;
  twoWay?: TwoWayVerdict;
  redeliveryRatio: number;
  maxRecoverySeconds: number;
  /** Gateway processes that died on their own (and were restarted), by role. */
  crashes: { vessel: number; shore: number };
  /** The one-line summary. */
  line: string;
  ok: boolean;
  workDir: string;
}

const VESSEL_ID = "chaos-1";
/** Shore counters whose sum is "messages received": applied, discarded as duplicates, shed. */
export const SHORE_RECEIVED_COUNTERS = [
  "bosun_shore_applied_total",
  "bosun_shore_duplicates_total",
  "bosun_shore_shed_total",
] as const;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs one chaos run and returns its verdict; never throws on a failed verdict. */
export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const { seed, profile = "lan", ci = false, log = (l) => console.error(l) } = options;
  const { vesselDb = "postgres", broker: brokerKind = "mosquitto" } = options;
  const satellite = profile === "satellite";
  const settleMs = (options.settleMinutes ?? (satellite ? 15 : 5)) * 60_000;
  const rng = createRng(seed);
  const workDir = await Deno.makeTempDir({ prefix: "bosun-chaos-" });
  log(
    `chaos: seed=${seed} faults=${options.faults} minutes=${options.minutes} profile=${profile}${
      ci ? " ci" : ""
    } vessel_db=${vesselDb} link_mode=${options.linkMode ?? "default"} broker=${brokerKind} ` +
      `dir=${workDir}`,
  );

  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => {});
  };
  try {
    const [vesselPg, shorePg] = await Promise.all([
      vesselDb === "postgres" ? createPgCluster({ databases: ["bosun"] }) : undefined,
      createPgCluster({ databases: ["bosun"] }),
    ]);
    if (vesselPg) cleanups.push(() => vesselPg[Symbol.asyncDispose]());
    cleanups.push(() => shorePg[Symbol.asyncDispose]());

    let broker: Mosquitto | undefined;
    let brokerPersistenceDir: string | undefined;
    let nats: NatsCluster | undefined;
    let vesselTarget: number, shoreTarget: number;
    if (brokerKind === "nats") {
      // The vessel on node 1, the shore on node 2, node 3 holding replicas only: each gateway
      // takes one broker URL, so a kill of its node is a broker outage for it until restarted.
      nats = await startNatsCluster({ vessels: [VESSEL_ID], readyTimeoutMs: 120_000 });
      cleanups.push(() => nats![Symbol.asyncDispose]());
      vesselTarget = nats.nodes[0]!.mqttPort;
      shoreTarget = nats.nodes[1]!.mqttPort;
    } else {
      brokerPersistenceDir = await Deno.makeTempDir({ prefix: "bosun-chaos-mosq-" });
      const dir = brokerPersistenceDir;
      cleanups.push(() => Deno.remove(dir, { recursive: true }));
      // Mosquitto writes its persistence file only now and then: once a second here, so that a
      // kill -9 "with persistence" restores a recent but stale session, as it would at sea.
      broker = await startMosquitto({
        persistenceDir: brokerPersistenceDir,
        extraConfig: "autosave_interval 1",
      });
      const b = broker;
      cleanups.push(() => b[Symbol.asyncDispose]());
      vesselTarget = shoreTarget = broker.port;
    }
    const baseMode: ProxyMode = satellite ? { kind: "throttle", throttle: SATELLITE } : {
      kind: "pass",
    };
    const vesselLink = startProxy({ target: { port: vesselTarget }, random: rng.fork().next });
    const shoreLink = startProxy({ target: { port: shoreTarget }, random: rng.fork().next });
    vesselLink.setMode(baseMode);
    shoreLink.setMode(baseMode);
    cleanups.push(() => vesselLink.close(), () => shoreLink.close());

    const token = `chaos-${crypto.randomUUID()}`;
    const common: Record<string, string> = {
      VESSEL_ID,
      API_TOKENS: token,
      ACK_TIMEOUT_S: "2",
      MQTT_KEEPALIVE_S: "5",
      LOCAL_MODE: "true",
    };
    if (options.linkMode) common.LINK_MODE = options.linkMode;
    if (nats) common.MQTT_PROTOCOL = "3.1.1";
    // Each gateway its own DATA_DIR: the vessel's holds its PGlite when embedded, and a
    // DATA_DIR is locked by the one process that owns it (core/data-dir.ts).
    const vesselDataDir = `${workDir}/vessel-data`;
    const vessel = gatewayProcess({
      name: "vessel",
      port: freePort(),
      logFile: `${workDir}/vessel.log`,
      startTimeoutMs: vesselPg ? 60_000 : 300_000,
      env: {
        ...common,
        ROLE: "vessel",
        DATA_DIR: vesselDataDir,
        ...(vesselPg ? { DATABASE_URL: vesselPg.url("bosun") } : {}),
        MQTT_BROKER_URL: vesselLink.url(),
        ...(nats ? { MQTT_USERNAME: VESSEL_ID, MQTT_PASSWORD: nats.passwords[VESSEL_ID]! } : {}),
      },
    });
    const shore = gatewayProcess({
      name: "shore",
      port: freePort(),
      logFile: `${workDir}/shore.log`,
      env: {
        ...common,
        ROLE: "shore",
        DATA_DIR: `${workDir}/shore-data`,
        DATABASE_URL: shorePg.url("bosun"),
        MQTT_BROKER_URL: shoreLink.url(),
        ...(nats ? { MQTT_USERNAME: SHORE_USER, MQTT_PASSWORD: nats.passwords[SHORE_USER]! } : {}),
      },
    });
    await Promise.all([shore.start(), vessel.start()]);
    cleanups.push(() => vessel.kill(), () => shore.kill());

    const world: World = {
      rng,
      vessel,
      shore,
      broker,
      brokerPersistenceDir,
      nats,
      vesselPg,
      shorePg,
      vesselLink,
      shoreLink,
      baseMode,
      ci,
    };
    // Every recovery is logged, so that a long max_recovery_s can be traced to its fault.
    const onRecovered = (label: string, seconds: number, how: string) =>
      log(`recovered ${label} after ${seconds.toFixed(1)}s (${how})`);
    const recovery = vesselPg
      ? trackRecovery(vesselPg.url("bosun"), onRecovered)
      : trackRecoveryByHealth(vessel, onRecovered);
    cleanups.push(() => recovery.close());
    const received = watchCounters(shore, SHORE_RECEIVED_COUNTERS);
    // Two-way: both sides' writers draw from one pool of live records, so they edit (and
    // delete) the same records; a record not yet across is a 404, counted as refused.
    const live: { entity: Entity; id: string }[] = [];
    const writers = startWriters({
      baseUrl: vessel.baseUrl,
      token,
      count: satellite ? 2 : 3,
      rng: rng.fork(),
      pauseMs: satellite ? 200 : 30,
      live,
    });
    const office = options.twoWay
      ? startWriters({
        baseUrl: shore.baseUrl,
        token,
        count: 2,
        rng: rng.fork(),
        pauseMs: satellite ? 200 : 30,
        query: `?vesselId=${VESSEL_ID}`,
        live,
      })
      : undefined;

    // Faults until N faults or M minutes, up to `concurrency` at once on disjoint parts.
    const deadline = Date.now() + options.minutes * 60_000;
    await sleep(2_000);
    const byKind = await runSchedule({
      world,
      kinds: kindsFor({ satellite, vesselDb, broker: brokerKind }),
      faults: options.faults,
      deadline,
      concurrency: options.concurrency ?? (ci ? 1 : 2),
      log,
      async onEnd(kind, seconds, index) {
        await recovery.markEnd(`fault ${index} ${kind}`);
        log(
          `fault ${index} ${kind} ${seconds.toFixed(1)}s acked=${writers.acked.length} ` +
            `refused=${writers.failed}`,
        );
      },
    });
    const faults = Object.values(byKind).reduce((s, n) => s + n, 0);
    await writers.stop();
    await office?.stop();
    log(`faults done: ${faults}; writes acked=${writers.acked.length} refused=${writers.failed}`);
    if (office) {
      log(`office writes acked=${office.acked.length} refused=${JSON.stringify(office.refusals)}`);
      log(`crew writes refused=${JSON.stringify(writers.refusals)}`);
    }

    // Everything up again (a gateway that crashed is being restarted by its supervisor).
    await heal(world, ["vesselLink", "shoreLink", "vesselPg", "shorePg", "vessel", "shore"]);
    if (nats) await heal(world, ["broker"]);
    const crashes = { vessel: vessel.crashes, shore: shore.crashes };
    if (crashes.vessel || crashes.shore) {
      log(`gateway crashes (restarted): ${JSON.stringify(crashes)}`);
    }

    // Settle: every change acknowledged by shore, as the vessel itself reports it.
    const settleDeadline = Date.now() + settleMs;
    let settled = false;
    let lastHealth: Record<string, unknown> | undefined;
    while (Date.now() < settleDeadline) {
      lastHealth = await vessel.health();
      if (
        lastHealth?.queuedMessages === 0 && lastHealth?.unackedMessages === 0 &&
        (!office || await downUnacked(shorePg.url("bosun"), VESSEL_ID).catch(() => -1) === 0)
      ) {
        settled = await recovery.settle(30_000);
        break;
      }
      await sleep(500);
    }
    if (!settled) log(`not settled; vessel health: ${JSON.stringify(lastHealth)}`);
    const maxRecoverySeconds = recovery.maxSeconds();
    await recovery.close();
    await received.close();
    // What the vessel says about itself once settled, to be held to its database; nothing is
    // written any more, so the database cannot move between this and the clean stop.
    const reports: VesselReports = {
      health: await vessel.health(),
      metrics: await vessel.metrics(),
    };
    const linkMode = typeof reports.health?.linkMode === "string"
      ? reports.health.linkMode
      : options.linkMode ?? "default";
    // A clean stop, so that nothing is mid-write when the databases are read (and the embedded
    // database is closed by its gateway before it is opened here).
    await Promise.all([vessel.stop(), shore.stop()]);

    const totals = received.totals();
    const vesselData = await openVesselDb(
      vesselPg ? { url: vesselPg.url("bosun") } : { pgliteDir: `${vesselDataDir}/pgdata` },
    );
    let verdict: Verdict, twoWay: TwoWayVerdict | undefined;
    try {
      verdict = await computeVerdict({
        vessel: vesselData,
        shoreUrl: shorePg.url("bosun"),
        vesselId: VESSEL_ID,
        acked: writers.acked,
        shoreAppliedCounter: totals["bosun_shore_applied_total"],
        reports,
      });
      twoWay = office && await computeTwoWayVerdict({
        vessel: vesselData,
        shoreUrl: shorePg.url("bosun"),
        vesselId: VESSEL_ID,
        officeAcked: office.acked,
      });
    } finally {
      await vesselData.close();
    }
    const receivedCount = SHORE_RECEIVED_COUNTERS.reduce((s, n) => s + (totals[n] ?? 0), 0);
    const redeliveryRatio = verdict.changes ? receivedCount / verdict.changes : 0;
    const line = `faults=${faults} changes=${verdict.changes} lost=${verdict.lost} ` +
      `double_applied=${verdict.doubleApplied} diverged=${verdict.diverged} ` +
      `reports_untrue=${verdict.reportsUntrue} ` +
      `redelivery_ratio=${redeliveryRatio.toFixed(3)} max_recovery_s=${
        maxRecoverySeconds.toFixed(1)
      } link_mode=${linkMode} vessel_db=${vesselDb} broker=${brokerKind}` +
      (twoWay ? ` ${twoWayLine(twoWay)}` : "");
    for (const e of [...verdict.examples, ...twoWay?.examples ?? []]) log(`  ${e}`);
    log(`faults by kind: ${JSON.stringify(byKind)}`);
    const ok = settled && verdict.lost === 0 && verdict.doubleApplied === 0 &&
      verdict.diverged === 0 && verdict.reportsUntrue === 0 && (!twoWay || twoWayOk(twoWay));
    return {
      seed,
      faults,
      byKind,
      settled,
      verdict,
      twoWay,
      redeliveryRatio,
      maxRecoverySeconds,
      crashes,
      line,
      ok,
      workDir,
    };
  } finally {
    await cleanup();
  }
}

/**
 * The commit the gateways run: CHAOS_COMMIT when the run starts from a snapshot of the tree
 * (`git archive`, so that merges made meanwhile do not reach its gateways), else the checkout's.
 */
async function commitOf(): Promise<string> {
  const given = Deno.env.get("CHAOS_COMMIT");
  if (given) return given;
  try {
    const out = await new Deno.Command("git", { args: ["rev-parse", "--short", "HEAD"] }).output();
    return new TextDecoder().decode(out.stdout).trim() || "unknown";
  } catch {
    return "unknown";
  }
}

if (import.meta.main) {
  // The harness's own database connections die with the faults it injects: postgres.js can
  // then throw from a socket callback no caller can catch (seen: "This socket has been ended by
  // the other party", ending a run at its second fault). The gateways carry on through those;
  // so does the harness, whose queries retry under their own deadlines.
  guardProcess(createLogger({ level: "warn" }));
  const { values } = parseArgs({
    args: Deno.args.filter((a) => a !== "--"),
    options: {
      seed: { type: "string" },
      faults: { type: "string", default: "20" },
      minutes: { type: "string", default: "5" },
      profile: { type: "string", default: "lan" },
      settle: { type: "string" },
      ci: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      record: { type: "string" },
      concurrency: { type: "string" },
      "vessel-db": { type: "string", default: "postgres" },
      "link-mode": { type: "string" },
      broker: { type: "string", default: "mosquitto" },
      "two-way": { type: "boolean", default: false },
    },
  });
  const seed = values.seed === undefined
    ? Math.floor(Math.random() * 2 ** 31)
    : Number(values.seed);
  const profile = values.profile === "satellite" ? "satellite" : "lan";
  if (!Number.isInteger(seed) || (values.profile !== "lan" && values.profile !== "satellite")) {
    console.error('chaos: "--seed" must be an integer and "--profile" "lan" or "satellite"');
    Deno.exit(2);
  }
  const vesselDb = values["vessel-db"], linkMode = values["link-mode"], broker = values.broker;
  if (
    (vesselDb !== "postgres" && vesselDb !== "embedded") ||
    (linkMode !== undefined && linkMode !== "frames" && linkMode !== "messages") ||
    (broker !== "mosquitto" && broker !== "nats")
  ) {
    console.error(
      'chaos: "--vessel-db" must be "postgres" or "embedded", "--link-mode" "frames" or ' +
        '"messages", "--broker" "mosquitto" or "nats"',
    );
    Deno.exit(2);
  }
  console.log(`seed=${seed}`);
  // The machine is shared: the 1-minute load average, sampled every 30 s, goes with the figures.
  const loads: number[] = [];
  const sampleLoad = () => loads.push(Deno.loadavg()[0]!);
  sampleLoad();
  const loadTimer = setInterval(sampleLoad, 30_000);
  const startedAt = new Date().toISOString();
  const result = await runChaos({
    log: (line) => console.error(`${new Date().toISOString().slice(11, 19)} ${line}`),
    seed,
    faults: Number(values.faults),
    minutes: Number(values.minutes),
    profile,
    ci: values.ci,
    keep: values.keep,
    concurrency: values.concurrency === undefined ? undefined : Number(values.concurrency),
    settleMinutes: values.settle === undefined ? undefined : Number(values.settle),
    vesselDb,
    linkMode,
    broker,
    twoWay: values["two-way"],
  });
  clearInterval(loadTimer);
  sampleLoad();
  const load = {
    start: loads[0]!,
    end: loads.at(-1)!,
    mean: Number((loads.reduce((s, l) => s + l, 0) / loads.length).toFixed(2)),
    max: Math.max(...loads),
  };
  console.log(result.line);
  console.log(`load_1min start=${load.start} mean=${load.mean} max=${load.max} end=${load.end}`);
  if (values.record) {
    // One JSON line per run, for tests/chaos/tally.ts to add up into RESULTS.md.
    const entry = {
      // 2: Mosquitto can write its persistence file (before, "persistent" restarts were clean);
      // 3: crashed gateways are restarted and counted;
      // 4: --vessel-db, --link-mode, --broker, and /health and /metrics held to the database;
      // 5: the commit the gateways ran, the load average, the figures as fields of their own.
      harness: 5,
      startedAt,
      at: new Date().toISOString(),
      commit: await commitOf(),
      load,
      faults: result.faults,
      changes: result.verdict.changes,
      redeliveryRatio: Number(result.redeliveryRatio.toFixed(3)),
      maxRecoverySeconds: Number(result.maxRecoverySeconds.toFixed(1)),
      command: `deno task chaos -- ${Deno.args.filter((a) => a !== "--").join(" ")}`,
      seed,
      profile,
      vesselDb,
      linkMode: linkMode ?? null,
      broker,
      twoWay: values["two-way"],
      ok: result.ok,
      settled: result.settled,
      line: result.line,
      byKind: result.byKind,
      crashes: result.crashes,
      examples: result.verdict.examples,
    };
    await Deno.writeTextFile(values.record, JSON.stringify(entry) + "\n", { append: true });
  }
  if (!result.ok || values.keep) console.error(`chaos: logs and data kept in ${result.workDir}`);
  else await Deno.remove(result.workDir, { recursive: true }).catch(() => {});
  Deno.exit(result.ok ? 0 : 1);
}
