/**
 * "Identical on both sides", read from the two databases for the two-way tests, the two-way
 * chaos verdict and the two-way benches: every record of one vessel, on board (the entity
 * tables) and ashore (`shore_records`), compared field for field: its values (`data`, the record
 * as the API answers it, server fields included), version and whether it is deleted. The merge's
 * bookkeeping (`sync`) is not compared: its `pending` list is each side's own by design
 * (docs/two-way-sync.md).
 *
 * Each side is read through a plain query function, so a PGlite copy serves as well as a server.
 */
import { ENTITIES } from "../../core/entities.ts";
import { canonical } from "../../sync/merge.ts";

/** Runs SQL text (no parameters) and returns the rows. */
export type Query = <T>(text: string) => Promise<T[]>;

/** One side's copy of a record, reduced to what must be identical. */
export interface RecordCopy {
  version: number;
  deleted: boolean;
  /** `data` as canonical JSON (keys sorted at every level). */
  data: string;
}

interface CopyRow {
  key: string;
  version: number;
  deleted: boolean;
  data: Record<string, unknown>;
}

const toMap = (rows: CopyRow[]) =>
  new Map(rows.map((r) => {
    const { vesselId: _, ...data } = typeof r.data === "string" ? JSON.parse(r.data) : r.data;
    return [r.key, { version: Number(r.version), deleted: r.deleted, data: canonical(data) }];
  }));

/** Every record on board, by `entity/id`. */
export async function vesselCopies(query: Query): Promise<Map<string, RecordCopy>> {
  const rows: CopyRow[] = [];
  // Entity names are core/entities.ts's fixed list of plain identifiers.
  for (const e of ENTITIES) {
    rows.push(
      ...await query<CopyRow>(`
        select '${e}/' || id::text as key, version, deleted_at is not null as deleted, data
        from "${e}"`),
    );
  }
  return toMap(rows);
}

/** Every record of `vesselId` ashore, by `entity/id` (the shore's `vesselId` field dropped). */
export async function shoreCopies(
  query: Query,
  vesselId: string,
): Promise<Map<string, RecordCopy>> {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(vesselId)) throw new Error(`bad vessel id ${vesselId}`);
  return toMap(
    await query<CopyRow>(`
      select entity || '/' || id::text as key, version, deleted_at is not null as deleted, data
      from shore_records where vessel_id = '${vesselId}'`),
  );
}

/** The records that differ between the two copies, each with what differs (empty: identical). */
export function unconverged(
  onBoard: Map<string, RecordCopy>,
  ashore: Map<string, RecordCopy>,
): string[] {
  const out: string[] = [];
  for (const [key, v] of onBoard) {
    const s = ashore.get(key);
    if (!s) out.push(`${key}: on board only`);
    else if (v.version !== s.version || v.deleted !== s.deleted || v.data !== s.data) {
      out.push(
        `${key}: board v${v.version}${v.deleted ? " deleted" : ""} ${v.data}, shore v${s.version}${
          s.deleted ? " deleted" : ""
        } ${s.data}`,
      );
    }
  }
  for (const key of ashore.keys()) if (!onBoard.has(key)) out.push(`${key}: ashore only`);
  return out;
}

/** A `Query` over a postgres.js client. */
export const queryOf = (sql: { unsafe(text: string): Promise<unknown> }): Query =>
<T>(
  text: string,
) => sql.unsafe(text) as Promise<T[]>;
