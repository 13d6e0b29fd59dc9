/**
 * The faults a chaos run injects, each one a script that breaks something and heals it again.
 * Every random choice comes from the run's seeded PRNG.
 */
import type { Mosquitto } from "../support/mosquitto.ts";
import type { NatsCluster } from "../support/nats.ts";
import type { PgCluster } from "../support/pgcluster.ts";
import { type Proxy, type ProxyMode, SATELLITE } from "../support/proxy.ts";
import type { GatewayProcess } from "./process.ts";
import type { Rng } from "./prng.ts";

/** Everything a fault can break. */
export interface World {
  rng: Rng;
  vessel: GatewayProcess;
  shore: GatewayProcess;
  /** The single Mosquitto (absent with `--broker nats`). */
  broker?: Mosquitto;
  /** Mosquitto's persistence directory (its file is deleted for a restart "without"). */
  brokerPersistenceDir?: string;
  /** The three-node NATS cluster (with `--broker nats`). */
  nats?: NatsCluster;
  /** Server PostgreSQL of the vessel; absent when the vessel runs on its embedded PGlite. */
  vesselPg?: PgCluster;
  shorePg: PgCluster;
  vesselLink: Proxy;
  shoreLink: Proxy;
  /** The links' mode between faults: pass, or the satellite throttle for a whole run. */
  baseMode: ProxyMode;
  /** Short partitions only (1–5 s), for the CI-sized run. */
  ci: boolean;
}

/** The kinds of fault, as counted in the results. */
export const FAULT_KINDS = [
  "kill_vessel",
  "kill_vessel_draining",
  "kill_shore",
  "kill_broker_persistent",
  "kill_broker_clean",
  "pg_vessel_fast",
  "pg_vessel_immediate",
  "pg_shore_fast",
  "pg_shore_immediate",
  "partition_vessel_cut",
  "partition_vessel_blackhole",
  "partition_shore_cut",
  "partition_shore_blackhole",
  "satellite_spell",
  "nats_node_kill",
] as const;

/** One of {@linkcode FAULT_KINDS}. */
export type FaultKind = typeof FAULT_KINDS[number];

/** A part of the system a fault breaks; two faults run at once only on disjoint parts. */
export type Component =
  | "vessel"
  | "shore"
  | "broker"
  | "vesselPg"
  | "shorePg"
  | "vesselLink"
  | "shoreLink";

