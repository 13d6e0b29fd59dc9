/**
 * Catch-up: the change log read back by seq or by time, within the current epoch, deletes
 * included (a delete is a change row like any other). `GET /catchup` returns envelopes as
 * they were published; `POST /catchup` and `<root>/catchup/request` re-publish them on
 * `<root>/catchup/<entity>` with `type: "catchup"`, their original epoch, seq and messageId,
 * and `sequence`/`total` for the batch. Under `LINK_MODE=frames` they travel in frames on
 * `<root>/frames` instead, cut where the selection skips seqs (an entity filter).
 */
import type { Sql } from "../../db/connection.ts";
import { changesSince } from "../../db/vessel/outbox.ts";
import type { Entity } from "../../core/entities.ts";
import { BrokerUnavailableError } from "../../core/errors.ts";
import type { Session } from "../session.ts";
import { type Envelope, toEnvelope, topicsOf } from "../protocol.ts";
import { cutFrames, FRAME_CONTENT_TYPE } from "../frame.ts";

const DEFAULT_LIMIT = 1_000;

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
  /** `LINK_MODE`. */
  linkMode?: "frames" | "messages";
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

  const select = (query: CatchupQuery, limit: number) =>
    changesSince(sql, { since: query.since, entity: query.entity, limit, vesselId });

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
        throw new BrokerUnavailableError("Not connected to the broker");
      }
      const rows = await select(query, query.limit ?? DEFAULT_LIMIT);
      const total = rows.length;
      let next = 0;
      const frames = options.linkMode === "frames"
        ? cutFrames(
          rows.map((row, i) => toEnvelope(row, vesselId, { type: "catchup", sequence: i, total })),
        )
        : [];
      const frameSender = async () => {
        while (next < frames.length) {
          const frame = frames[next++]!;
          await session.publish(topics.frames, frame.payload, {
            qos: 1,
            contentType: FRAME_CONTENT_TYPE,
          });
        }
      };
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
        if (options.linkMode === "frames") {
          await Promise.all(Array.from({ length: Math.min(4, frames.length) }, frameSender));
        } else await Promise.all(Array.from({ length: Math.min(window, total) }, sender));
      } catch (err) {
        throw new BrokerUnavailableError(`Re-publishing failed: ${err}`);
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
