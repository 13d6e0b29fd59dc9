/**
 * Catch-up: the change log read back by seq or by time, within the current epoch, deletes
 * included (a delete is a change row like any other). `GET /catchup` returns envelopes as
 * they were published; `POST /catchup` and `<root>/catchup/request` re-publish them on
 * `<root>/catchup/<entity>` with `type: "catchup"`, their original epoch, seq and messageId,
 * and `sequence`/`total` for the batch.
 */
import { z } from "zod";
import type { Sql } from "../db/connection.ts";
import { vesselState } from "../db/outbox.ts";
import { ENTITIES, type Entity } from "../entities.ts";
import { HttpError } from "../errors.ts";
import type { Session } from "./session.ts";
import { type ChangeRow, type Envelope, toEnvelope } from "./envelope.ts";
import { topicsOf } from "./topics.ts";

/** Largest batch one request may ask for. */
export const MAX_CATCHUP_LIMIT = 10_000;
const DEFAULT_LIMIT = 1_000;

const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

/** `GET /catchup` query: since is a seq (exclusive). */
export const catchupQuerySchema = z.strictObject({
  since: z.string().regex(/^\d+$/, "since must be a whole number").transform(Number).pipe(seq),
  entity: z.enum(ENTITIES).optional(),
  limit: z.string().regex(/^\d+$/, "limit must be a whole number").transform(Number)
    .pipe(z.number().int().min(1).max(MAX_CATCHUP_LIMIT)).optional(),
});

/** `POST /catchup` body and the MQTT request: since is a seq (exclusive) or an ISO time. */
export const catchupRequestSchema = z.strictObject({
  since: z.union([seq, z.iso.datetime({ offset: true })]),
  entity: z.enum(ENTITIES).optional(),
  limit: z.number().int().min(1).max(MAX_CATCHUP_LIMIT).optional(),
});

/** A catch-up selection. */
export interface CatchupQuery {
  /** A seq (exclusive) or an ISO 8601 time (inclusive: a duplicate is harmless, a gap not). */
  since: number | string;
  entity?: Entity;
  limit?: number;
}

/** What `POST /catchup` answers. */
export interface RepublishResult {
  published: number;
  fromSeq: number | null;
  toSeq: number | null;
}

/** Options for {@linkcode createCatchup}. */
export interface CatchupOptions {
  sql: Sql;
  session: Session;
  vesselId: string;
  /** Publishes in flight at once while re-publishing. */
  window?: number;
  onPublished?: (result: RepublishResult) => void;
}

/** Reads and re-publishes the change log. */
export interface Catchup {
  list(query: CatchupQuery): Promise<{ changes: Envelope[]; nextSince: number; hasMore: boolean }>;
  republish(query: CatchupQuery): Promise<RepublishResult>;
}

/** Builds the catch-up service over the change log and the session. */
export function createCatchup(options: CatchupOptions): Catchup {
  const { sql, session, vesselId, window = 64, onPublished = () => {} } = options;
  const topics = topicsOf(vesselId);

  async function select(query: CatchupQuery, limit: number): Promise<ChangeRow[]> {
    const { epoch } = await vesselState(sql);
    const bySeq = typeof query.since === "number";
    return await sql<ChangeRow[]>`
      select entity, operation, data, changed_at, message_id, epoch::text as epoch, seq
      from changes
      where epoch = ${epoch} and seq is not null
        ${bySeq ? sql`and seq > ${query.since}` : sql`and changed_at >= ${query.since}`}
        ${query.entity ? sql`and entity = ${query.entity}` : sql``}
      order by seq
      limit ${limit}`;
  }

  return {
    async list(query) {
      const limit = query.limit ?? DEFAULT_LIMIT;
      const rows = await select(query, limit + 1);
      const page = rows.slice(0, limit);
      return {
        changes: page.map((r) => toEnvelope(r, vesselId)),
        nextSince: page.at(-1)?.seq ?? (typeof query.since === "number" ? query.since : 0),
        hasMore: rows.length > limit,
      };
    },

    async republish(query) {
      if (!session.connected) {
        throw new HttpError(503, "broker_unavailable", "Not connected to the broker", [], {
          "Retry-After": "30",
        });
      }
      const rows = await select(query, query.limit ?? DEFAULT_LIMIT);
      const total = rows.length;
      let next = 0;
      // A small pool of senders keeps `window` publishes in flight, in seq order.
      const sender = async () => {
        while (next < total) {
          const i = next++;
          const row = rows[i]!;
          const envelope = toEnvelope(row, vesselId, { type: "catchup", sequence: i, total });
          await session.publish(topics.catchup(row.entity), JSON.stringify(envelope), { qos: 1 });
        }
      };
      try {
        await Promise.all(Array.from({ length: Math.min(window, total) }, sender));
      } catch (err) {
        throw new HttpError(503, "broker_unavailable", `Re-publishing failed: ${err}`, [], {
          "Retry-After": "30",
        });
      }
      const result = {
        published: total,
        fromSeq: rows[0]?.seq ?? null,
        toSeq: rows.at(-1)?.seq ?? null,
      };
      if (total) onPublished(result);
      return result;
    },
  };
}
