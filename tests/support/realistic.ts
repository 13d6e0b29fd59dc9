/**
 * Realistic change streams for the frame codec's tests and bench/codec.ts: work orders with
 * free-text descriptions, alerts, equipment, crew and maintenance schedules with random UUID
 * ids, as a vessel's outage then live traffic produces them (creates, then patches and
 * deletes of records created earlier), each `data` in PostgreSQL's jsonb key order.
 */
import type { Entity } from "../../core/entities.ts";
import { deriveMessageId } from "../../sync/message-id.ts";
import type { Envelope } from "../../sync/protocol.ts";
import { createRng, type Rng, uuid } from "../chaos/prng.ts";

const WORDS = (
  "inspect replace check clean lubricate adjust tighten overhaul calibrate test drain flush " +
  "seal gasket bearing impeller shaft coupling valve pump filter strainer cooler heat " +
  "exchanger cylinder liner piston ring injector nozzle turbocharger compressor separator " +
  "purifier boiler feed water fuel oil lube sea chest bilge ballast fire main steering gear " +
  "hydraulic winch windlass crane davit lifeboat hatch cover ventilation fan motor breaker " +
  "switchboard generator alternator battery charger radar gyro compass echo sounder antenna " +
  "leak crack corrosion wear vibration noise temperature pressure high low abnormal found " +
  "during round on watch port starboard aft forward deck engine room frame near the of and " +
  "with after before at to for was is not replaced spare parts ordered from stock per maker " +
  "manual reading readings logged observed reported by chief second third engineer officer " +
  "rpm bar degrees hours since last overhaul due within next port call class survey"
).split(" ");
const FIRST = ["Ana", "Jonas", "Mei", "Ravi", "Olga", "Tomás", "Kwame", "Lena", "Ivan", "Sofia"];
const LAST = ["Silva", "Berg", "Chen", "Nair", "Petrova", "García", "Mensah", "Koch", "Ionescu"];
const RANKS = ["Master", "Chief Officer", "2nd Officer", "Chief Engineer", "2nd Engineer", "AB"];
const ROLES = ["deck", "engine", "catering", "electrical"];
const TYPES = ["pump", "engine", "generator", "compressor", "valve", "separator", "winch"];
const PLACES = ["engine room", "pump room", "steering gear room", "bridge", "forecastle", "deck"];

const sentence = (rng: Rng, min: number, max: number) => {
  const n = rng.int(min, max);
  const words = Array.from({ length: n }, () => rng.pick(WORDS));
  const s = words.join(" ");
  return s[0]!.toUpperCase() + s.slice(1) + ".";
};
const text = (rng: Rng, sentences: number) =>
  Array.from({ length: sentences }, () => sentence(rng, 5, 16)).join(" ");
const person = (rng: Rng) => `${rng.pick(FIRST)} ${rng.pick(LAST)}`;

/** Keys in jsonb's order: shorter first, then bytewise. */
function jsonbOrder(o: Record<string, unknown>): Record<string, unknown> {
  const keys = Object.keys(o).filter((k) => o[k] !== undefined && o[k] !== null);
  keys.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(keys.map((k) => [k, o[k]]));
}

function fields(entity: Entity, rng: Rng, equipment: string[], at: number) {
  const eq = () => equipment.length ? rng.pick(equipment) : uuid(rng);
  const later = () => new Date(at + rng.int(1, 90) * 86_400_000).toISOString();
  switch (entity) {
    case "work_orders":
      return {
        title: sentence(rng, 3, 8).slice(0, 200),
        equipmentId: eq(),
        description: rng.chance(0.8) ? text(rng, rng.int(1, 4)) : undefined,
        status: "open",
        priority: rng.int(1, 5),
        assignedTo: rng.chance(0.6) ? person(rng) : undefined,
        dueAt: rng.chance(0.5) ? later() : undefined,
      };
    case "alerts":
      return {
        equipmentId: eq(),
        severity: rng.pick(["info", "warning", "warning", "critical"]),
        message: `${sentence(rng, 3, 10)} Reading ${rng.int(0, 999)} ${
          rng.pick(["bar", "°C", "rpm"])
        }`,
        acknowledged: false,
      };
    case "equipment":
      return {
        name: `${rng.pick(TYPES)} ${rng.int(1, 6)} ${rng.pick(["port", "stbd", "centre"])}`,
        type: rng.pick(TYPES),
        location: `${rng.pick(PLACES)}, frame ${rng.int(1, 180)}`,
        status: rng.pick(["running", "stopped", "maintenance"]),
        runningHours: rng.int(0, 60_000),
      };
    case "crew":
      return {
        name: person(rng),
        rank: rng.pick(RANKS),
        role: rng.pick(ROLES),
        onboard: rng.chance(0.85),
      };
    case "maintenance_schedules":
      return {
        equipmentId: eq(),
        task: sentence(rng, 3, 9),
        intervalHours: rng.pick([250, 500, 1000, 2000, 4000, 8000]),
        lastDoneAt: rng.chance(0.7)
          ? new Date(at - rng.int(1, 300) * 3_600_000).toISOString()
          : undefined,
        nextDueAt: later(),
      };
  }
}

