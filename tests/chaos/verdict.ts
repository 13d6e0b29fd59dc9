/**
 * The verdict of a chaos run, read from the two databases once the system has settled:
 *
 * - lost: a write that got a 2xx on board with no change row on board, plus a change row on
 *   board (epoch, seq, messageId) that shore has not applied;
 * - double_applied: a change shore applied more than once (see below for how that shows);
 * - diverged: a record whose (id, version, deleted) differs between board and shore, or that
 *   exists on one side only.
 */
import postgres from "postgres";
import { ENTITIES } from "../../core/entities.ts";
import type { AckedWrite } from "./writers.ts";

/** What the verdict counts. */
export interface Verdict {
  changes: number;
  lost: number;
  /** Part of `lost`: 2xx writes with no change row on board. */
  lostOnBoard: number;
  doubleApplied: number;
  diverged: number;
  /** Examples of each problem, for the log. */
  examples: string[];
}

/** Options for {@linkcode computeVerdict}. */
export interface VerdictOptions {
  vesselUrl: string;
  shoreUrl: string;
  vesselId: string;
  acked: readonly AckedWrite[];
  /** The shore processes' bosun_shore_applied_total, summed over their restarts. */
  shoreAppliedCounter?: number;
}

interface ChangeRow {
  entity: string;
  record_id: string;
  operation: string;
  version: number;
  epoch: string | null;
  seq: number | null;
  message_id: string;
}

interface RecordRow {
  entity: string;
  id: string;
  version: number;
  deleted: boolean;
}

const open = (url: string) => postgres(url, { max: 2, onnotice: () => {} });

async function vesselRecords(sql: postgres.Sql): Promise<RecordRow[]> {
  const out: RecordRow[] = [];
  for (const entity of ENTITIES) {
    const rows = await sql<RecordRow[]>`
      select ${entity} as entity, id::text, version, deleted_at is not null as deleted
      from ${sql(entity)}`;
    out.push(...rows);
  }
  return out;
}

/** The shore's view of one vessel: applied changes, records, and its own apply count. */
interface ShoreView {
  /** One entry per applied inbox row: `${epoch}/${seq}` and the message id. */
  applied: { key: string; messageId: string }[];
  records: RecordRow[];
  /** shore_positions.applied_count, summed: raised in the transaction of every apply. */
  appliedCount: number;
}

/** Reads the shore's inbox, records and positions for `vesselId` (db/migrations.ts, v2). */
async function shoreView(sql: postgres.Sql, vesselId: string): Promise<ShoreView> {
  const applied = await sql<{ key: string; messageId: string }[]>`
    select epoch::text || '/' || seq::text as key, message_id::text as "messageId"
    from shore_inbox where vessel_id = ${vesselId} and applied_at is not null`;
  const records = await sql<RecordRow[]>`
    select entity, id::text, version, deleted_at is not null as deleted
    from shore_records where vessel_id = ${vesselId}`;
  const [row] = await sql<{ n: string }[]>`
    select coalesce(sum(applied_count), 0)::text as n
    from shore_positions where vessel_id = ${vesselId}`;
  return { applied, records, appliedCount: Number(row?.n ?? 0) };
}

/** Computes the verdict; throws only when a database cannot be read. */
export async function computeVerdict(options: VerdictOptions): Promise<Verdict> {
  const vessel = open(options.vesselUrl);
  const shore = open(options.shoreUrl);
  try {
    const changes = await vessel<ChangeRow[]>`
      select entity, record_id::text, operation, (data->>'version')::int as version,
        epoch::text, seq, message_id::text
      from changes`;
    const onBoard = await vesselRecords(vessel);
    const view = await shoreView(shore, options.vesselId);
    const examples: string[] = [];
    const note = (s: string) => examples.length < 20 && examples.push(s);

    // Every 2xx has its change row on board.
    const changeKeys = new Set<string>();
    const deleted = new Set<string>();
    for (const c of changes) {
      changeKeys.add(`${c.operation}/${c.entity}/${c.record_id}/${c.version}`);
      if (c.operation === "delete") deleted.add(`${c.entity}/${c.record_id}`);
    }
    let lostOnBoard = 0;
    for (const w of options.acked) {
      const found = w.op === "delete"
        ? deleted.has(`${w.entity}/${w.id}`)
        : changeKeys.has(`${w.op}/${w.entity}/${w.id}/${w.version}`);
      if (!found) {
        lostOnBoard++;
        note(`2xx ${w.op} ${w.entity}/${w.id} v${w.version} has no change row on board`);
      }
    }

    // Every change row on board is applied ashore, once.
    const appliedKeys = new Map<string, number>();
    const appliedIds = new Map<string, number>();
    for (const a of view.applied) {
      appliedKeys.set(a.key, (appliedKeys.get(a.key) ?? 0) + 1);
      appliedIds.set(a.messageId, (appliedIds.get(a.messageId) ?? 0) + 1);
    }
    let notApplied = 0;
    for (const c of changes) {
      const key = `${c.epoch}/${c.seq}`;
      if (c.seq === null || !appliedKeys.has(key) || !appliedIds.has(c.message_id)) {
        notApplied++;
        note(`change ${c.operation} ${c.entity}/${c.record_id} seq ${c.seq} not applied ashore`);
      }
    }
    for (const [key, n] of [...appliedKeys, ...appliedIds]) {
      if (n > 1) note(`${key} applied ${n} times`);
    }
    // The inbox key makes a second row per (epoch, seq) impossible, so a double apply shows as
    // one messageId under two seqs, as an apply count above the rows applied, or as the shore
    // processes' own applied counters (a lower bound) above the changes there are.
    const countExcess = view.appliedCount - view.applied.length;
    if (countExcess > 0) {
      note(`shore counted ${view.appliedCount} applies of ${view.applied.length}`);
    }
    const metricExcess = (options.shoreAppliedCounter ?? 0) - changes.length;
    if (metricExcess > 0) note(`shore counters say ${options.shoreAppliedCounter} applies`);
    const doubleApplied = Math.max(
      view.applied.length - appliedKeys.size,
      view.applied.length - appliedIds.size,
      countExcess,
      metricExcess,
    );

    // Final records agree.
    const ashore = new Map(view.records.map((r) => [`${r.entity}/${r.id}`, r]));
    let diverged = 0;
    for (const r of onBoard) {
      const key = `${r.entity}/${r.id}`;
      const s = ashore.get(key);
      ashore.delete(key);
      if (!s || s.version !== r.version || s.deleted !== r.deleted) {
        diverged++;
        note(
          `${key}: board v${r.version}${r.deleted ? " deleted" : ""}, shore ${
            s ? `v${s.version}${s.deleted ? " deleted" : ""}` : "missing"
          }`,
        );
      }
    }
    for (const key of ashore.keys()) {
      diverged++;
      note(`${key}: ashore only`);
    }

    return {
      changes: changes.length,
      lost: lostOnBoard + notApplied,
      lostOnBoard,
      doubleApplied,
      diverged,
      examples,
    };
  } finally {
    await vessel.end({ timeout: 2 });
    await shore.end({ timeout: 2 });
  }
}
