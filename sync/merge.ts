/**
 * The convergence core of two-way sync (docs/two-way-sync.md): per-field last-writer-wins registers
 * under hybrid logical clocks (core/hlc.ts), a delete that wins over everything, and conflict
 * detection that finds each concurrent pair of changes once on each side, identically.
 *
 * A record's convergent state is a join-semilattice: a register per field (the value with the
 * greatest clock) and a tombstone (the greatest delete clock, once set never unset). Applying
 * a change is a join, so replicas that have applied the same changes hold the same state in
 * whatever order (and however often) the changes arrived. Everything else here is bookkeeping
 * for conflicts, which never feeds back into values.
 *
 * Conflicts need to know which changes were concurrent. Each change carries `seen`: the
 * greatest clock of the other side's changes to the record that its writer had applied. A
 * side's changes to one record have strictly increasing clocks (each write takes a clock after
 * the record's newest, Hlc.after) and each direction delivers in order, so "x saw y" is exactly
 * `x.seen >= y.clock`. A pair is concurrent when neither saw the other. The receiver of y keeps
 * its own changes the other side may not have seen (`pending`); the concurrent ones are those
 * after `y.seen`. Both sides find the same pair, each once: the shore when x arrives, the
 * vessel when y arrives (docs/two-way-sync.md walks through why).
 */
import { type Clock, compareClocks, type Hlc, maxClock, type Origin } from "../core/hlc.ts";

/** A field's value and the clock of the change that wrote it. */
export interface Register {
  value: unknown;
  clock: Clock;
}

/** The convergent part of a record: what both sides agree on once they have the same changes. */
export interface RecordState {
  fields: Record<string, Register>;
  /** The clock of the greatest delete, or null: once deleted, deleted. */
  deleted: Clock | null;
}

/** One create, update or delete, as sent to the other side. */
export interface Change {
  entity: string;
  recordId: string;
  origin: Origin;
  op: "create" | "update" | "delete";
  /** One clock for the whole change: every field it writes carries it. */
  clock: Clock;
  /** The greatest clock of the other side's changes to this record applied when written. */
  seen: Clock | null;
  /** The fields written (none for a delete). */
  fields: Record<string, unknown>;
}

/** A record as one side holds it for sync: the state plus conflict bookkeeping. */
export interface SyncRecord {
  state: RecordState;
  /** The greatest clock of the other side's changes applied here. */
  seen: Clock | null;
  /** This side's changes the other side may not have seen yet, oldest first. */
  pending: Change[];
}

/** Both sides changed the same fields concurrently, or one deleted what the other changed. */
export interface Conflict {
  entity: string;
  recordId: string;
  /** The contested fields, sorted (for a delete against an update: the update's fields). */
  fields: string[];
  /** The vessel's values of those fields, or null where the vessel deleted. */
  vessel: Record<string, unknown> | null;
  /** The shore's values of those fields, or null where the shore deleted. */
  shore: Record<string, unknown> | null;
  /** The winning values, or null when the delete won. */
  resolved: Record<string, unknown> | null;
  /** The two changes' clocks: together with entity and record they identify the conflict. */
  vesselClock: Clock;
  shoreClock: Clock;
}

/** A local create, update or delete of one record. */
export interface Write {
  entity: string;
  recordId: string;
  op: "create" | "update" | "delete";
  fields?: Record<string, unknown>;
}

/** A record nobody has written yet. */
export function emptyRecord(): SyncRecord {
  return { state: { fields: {}, deleted: null }, seen: null, pending: [] };
}

/** A JSON text with sorted keys: equal values give equal texts. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

// Total order on registers: the clock, then (only for equal clocks, which distinct changes of
// one record never share) the value, so the join stays a join even on made-up states.
function laterRegister(a: Register, b: Register): Register {
  const byClock = compareClocks(a.clock, b.clock);
  if (byClock !== 0) return byClock > 0 ? a : b;
  return canonical(a.value) >= canonical(b.value) ? a : b;
}

/** The join of two states: commutative, associative and idempotent. */
export function joinStates(a: RecordState, b: RecordState): RecordState {
  const fields: Record<string, Register> = { ...a.fields };
  for (const [name, reg] of Object.entries(b.fields)) {
    const mine = fields[name];
    fields[name] = mine === undefined ? reg : laterRegister(mine, reg);
  }
  return { fields, deleted: maxClock(a.deleted, b.deleted) };
}

/** The state a single change stands for. */
export function stateOf(change: Change): RecordState {
  if (change.op === "delete") return { fields: {}, deleted: change.clock };
  const fields: Record<string, Register> = {};
  for (const [name, value] of Object.entries(change.fields)) {
    fields[name] = { value, clock: change.clock };
  }
  return { fields, deleted: null };
}

/** The record's values, or null when it is deleted or was never written. */
export function visible(state: RecordState): Record<string, unknown> | null {
  if (state.deleted !== null) return null;
  const names = Object.keys(state.fields).sort();
  if (names.length === 0) return null;
  return Object.fromEntries(names.map((n) => [n, state.fields[n]!.value]));
}