/** What each kind of fault breaks. */
export const COMPONENTS: Record<FaultKind, readonly Component[]> = {
  kill_vessel: ["vessel"],
  kill_vessel_draining: ["vessel", "vesselLink"],
  kill_shore: ["shore"],
  kill_broker_persistent: ["broker"],
  kill_broker_clean: ["broker"],
  pg_vessel_fast: ["vesselPg"],
  pg_vessel_immediate: ["vesselPg"],
  pg_shore_fast: ["shorePg"],
  pg_shore_immediate: ["shorePg"],
  partition_vessel_cut: ["vesselLink"],
  partition_vessel_blackhole: ["vesselLink"],
  partition_shore_cut: ["shoreLink"],
  partition_shore_blackhole: ["shoreLink"],
  satellite_spell: ["vesselLink", "shoreLink"],
  nats_node_kill: ["broker"],
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A partition's length: mostly short so that many fit in a run, sometimes up to 2 minutes
 * (past the MQTT keepalive, so both ends notice and reconnect into the partition).
 */
function partitionMs(w: World): number {
  if (w.ci) return w.rng.int(1_000, 5_000);
  const r = w.rng.next();
  if (r < 0.8) return w.rng.int(1_000, 4_000);
  if (r < 0.97) return w.rng.int(4_000, 20_000);
  return w.rng.int(20_000, 120_000);
}

async function restartBroker(w: World, persistent: boolean) {
  const broker = w.broker!;
  await broker.kill();
  if (!persistent) {
    for await (const entry of Deno.readDir(w.brokerPersistenceDir!)) {
      await Deno.remove(`${w.brokerPersistenceDir}/${entry.name}`, { recursive: true });
    }
  }
  await sleep(w.rng.int(0, 3_000));
  await broker.restart();
}

/**
 * kill -9 of one NATS node (any of the three: the vessel's, the shore's, or the third), down
 * for up to 10 s, then started again on its store. The fault ends once the cluster has a
 * leader for JetStream and every stream again (replicas may still be catching up: see
 * tests/support/nats.ts on nats-server 2.9.10).
 */
async function killNatsNode(w: World) {
  const nats = w.nats!;
  const i = w.rng.int(0, 2);
  await nats.kill(i);
  await sleep(w.rng.int(1_000, 10_000));
  await nats.restart(i);
  await nats.waitReady(120_000, { replicasCurrent: false });
}

async function bouncePg(w: World, pg: PgCluster | undefined, mode: "fast" | "immediate") {
  if (!pg) throw new Error("a PostgreSQL fault drawn for an embedded vessel (see kindsFor)");
  await pg.stop(mode);
  await sleep(w.rng.int(500, 5_000));
  await pg.start();
}

async function partition(w: World, link: Proxy, kind: "cut" | "blackhole") {
  link.setMode({ kind });
  await sleep(partitionMs(w));
  link.setMode(w.baseMode);
}

async function killAndRestart(w: World, p: GatewayProcess, maxDownMs: number) {
  await p.kill();
  await sleep(w.rng.int(0, maxDownMs));
  await p.start();
}

/** Injects one fault of `kind` and heals it; resolves when it has ended. */
export async function inject(w: World, kind: FaultKind): Promise<void> {
  switch (kind) {
    case "kill_vessel":
      // The writers never stop, so the kill lands among open requests and transactions.
      return killAndRestart(w, w.vessel, 3_000);
    case "kill_vessel_draining": {
      // Build a backlog behind a cut link, heal it, and kill while the publisher drains it.
      w.vesselLink.setMode({ kind: "cut" });
      await sleep(w.rng.int(2_000, 6_000));
      w.vesselLink.setMode(w.baseMode);
      await sleep(w.rng.int(100, 1_500));
      return killAndRestart(w, w.vessel, 2_000);
    }
    case "kill_shore":
      return killAndRestart(w, w.shore, 5_000);
    case "kill_broker_persistent":
      return restartBroker(w, true);
    case "kill_broker_clean":
      return restartBroker(w, false);
    case "pg_vessel_fast":
      return bouncePg(w, w.vesselPg, "fast");
    case "pg_vessel_immediate":
      return bouncePg(w, w.vesselPg, "immediate");
    case "pg_shore_fast":
      return bouncePg(w, w.shorePg, "fast");
    case "pg_shore_immediate":
      return bouncePg(w, w.shorePg, "immediate");
    case "partition_vessel_cut":
      return partition(w, w.vesselLink, "cut");
    case "partition_vessel_blackhole":
      return partition(w, w.vesselLink, "blackhole");
    case "partition_shore_cut":
      return partition(w, w.shoreLink, "cut");
    case "partition_shore_blackhole":
      return partition(w, w.shoreLink, "blackhole");
    case "satellite_spell": {
      const mode: ProxyMode = {
        kind: "throttle",
        throttle: { ...SATELLITE, loss: w.rng.between(0.01, 0.03) },
      };
      w.vesselLink.setMode(mode);
      w.shoreLink.setMode(mode);
      await sleep(w.ci ? w.rng.int(2_000, 8_000) : w.rng.int(3_000, 20_000));
      w.vesselLink.setMode(w.baseMode);
      w.shoreLink.setMode(w.baseMode);
      return;
    }
    case "nats_node_kill":
      return killNatsNode(w);
  }
}

/**
 * Puts `parts` back as they are between faults (links at their base mode, databases, broker
 * and gateways running): used after a fault script failed half-way.
 */
export async function heal(w: World, parts: readonly Component[]): Promise<void> {
  for (const part of parts) {
    switch (part) {
      case "vesselLink":
        w.vesselLink.setMode(w.baseMode);
        break;
      case "shoreLink":
        w.shoreLink.setMode(w.baseMode);
        break;
      case "vesselPg":
      case "shorePg": {
        const pg = part === "vesselPg" ? w.vesselPg : w.shorePg;
        if (pg && !pg.running) await pg.start().catch(() => pg.restart("immediate"));
        break;
      }
      case "broker":
        if (w.broker) {
          await w.broker.kill();
          await w.broker.restart();
        }
        if (w.nats) {
          for (const [i, node] of w.nats.nodes.entries()) {
            if (!node.running) await w.nats.restart(i);
          }
          await w.nats.waitReady(120_000, { replicasCurrent: false });
        }
        break;
      case "vessel":
      case "shore": {
        const p = part === "vessel" ? w.vessel : w.shore;
        if (!p.running) await p.start();
        break;
      }
    }
  }
}

/** What a run's system is made of, as far as the kinds of fault go. */
export interface KindsOptions {
  /** A satellite-profile run is throttled throughout already: no satellite spells. */
  satellite?: boolean;
  /** An embedded vessel has no PostgreSQL cluster to stop: no `pg_vessel_*`. */
  vesselDb?: "postgres" | "embedded";
  /** Mosquitto restarts for a single broker, node kills for the NATS cluster. */
  broker?: "mosquitto" | "nats";
}

/** The kinds a run draws from. */
export function kindsFor(options: KindsOptions = {}): readonly FaultKind[] {
  const { satellite = false, vesselDb = "postgres", broker = "mosquitto" } = options;
  const kinds = FAULT_KINDS.filter((k) => {
    if (satellite && k === "satellite_spell") return false;
    if (vesselDb === "embedded" && k.startsWith("pg_vessel_")) return false;
    if (broker === "nats" && k.startsWith("kill_broker_")) return false;
    if (broker === "mosquitto" && k === "nats_node_kill") return false;
    return true;
  });
  // The node kill is what a NATS run is for: drawn three times as often as any other kind
  // (about one fault in five), where a single Mosquitto's two restart kinds are two in fourteen.
  // Seen: at equal weight, 60 faults held 4 node kills.
  return broker === "nats" ? [...kinds, "nats_node_kill", "nats_node_kill"] : kinds;
}
