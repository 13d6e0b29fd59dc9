/**
 * The shore's outbox towards each vessel: db/vessel/outbox.ts's claim, re-read and ack over
 * shore_down_changes, one stream (epoch, gapless seq) per vessel, so that one vessel's backlog
 * never stands in front of another's. Rows are change rows (core/change.ts), so
 * sync/protocol.ts's toEnvelope builds their envelopes as it builds the vessel's.
 */
import type { Sql } from "../connection.ts";
import { pruneAckedRows } from "../retention.ts";
import type { ChangeRow, ChangeSync } from "../../core/change.ts";
import type { Entity } from "../../core/entities.ts";

/** A claimed down change: a change row of one vessel's stream. */
export interface DownRow extends ChangeRow {
  id: number;
  vesselId: string;
  sync: ChangeSync;
}

const columns = (sql: Sql) =>
  sql`id, vessel_id as "vesselId", entity, operation, data, changed_at, message_id,
    epoch::text as epoch, seq, sync`;

/**
 * Claims up to `limit` unclaimed changes for `vesselId`, alerts first then by id, and gives
 * them that vessel's next seqs. The vessel's shore_down_state row lock orders claims, as
 * vessel_state's does on board: seq is gapless and follows publish order.
 */
export function claimDownChanges(sql: Sql, vesselId: string, limit: number): Promise<DownRow[]> {
  return sql.begin(async (tx) => {
    const [state] = await tx<{ epoch: string; last_seq: number }[]>`
      insert into shore_down_state (vessel_id) values (${vesselId})
      on conflict (vessel_id) do update set vessel_id = excluded.vessel_id
      returning epoch::text, last_seq`;
    const claimed = await tx<{ id: number }[]>`
      update shore_down_changes c set epoch = ${state!.epoch}, seq = ${state!.last_seq} + p.rn
      from (select id, row_number() over (order by priority, id) as rn from shore_down_changes
            where vessel_id = ${vesselId} and seq is null order by priority, id
            limit ${limit}) p
      where c.id = p.id
      returning c.id`;
    if (claimed.length === 0) return [];
    await tx`update shore_down_state set last_seq = ${state!.last_seq + claimed.length}
      where vessel_id = ${vesselId}`;
    return [
      ...await tx<DownRow[]>`
      select ${columns(tx as unknown as Sql)} from shore_down_changes
      where id = any(${claimed.map((r) => r.id)}::int8[]) order by seq`,
    ];
  }) as Promise<DownRow[]>;
}

/** Unacknowledged rows of a vessel's `epoch` after `afterSeq`, in seq order (a re-send). */
export async function pendingDownAfter(
  sql: Sql,
  options: { vesselId: string; epoch: string; afterSeq: number; limit: number },
): Promise<DownRow[]> {
  const { vesselId, epoch, afterSeq, limit } = options;
  return [
    ...await sql<DownRow[]>`
    select ${columns(sql)} from shore_down_changes
    where vessel_id = ${vesselId} and epoch = ${epoch} and seq > ${afterSeq}
      and acked_at is null
    order by seq limit ${limit}`,
  ];
}

/** What a down ack from a vessel did (db/vessel/outbox.ts's AckOutcome, per vessel). */
export type DownAckOutcome =
  /** `behind`: below what the vessel acknowledged before (its database was restored). */
  | { kind: "acked"; released: number; behind: boolean }
  | { kind: "ignored" }
  | { kind: "new_epoch"; epoch: string; released: number };

/**
 * Applies a vessel's `{epoch, seq}` down ack. Another epoch's is ignored. One beyond the
 * stream's last seq means this shore database was restored from an older backup: the vessel
 * holds changes this database never saw, so the vessel's stream starts a new epoch (its inbox
 * keeps a position per epoch and will not take the next changes for duplicates). What the
 * vessel acknowledged was published too, whatever PUBACK was lost (db/vessel/outbox.ts's
 * applyAck does the same for the up stream).
 */
export function applyDownAck(
  sql: Sql,
  vesselId: string,
  ack: { epoch: string; seq: number },
): Promise<DownAckOutcome> {
  return sql.begin(async (tx) => {
    const [state] = await tx<{ epoch: string; last_seq: number; acked_seq: number }[]>`
      select epoch::text, last_seq, acked_seq from shore_down_state
      where vessel_id = ${vesselId} for update`;
    if (!state || state.epoch !== ack.epoch) return { kind: "ignored" } as const;
    if (ack.seq > state.last_seq) {
      const [next] = await tx<{ epoch: string }[]>`
        update shore_down_state set epoch = gen_random_uuid(), last_seq = 0, published_seq = 0,
          acked_seq = 0, last_ack_at = now()
        where vessel_id = ${vesselId} returning epoch::text`;
      const r = await tx`update shore_down_changes set acked_at = now()
        where vessel_id = ${vesselId} and epoch = ${state.epoch} and seq is not null
          and acked_at is null`;
      return { kind: "new_epoch", epoch: next!.epoch, released: r.count } as const;
    }
    const r = await tx`update shore_down_changes set acked_at = now(),
        published_at = coalesce(published_at, now())
      where vessel_id = ${vesselId} and epoch = ${ack.epoch} and seq <= ${ack.seq}
        and acked_at is null`;
    await tx`update shore_down_state set last_ack_at = now(),
        acked_seq = greatest(acked_seq, ${ack.seq}),
        published_seq = greatest(published_seq, ${ack.seq})
      where vessel_id = ${vesselId}`;
    return { kind: "acked", released: r.count, behind: ack.seq < state.acked_seq } as const;
  }) as Promise<DownAckOutcome>;
}