/** The newest clock anywhere in the state (null for an empty one). */
export function latestClock(state: RecordState): Clock | null {
  let latest = state.deleted;
  for (const reg of Object.values(state.fields)) latest = maxClock(latest, reg.clock);
  return latest;
}

/**
 * Applies a local write: returns the record after it and the change to send. A create needs a
 * record never written on this side (ids are not reused, deleted or not), an update or delete
 * a visible one: the API turns those cases into 409 and 404 before calling this.
 */
export function applyLocal(
  record: SyncRecord | undefined,
  write: Write,
  hlc: Pick<Hlc, "after" | "origin">,
): { record: SyncRecord; change: Change } {
  const current = record ?? emptyRecord();
  const exists = visible(current.state) !== null;
  if (write.op === "create" ? latestClock(current.state) !== null : !exists) {
    throw new Error(`Cannot ${write.op} record "${write.recordId}" in its current state`);
  }
  const clock = hlc.after(maxClock(latestClock(current.state), current.seen));
  const change: Change = {
    entity: write.entity,
    recordId: write.recordId,
    origin: hlc.origin,
    op: write.op,
    clock,
    seen: current.seen,
    fields: write.op === "delete" ? {} : { ...write.fields },
  };
  return {
    record: {
      state: joinStates(current.state, stateOf(change)),
      seen: current.seen,
      // Bounded: on a record only this side edits, nothing from the other side ever prunes the
      // list, and it grew with every edit (each update rewrote a longer row). Past the bound the
      // oldest entries go: values still converge (they depend on clocks alone); only a conflict
      // between one of those old edits and a concurrent edit from the other side would go
      // unrecorded, after more than MAX_PENDING edits of one record without a word from the
      // other side about it (docs/two-way-sync.md).
      pending: [...current.pending, change].slice(-MAX_PENDING),
    },
    change,
  };
}

/** How many of its own unseen edits a record remembers for conflict detection. */
export const MAX_PENDING = 64;

/**
 * Applies a change from the other side: returns the record after it, the conflicts it met
 * (each concurrent pair of changes once), and whether it was a re-delivery. Never a change to
 * send back: what the other side wrote it already has.
 */
export function applyRemote(
  record: SyncRecord | undefined,
  change: Change,
  self: Origin,
): { record: SyncRecord; conflicts: Conflict[]; duplicate: boolean } {
  if (change.origin === self) {
    throw new Error(`A change from "${change.origin}" is not remote on the ${self}`);
  }
  const current = record ?? emptyRecord();
  const state = joinStates(current.state, stateOf(change));
  // The other side's changes arrive in clock order, so one not after `seen` was applied before.
  if (current.seen !== null && change.clock <= current.seen) {
    return { record: { ...current, state }, conflicts: [], duplicate: true };
  }
  const conflicts: Conflict[] = [];
  const stillPending: Change[] = [];
  for (const mine of current.pending) {
    if (change.seen !== null && mine.clock <= change.seen) continue; // seen by the other side
    stillPending.push(mine);
    const conflict = conflictBetween(mine, change);
    if (conflict) conflicts.push(conflict);
  }
  return {
    record: { state, seen: change.clock, pending: stillPending },
    conflicts,
    duplicate: false,
  };
}

/** The conflict between two concurrent changes of one record, if they contest anything. */
export function conflictBetween(a: Change, b: Change): Conflict | null {
  const vessel = a.origin === "vessel" ? a : b;
  const shore = a.origin === "vessel" ? b : a;
  if (vessel.op === "delete" && shore.op === "delete") return null;
  const base = {
    entity: vessel.entity,
    recordId: vessel.recordId,
    vesselClock: vessel.clock,
    shoreClock: shore.clock,
  };
  if (vessel.op === "delete" || shore.op === "delete") {
    const update = vessel.op === "delete" ? shore : vessel;
    const fields = Object.keys(update.fields).sort();
    return {
      ...base,
      fields,
      vessel: vessel.op === "delete" ? null : pick(vessel.fields, fields),
      shore: shore.op === "delete" ? null : pick(shore.fields, fields),
      resolved: null,
    };
  }
  const fields = Object.keys(vessel.fields).filter((f) =>
    Object.hasOwn(shore.fields, f) && canonical(vessel.fields[f]) !== canonical(shore.fields[f])
  ).sort();
  if (fields.length === 0) return null;
  const winner = vessel.clock > shore.clock ? vessel : shore;
  return {
    ...base,
    fields,
    vessel: pick(vessel.fields, fields),
    shore: pick(shore.fields, fields),
    resolved: pick(winner.fields, fields),
  };
}

function pick(values: Record<string, unknown>, names: string[]): Record<string, unknown> {
  return Object.fromEntries(names.map((n) => [n, values[n] ?? null]));
}
