/**
 * The faults a chaos run injects, each one a script that breaks something and heals it again.
 * Every random choice comes from the run's seeded PRNG.
 */
import type { Mosquitto } from "../support/mosquitto.ts";
import type { PgCluster } from "../support/pgcluster.ts";
import { type Proxy, type ProxyMode, SATELLITE } from "../support/proxy.ts";
import type { GatewayProcess } from "./process.ts";
import type { Rng } from "./prng.ts";

/** Everything a fault can break. */
export interface World {
  rng: Rng;
  vessel: GatewayProcess;
  shore: GatewayProcess;
  broker: Mosquitto;
  /** Mosquitto's persistence directory (its file is deleted for a restart "without"). */
  brokerPersistenceDir: string;
  vesselPg: PgCluster;
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
  await w.broker.kill();
  if (!persistent) {
    for await (const entry of Deno.readDir(w.brokerPersistenceDir)) {
      await Deno.remove(`${w.brokerPersistenceDir}/${entry.name}`, { recursive: true });
    }
  }
  await sleep(w.rng.int(0, 3_000));
  await w.broker.restart();
}

async function bouncePg(w: World, pg: PgCluster, mode: "fast" | "immediate") {
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
        if (!pg.running) await pg.start().catch(() => pg.restart("immediate"));
        break;
      }
      case "broker":
        await w.broker.kill();
        await w.broker.restart();
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

/** The kinds a run draws from (a satellite-profile run is throttled throughout already). */
export function kindsFor(satellite: boolean): readonly FaultKind[] {
  return satellite ? FAULT_KINDS.filter((k) => k !== "satellite_spell") : FAULT_KINDS;
}