/** A vessel's down stream as the database holds it. */
export interface DownStreamState {
  epoch: string;
  /** The last seq handed out. */
  lastSeq: number;
  /** The published watermark: every seq up to it got its PUBACK. */
  publishedSeq: number;
  /** The highest seq the vessel acknowledged in this epoch. */
  ackedSeq: number;
}

/** The down stream of `vesselId`, or undefined before its first shore write. */
export async function downStreamState(
  sql: Sql,
  vesselId: string,
): Promise<DownStreamState | undefined> {
  const [row] = await sql<DownStreamState[]>`
    select epoch::text, last_seq as "lastSeq", published_seq as "publishedSeq",
      acked_seq as "ackedSeq"
    from shore_down_state where vessel_id = ${vesselId}`;
  return row;
}

/**
 * Raises the published watermark of a vessel's `epoch` to `seq` (never lowers it, and never
 * touches another epoch's).
 */
export async function advanceDownPublished(
  sql: Sql,
  vesselId: string,
  epoch: string,
  seq: number,
): Promise<void> {
  await sql`update shore_down_state set published_seq = ${seq}
    where vessel_id = ${vesselId} and epoch = ${epoch} and published_seq < ${seq}`;
}

/**
 * Catch-up's read for a vessel's request (contract §4, `vessel/<id>/down/catchup/request`):
 * the changes of the stream's current epoch after `since` (a seq, exclusive) or from `since`
 * (an ISO time, inclusive), in seq order, acknowledged ones included (a vessel restored from
 * a backup lacks changes it once acknowledged). A request that names another epoch (the
 * vessel missed the start of this one) gets the current epoch from its first seq.
 */
export async function downChangesSince(
  sql: Sql,
  options: {
    vesselId: string;
    since: number | string;
    epoch?: string;
    entity?: Entity;
    limit: number;
  },
): Promise<DownRow[]> {
  const { vesselId, entity, limit } = options;
  const state = await downStreamState(sql, vesselId);
  if (!state) return [];
  const since = options.epoch && options.epoch !== state.epoch ? 0 : options.since;
  return [
    ...await sql<DownRow[]>`
    select ${columns(sql)} from shore_down_changes
    where vessel_id = ${vesselId} and epoch = ${state.epoch}
      ${typeof since === "number" ? sql`and seq > ${since}` : sql`and changed_at >= ${since}`}
      ${entity ? sql`and entity = ${entity}` : sql``}
    order by seq limit ${limit}`,
  ];
}

/** One vessel's down stream in figures (`/health`, `/metrics`, `GET /api/vessels`). */
export interface DownFigures {
  vesselId: string;
  epoch: string;
  /** Changes not yet acknowledged by the vessel: queued plus unacknowledged. */
  backlog: number;
  /** Changes not yet published: unclaimed, or claimed above the published watermark. */
  queued: number;
  /** Published (PUBACKed by the broker), not yet acknowledged by the vessel. */
  unacked: number;
  lastSeq: number;
  publishedSeq: number;
  ackedSeq: number;
  /** Age of the oldest change the vessel has not acknowledged, or null. */
  oldestUnackedAgeSeconds: number | null;
  lastAckAt: string | null;
}

/** Every vessel's down stream in figures; each count walks a partial index. */
export async function downFigures(sql: Sql): Promise<DownFigures[]> {
  return [
    ...await sql<DownFigures[]>`
    select s.vessel_id as "vesselId", s.epoch::text as epoch,
      (u.unclaimed + c.claimed)::int8 as backlog,
      (u.unclaimed + c.claimed - c.published)::int8 as queued,
      c.published::int8 as unacked,
      s.last_seq as "lastSeq", s.published_seq as "publishedSeq", s.acked_seq as "ackedSeq",
      extract(epoch from now() - least(u.oldest, c.oldest))::float8
        as "oldestUnackedAgeSeconds",
      to_char(s.last_ack_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as "lastAckAt"
    from shore_down_state s
    cross join lateral (select count(*) as unclaimed, min(changed_at) as oldest
      from shore_down_changes where vessel_id = s.vessel_id and seq is null) u
    cross join lateral (select count(*) as claimed,
        count(*) filter (where epoch = s.epoch and seq <= s.published_seq) as published,
        min(changed_at) as oldest
      from shore_down_changes where vessel_id = s.vessel_id and acked_at is null
        and seq is not null) c
    order by s.vessel_id`,
  ];
}

/**
 * Deletes down changes the vessels acknowledged more than `days` ago, `batch` rows a
 * statement (db/vessel/outbox.ts's pruneAcked for the down streams); returns the count.
 */
export function pruneDownAcked(sql: Sql, days: number, batch = 1_000): Promise<number> {
  return pruneAckedRows(sql, "shore_down_changes", days, batch);
}
