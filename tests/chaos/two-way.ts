/**
 * The two-way half of a chaos run (`--two-way`, issue 11): the office writes through the
 * shore's API on the same records the crew writes on board, and the verdict adds the down
 * direction and convergence, read from both databases once settled:
 *
 * - down_lost: an office write that got a 2xx with no row in the shore's down outbox, plus a
 *   down outbox row that the vessel has not applied;
 * - down_double_applied: a down change applied on board more than once (two inbox rows with one
 *   message id, or the vessel's apply count above the rows applied);
 * - unconverged: a record whose values, version or deletion differ between board and shore
 *   (tests/support/two-way.ts), or that exists on one side only;
 * - conflicts_recorded: the conflicts on record on board; conflicts_unmatched: those recorded on
 *   one side only (both sides must find the same pairs, docs/two-way-sync.md).
 */
import postgres from "postgres";
import { queryOf, shoreCopies, unconverged, vesselCopies } from "../support/two-way.ts";
import type { VesselDb } from "./verdict.ts";
import type { AckedWrite } from "./writers.ts";

/** What the two-way verdict counts. */
export interface TwoWayVerdict {
  officeWrites: number;
  downChanges: number;
  downLost: number;
  downDoubleApplied: number;
  unconverged: number;
  conflictsRecorded: number;
  conflictsAshore: number;
  conflictsUnmatched: number;
  examples: string[];
}

/** The shore's down changes for `vesselId` still awaiting the vessel's ack (settling). */
export async function downUnacked(shoreUrl: string, vesselId: string): Promise<number> {
  const sql = postgres(shoreUrl, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql<{ n: number }[]>`
      select count(*)::int as n from shore_down_changes
      where vessel_id = ${vesselId} and acked_at is null`;
    return row!.n;
  } finally {
    await sql.end({ timeout: 2 });
  }
}

/** The verdict line's two-way fields. */
export function twoWayLine(v: TwoWayVerdict): string {
  return `office_writes=${v.officeWrites} down_changes=${v.downChanges} down_lost=${v.downLost} ` +
    `down_double_applied=${v.downDoubleApplied} conflicts_recorded=${v.conflictsRecorded} ` +
    `conflicts_unmatched=${v.conflictsUnmatched} unconverged=${v.unconverged}`;
}

/** Whether the two-way verdict passes. */
export const twoWayOk = (v: TwoWayVerdict) =>
  v.downLost === 0 && v.downDoubleApplied === 0 && v.unconverged === 0 &&
  v.conflictsUnmatched === 0;

interface DownRow {
  entity: string;
  record_id: string;
  operation: string;
  version: number;
  key: string | null;
  message_id: string;
}

/** Computes the two-way verdict; throws only when a database cannot be read. */
export async function computeTwoWayVerdict(options: {
  vessel: VesselDb;
  shoreUrl: string;
  vesselId: string;
  /** The office's writes the shore answered with a 2xx. */
  officeAcked: readonly AckedWrite[];
}): Promise<TwoWayVerdict> {
  const { vessel, vesselId } = options;
  const shore = postgres(options.shoreUrl, { max: 2, onnotice: () => {} });
  const examples: string[] = [];
  const note = (s: string) => examples.length < 20 && examples.push(s);
  try {
    // The office's 2xx writes, each in the down outbox.
    const down = await shore<DownRow[]>`
      select entity, record_id::text, operation, (data->>'version')::int as version,
        epoch::text || '/' || seq::text as key, message_id::text
      from shore_down_changes where vessel_id = ${vesselId}`;
    const written = new Set<string>();
    const deleted = new Set<string>();
    for (const d of down) {
      written.add(`${d.operation}/${d.entity}/${d.record_id}/${d.version}`);
      if (d.operation === "delete") deleted.add(`${d.entity}/${d.record_id}`);
    }
    let downLost = 0;
    for (const w of options.officeAcked) {
      const found = w.op === "delete"
        ? deleted.has(`${w.entity}/${w.id}`)
        : written.has(`${w.op}/${w.entity}/${w.id}/${w.version}`);
      if (!found) {
        downLost++;
        note(`office 2xx ${w.op} ${w.entity}/${w.id} v${w.version} has no down outbox row`);
      }
    }

    // Every down outbox row applied on board, once.
    const inbox = await vessel.query<{ key: string; message_id: string }>(`
      select epoch::text || '/' || seq::text as key, message_id::text
      from down_inbox where applied_at is not null`);
    const keys = new Map<string, number>();
    const ids = new Map<string, number>();
    for (const r of inbox) {
      keys.set(r.key, (keys.get(r.key) ?? 0) + 1);
      ids.set(r.message_id, (ids.get(r.message_id) ?? 0) + 1);
    }
    for (const d of down) {
      if (d.key === null || !keys.has(d.key) || !ids.has(d.message_id)) {
        downLost++;
        note(`down ${d.operation} ${d.entity}/${d.record_id} ${d.key ?? "unclaimed"} not applied`);
      }
    }
    const [counted] = await vessel.query<{ n: number }>(`
      select coalesce(sum(applied_count), 0)::float8 as n from down_positions`);
    const countExcess = Number(counted?.n ?? 0) - inbox.length;
    if (countExcess > 0) note(`vessel counted ${counted!.n} down applies of ${inbox.length}`);
    for (const [id, n] of ids) if (n > 1) note(`down message ${id} applied ${n} times`);
    const downDoubleApplied = Math.max(inbox.length - ids.size, countExcess, 0);

    // Identical on both sides.
    const differ = unconverged(
      await vesselCopies(<T>(text: string) => vessel.query<T>(text)),
      await shoreCopies(queryOf(shore), vesselId),
    );
    for (const d of differ) note(`unconverged ${d}`);

    // The same conflicts on both sides.
    const conflictKey = `entity || '/' || record_id::text || '/' || vessel_clock || '/' ||
      shore_clock`;
    const onBoard = new Set(
      (await vessel.query<{ k: string }>(`select ${conflictKey} as k from conflicts`))
        .map((r) => r.k),
    );
    const ashore = new Set(
      (await shore.unsafe<{ k: string }[]>(
        `select ${conflictKey} as k from conflicts where vessel_id = $1`,
        [vesselId],
      )).map((r) => r.k),
    );
    let conflictsUnmatched = 0;
    for (const k of onBoard) {
      if (!ashore.has(k)) conflictsUnmatched++, note(`conflict ${k} on board only`);
    }
    for (const k of ashore) {
      if (!onBoard.has(k)) conflictsUnmatched++, note(`conflict ${k} ashore only`);
    }

    return {
      officeWrites: options.officeAcked.length,
      downChanges: down.length,
      downLost,
      downDoubleApplied,
      unconverged: differ.length,
      conflictsRecorded: onBoard.size,
      conflictsAshore: ashore.size,
      conflictsUnmatched,
      examples,
    };
  } finally {
    await shore.end({ timeout: 2 });
  }
}