function patch(entity: Entity, rng: Rng): Record<string, unknown> {
  switch (entity) {
    case "work_orders":
      return rng.chance(0.5)
        ? { status: rng.pick(["in_progress", "completed"]) }
        : { status: "in_progress", description: text(rng, rng.int(1, 3)) };
    case "alerts":
      return { acknowledged: true, acknowledgedBy: person(rng) };
    case "equipment":
      return { runningHours: rng.int(0, 60_000), status: rng.pick(["running", "stopped"]) };
    case "crew":
      return { onboard: rng.chance(0.5) };
    case "maintenance_schedules":
      return { lastDoneAt: new Date().toISOString(), intervalHours: rng.pick([500, 1000]) };
  }
}

const MIX: Entity[] = [
  ...Array<Entity>(7).fill("work_orders"),
  ...Array<Entity>(5).fill("alerts"),
  ...Array<Entity>(3).fill("equipment"),
  ...Array<Entity>(2).fill("crew"),
  ...Array<Entity>(3).fill("maintenance_schedules"),
];

/** Options for {@linkcode realisticChanges}. */
export interface RealisticOptions {
  /** Creates written while the link was down. */
  creates?: number;
  /** Patches of those records, then. */
  patches?: number;
  /** Live writes afterwards (creates, patches, a few deletes), one a second. */
  live?: number;
  seed?: number;
  vesselId?: string;
  epoch?: string;
  /** Random messageIds as older rows hold, instead of the derived ones. */
  randomMessageIds?: boolean;
}

/**
 * A change stream as the scenario wrote it: `creates` records while the link was down,
 * `patches` patches of them, then `live` writes a second apart. Envelopes as `toEnvelope`
 * builds them, seqs from 1.
 */
export function realisticChanges(options: RealisticOptions = {}): Envelope[] {
  const {
    creates = 2_000,
    patches = 250,
    live = 300,
    seed = 15,
    vesselId = "mv-northern-star",
    randomMessageIds = false,
  } = options;
  const rng = createRng(seed);
  const epoch = options.epoch ?? uuid(rng);
  let clock = Date.UTC(2026, 10, 30, 6, 0, 0, 0) + rng.int(0, 999);
  const records: { entity: Entity; data: Record<string, unknown> }[] = [];
  const equipment: string[] = [];
  const out: Envelope[] = [];
  const emit = (
    entity: Entity,
    operation: Envelope["operation"],
    data: Record<string, unknown>,
  ) => {
    const seq = out.length + 1;
    out.push({
      type: "data_change",
      entity,
      operation,
      data: jsonbOrder(data),
      timestamp: new Date(clock).toISOString(),
      messageId: randomMessageIds ? uuid(rng) : deriveMessageId(vesselId, epoch, seq),
      vesselId,
      epoch,
      seq,
    });
  };
  const create = () => {
    const entity = rng.pick(MIX);
    const now = new Date(clock).toISOString();
    const data = {
      id: uuid(rng),
      version: 1,
      createdAt: now,
      updatedAt: now,
      ...fields(entity, rng, equipment, clock),
    };
    if (entity === "equipment") equipment.push(data.id);
    records.push({ entity, data });
    emit(entity, "create", data);
  };
  const update = () => {
    const r = rng.pick(records);
    r.data = {
      ...r.data,
      ...patch(r.entity, rng),
      version: (r.data.version as number) + 1,
      updatedAt: new Date(clock).toISOString(),
    };
    emit(r.entity, "update", r.data);
  };
  for (let i = 0; i < creates; i++) {
    clock += rng.int(5, 3_000);
    create();
  }
  for (let i = 0; i < patches; i++) {
    clock += rng.int(5, 3_000);
    update();
  }
  for (let i = 0; i < live; i++) {
    clock += rng.int(900, 1_100);
    const roll = rng.next();
    if (roll < 0.5 || records.length < 2) create();
    else if (roll < 0.9) update();
    else {
      const at = rng.int(0, records.length - 1);
      const r = records.splice(at, 1)[0]!;
      const now = new Date(clock).toISOString();
      emit(r.entity, "delete", {
        ...r.data,
        version: (r.data.version as number) + 1,
        updatedAt: now,
      });
    }
  }
  return out;
}
