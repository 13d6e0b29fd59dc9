/**
 * The verdict of a chaos run, read from the two databases once the system has settled:
 *
 * - lost: a write that got a 2xx on board with no change row on board, plus a change row on
 *   board (epoch, seq, messageId) that shore has not applied;
 * - double_applied: a change shore applied more than once (see below for how that shows);
 * - diverged: a record whose (id, version, deleted) differs between board and shore, or that
 *   exists on one side only;
 * - reports_untrue: what the vessel's `/health` and `/metrics` said once settled that its
 *   database contradicts (a queue or unacked count above 0, a published or acked watermark
 *   short of the epoch's last seq: the stuck watermark of issue 15).
 *
 * The vessel's database is read through {@linkcode VesselDb}: server PostgreSQL by URL, or the
 * embedded PGlite directory after the gateway has stopped (see {@linkcode openVesselDb}).
 */
import postgres from "postgres";
import { ENTITIES } from "../../core/entities.ts";
import { deriveMessageId } from "../../sync/message-id.ts";
import { sumSeries } from "./observe.ts";
import type { AckedWrite } from "./writers.ts";

/** The vessel's database, read with plain SQL text (no parameters: nothing here is input). */
export interface VesselDb {
  query<T>(text: string): Promise<T[]>;
  close(): Promise<void>;
}

/** Where the vessel's data lives: a server PostgreSQL URL, or an embedded PGlite directory. */
export type VesselDbSource = { url: string } | { pgliteDir: string };

/**
 * Opens the vessel's database for reading. A PGlite directory is copied first and the copy
 * opened: PGlite replays its WAL on open and takes no lock, so opening the gateway's own
 * directory could change the very files under test (and must never happen while a gateway
 * holds it: the caller stops the vessel first).
 */
export async function openVesselDb(source: VesselDbSource): Promise<VesselDb> {
  if ("url" in source) {
    const sql = open(source.url);
    return {
      query: <T>(text: string) => sql.unsafe(text) as unknown as Promise<T[]>,
      close: () => sql.end({ timeout: 2 }),
    };
  }
  const copy = await Deno.makeTempDir({ prefix: "bosun-chaos-pglite-" });
  await new Deno.Command("cp", { args: ["-a", `${source.pgliteDir}/.`, copy] }).output()
    .then((o) => {
      if (!o.success) {
        throw new Error(`cp ${source.pgliteDir}: ${new TextDecoder().decode(o.stderr)}`);
      }
    });
  const { PGlite } = await import("@electric-sql/pglite");
  const db = await PGlite.create(copy);
  return {
    query: async <T>(text: string) => (await db.query<T>(text)).rows,
    close: async () => {
      await db.close();
      await Deno.remove(copy, { recursive: true }).catch(() => {});
    },
  };
}

/** What the vessel said about itself once settled, just before its clean stop. */
export interface VesselReports {
  health?: Record<string, unknown>;
  metrics?: string;
}

/** What the verdict counts. */
export interface Verdict {
  changes: number;
  lost: number;
  /** Part of `lost`: 2xx writes with no change row on board. */
  lostOnBoard: number;
  doubleApplied: number;
  diverged: number;
  /** Statements of the vessel's /health and /metrics that its database contradicts. */
  reportsUntrue: number;
  /** Examples of each problem, for the log. */
  examples: string[];
}

/** Options for {@linkcode computeVerdict}. */
export interface VerdictOptions {
  vessel: VesselDb;
  shoreUrl: string;
  vesselId: string;
  acked: readonly AckedWrite[];
  /** The shore processes' bosun_shore_applied_total, summed over their restarts. */
  shoreAppliedCounter?: number;
  /** Checked against the vessel's database when given. */
  reports?: VesselReports;
}

interface ChangeRow {
  entity: string;
  record_id: string;
  operation: string;
  version: number;
  epoch: string | null;
  seq: number | null;
  /** Null for a change not yet claimed, and in the database for one claimed since v13. */
  message_id: string | null;
}

interface RecordRow {
  entity: string;
  id: string;
  version: number;
  deleted: boolean;
}

const open = (url: string) => postgres(url, { max: 2, onnotice: () => {} });

async function vesselRecords(db: VesselDb): Promise<RecordRow[]> {
  const out: RecordRow[] = [];
  // Entity names are core/entities.ts's fixed list of plain identifiers.
  for (const entity of ENTITIES) {
    const rows = await db.query<RecordRow>(`
      select '${entity}' as entity, id::text, version, deleted_at is not null as deleted
      from "${entity}"`);
    out.push(...rows);
  }
  return out;
}

/**
 * Compares the vessel's last /health and /metrics with its database: once settled, nothing is
 * queued or unacknowledged and both watermarks stand at the current epoch's last seq.
 */
export async function checkReports(
  db: VesselDb,
  reports: VesselReports,
  note: (s: string) => void,
): Promise<number> {
  const [row] = await db.query<{ epoch: string; last: number }>(`
    select s.epoch::text as epoch,
      coalesce((select max(seq) from changes where epoch = s.epoch), 0)::float8 as last
    from vessel_state s`);
  const truth: Record<string, unknown> = {
    epoch: row?.epoch,
    queuedMessages: 0,
    unackedMessages: 0,
    lastPublishedSeq: Number(row?.last ?? 0),
    lastAckedSeq: Number(row?.last ?? 0),
  };
  let untrue = 0;
  const h = reports.health;
  if (!h) {
    untrue++;
    note("the vessel's /health did not answer at the end");
  } else {
    for (const [field, want] of Object.entries(truth)) {
      if (h[field] !== want) {
        untrue++;
        note(`/health ${field}=${JSON.stringify(h[field])}, database says ${want}`);
      }
    }
  }
  const m = reports.metrics;
  if (m === undefined) {
    untrue++;
    note("the vessel's /metrics did not answer at the end");
  } else {
    const gauges: [string, number][] = [
      ["bosun_queue_depth", 0],
      ["bosun_unacked_changes", 0],
      ["bosun_last_acked_seq", Number(row?.last ?? 0)],
    ];
    for (const [name, want] of gauges) {
      const got = sumSeries(m, name);
      if (got !== want) {
        untrue++;
        note(`/metrics ${name} ${got}, database says ${want}`);
      }
    }
  }
  return untrue;
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
  const vessel = options.vessel;
  const shore = open(options.shoreUrl);
  try {
    const changes = (await vessel.query<ChangeRow>(`
      select entity, record_id::text, operation, (data->>'version')::int as version,
        epoch::text, seq::float8 as seq, message_id::text
      from changes`)).map((c) => {
      const seq = c.seq === null ? null : Number(c.seq);
      // Claimed since migration 13: derived where it is read (db/vessel/outbox.ts).
      const messageId = c.message_id ??
        (seq === null ? null : deriveMessageId(options.vesselId, c.epoch!, seq));
      return { ...c, seq, message_id: messageId };
    });
    const onBoard = await vesselRecords(vessel);
    const view = await shoreView(shore, options.vesselId);
    const examples: string[] = [];
    const note = (s: string) => examples.length < 20 && examples.push(s);
    const reportsUntrue = options.reports ? await checkReports(vessel, options.reports, note) : 0;

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
      if (c.seq === null || !appliedKeys.has(key) || !appliedIds.has(c.message_id ?? "")) {
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
      reportsUntrue,
      examples,
    };
  } finally {
    await shore.end({ timeout: 2 });
  }
}
