/**
 * Keyset paging over (created_at, id), shared by every list: opaque cursors and pages.
 */
import type { Fragment } from "postgres";
import type { Sql } from "./connection.ts";
import { InvalidCursorError } from "../core/errors.ts";

/** Encodes a keyset position as an opaque cursor. */
export function encodeCursor(createdAt: string, id: string): string {
  return btoa(`${createdAt}|${id}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/**
 * Turns `limit + 1` rows read in (created_at, id) order into a page: the extra row only says
 * that a next page exists, and the cursor points after the last row shown.
 */
export function toPage<R extends { created_at: Date; id: string }, T>(
  rows: R[],
  limit: number,
  item: (row: R) => T,
): { items: T[]; nextCursor: string | null } {
  const shown = rows.slice(0, limit);
  const last = shown.at(-1);
  return {
    items: shown.map(item),
    nextCursor: rows.length > limit && last
      ? encodeCursor(last.created_at.toISOString(), last.id)
      : null,
  };
}

const CURSOR = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)\|([0-9a-f-]{36})$/;

/** Decodes a cursor from {@linkcode encodeCursor}; a malformed one is a 400. */
export function decodeCursor(cursor: string): [string, string] {
  let text = "";
  try {
    text = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
  } catch {
    // falls through to the error below
  }
  const m = CURSOR.exec(text);
  if (!m || Number.isNaN(Date.parse(m[1]!))) {
    throw new InvalidCursorError(cursor);
  }
  return [m[1]!, m[2]!];
}

/** What a list narrows to: equality on record fields, and a lower bound on `updated_at`. */
export interface ListFilter {
  filters?: Record<string, unknown>;
  updatedSince?: string;
}

/**
 * The `and …` conditions of a list's filters, for a table with `data` and `updated_at`. One
 * jsonb containment for all equalities compares typed values (`{"onboard": false}`, never the
 * text "false"); the keyset walk stays on the page index, these only thin the rows it reads.
 */
export function filterConditions(sql: Sql, { filters = {}, updatedSince }: ListFilter): Fragment {
  const equal = Object.keys(filters).length > 0;
  return sql`${equal ? sql`and data @> ${sql.json(filters as never)}` : sql``}
    ${updatedSince === undefined ? sql`` : sql`and updated_at >= ${updatedSince}`}`;
}
