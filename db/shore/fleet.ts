/**
 * The shore's read side and presence: vessels, their positions and gaps, and the fleet's
 * records as applied.
 */
import type { Sql } from "../connection.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { decodeCursor, filterConditions, type ListFilter, toPage } from "../paging.ts";
import type { Presence } from "../../sync/shore/classify.ts";

/** One vessel as `GET /api/vessels` shows it. */
export interface VesselView {
  vesselId: string;
  status: "online" | "offline" | "unknown";
  epoch: string | null;
  lastSeq: number;
  lastSeenAt: string | null;
  /** Changes received past a gap, waiting for it to be filled (current epoch). */
  gaps: number;
  /** Changes the shore's database refused and stepped over, every epoch (shore_dead_letters). */
  deadLetters: number;
  /** Messages refused for a seq already held under another messageId (a security event). */
  forgeries: number;
  /** Changes made ashore for the vessel it has not acknowledged yet (its down stream). */
  downBacklog: number;
  /** Of those, published (PUBACKed by the broker) and awaiting the vessel's ack. */
  downUnacked: number;
  /** The down stream's epoch, its published watermark and the vessel's ack in it. */
  downEpoch: string | null;
  downPublishedSeq: number;
  downAckedSeq: number;
  /** When the vessel last acknowledged its down stream, or null. */
  downLastAckAt: string | null;
}

/** A fleet record: the record as the vessel's API returns it, plus its vessel. */
export type ShoreRecord = ApiRecord & { vesselId: string };

/** A page of fleet records. */
export interface ShorePage {
  items: ShoreRecord[];
  nextCursor: string | null;
}

/** The fleet in figures, for `/health`. */
export interface FleetSummary {
  vessels: number;
  online: number;
  offline: number;
  unknown: number;
  totalApplied: number;
  /** Vessels with changes waiting past a gap. */
  vesselsWithGaps: number;
  /** Changes waiting past gaps, fleet-wide. */
  waiting: number;
}

/**
 * Records a status message. The status is last-writer-wins; `last_seen_at` only moves
 * forward, to the time the status carries or, for `online`, to now (a retained `offline`
 * re-delivered at subscribe time says nothing about when the vessel was last seen).
 */
export async function recordPresence(sql: Sql, p: Presence): Promise<void> {
  const seen = p.at?.toISOString() ?? (p.status === "online" ? new Date().toISOString() : null);
  const epoch = p.epoch ?? null;
  const seq = p.lastSeq ?? null;
  await sql`
    insert into shore_vessels (vessel_id, status, status_at, last_seen_at, reported_epoch,
      reported_seq)
    values (${p.vesselId}, ${p.status}, now(), ${seen}, ${epoch}, ${seq})
    on conflict (vessel_id) do update set
      status = excluded.status,
      status_at = now(),
      last_seen_at = greatest(shore_vessels.last_seen_at, excluded.last_seen_at),
      reported_epoch = coalesce(excluded.reported_epoch, shore_vessels.reported_epoch),
      reported_seq = case when excluded.reported_epoch is null then shore_vessels.reported_seq
        else excluded.reported_seq end`;
}

/**
 * Every known vessel (seen on the broker, or written for ashore) with its current epoch's
 * position and its down stream (db/shore/down-outbox.ts's figures, per vessel).
 */
export function listVessels(sql: Sql): Promise<VesselView[]> {
  return sql<VesselView[]>`
    with current as (
      select distinct on (vessel_id) vessel_id, epoch, last_seq
      from shore_positions order by vessel_id, last_received_at desc, epoch
    ), ids as (
      select vessel_id from shore_vessels union select vessel_id from shore_down_state
    )
    select ids.vessel_id as "vesselId", coalesce(v.status, 'unknown') as status,
      c.epoch::text as epoch,
      coalesce(c.last_seq, 0)::int8 as "lastSeq",
      to_char(v.last_seen_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        as "lastSeenAt",
      (select count(*) from shore_inbox i where i.vessel_id = ids.vessel_id
        and i.epoch = c.epoch and i.applied_at is null)::int8 as gaps,
      (select count(*) from shore_dead_letters d where d.vessel_id = ids.vessel_id)::int8
        as "deadLetters",
      coalesce(v.forgeries, 0)::int8 as forgeries,
      ((select count(*) from shore_down_changes dc where dc.vessel_id = ids.vessel_id
          and dc.seq is null)
        + (select count(*) from shore_down_changes dc where dc.vessel_id = ids.vessel_id
          and dc.acked_at is null and dc.seq is not null))::int8 as "downBacklog",
      (select count(*) from shore_down_changes dc where dc.vessel_id = ids.vessel_id
        and dc.acked_at is null and dc.seq is not null and dc.epoch = d.epoch
        and dc.seq <= d.published_seq)::int8 as "downUnacked",
      d.epoch::text as "downEpoch",
      coalesce(d.published_seq, 0)::int8 as "downPublishedSeq",
      coalesce(d.acked_seq, 0)::int8 as "downAckedSeq",
      to_char(d.last_ack_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
        as "downLastAckAt"
    from ids left join shore_vessels v using (vessel_id)
      left join current c using (vessel_id)
      left join shore_down_state d using (vessel_id)
    order by ids.vessel_id`;
}

/** The fleet summary of `/health`. */
export async function fleetSummary(sql: Sql): Promise<FleetSummary> {
  const [row] = await sql<FleetSummary[]>`
    select
      (select count(*) from shore_vessels)::int8 as vessels,
      (select count(*) from shore_vessels where status = 'online')::int8 as online,
      (select count(*) from shore_vessels where status = 'offline')::int8 as offline,
      (select count(*) from shore_vessels where status = 'unknown')::int8 as unknown,
      (select coalesce(sum(applied_count), 0) from shore_positions)::int8 as "totalApplied",
      (select count(distinct vessel_id) from shore_inbox where applied_at is null)::int8
        as "vesselsWithGaps",
      (select count(*) from shore_inbox where applied_at is null)::int8 as waiting`;
  return row!;
}

/** When shore last advanced a vessel's applied position (and so acked it), or null. */
export async function lastAckAt(sql: Sql): Promise<string | null> {
  const [row] = await sql<{ at: Date | null }[]>`select max(updated_at) as at from shore_positions`;
  return row?.at?.toISOString() ?? null;
}

/** Per vessel, current epoch: the applied seq and the seqs received past it. */
export function vesselProgress(
  sql: Sql,
): Promise<{ vesselId: string; lastSeq: number; lag: number }[]> {
  return sql`
    with current as (
      select distinct on (vessel_id) vessel_id, epoch, last_seq
      from shore_positions order by vessel_id, last_received_at desc, epoch
    )
    select c.vessel_id as "vesselId", c.last_seq as "lastSeq",
      coalesce((select max(seq) from shore_inbox i where i.vessel_id = c.vessel_id
        and i.epoch = c.epoch and i.applied_at is null) - c.last_seq, 0)::int8 as lag
    from current c`;
}

/** Lists live fleet records of `entity`, of one vessel or all, keyset-paginated. */
export async function listShoreRecords(
  sql: Sql,
  entity: Entity,
  options: { vesselId?: string; limit: number; cursor?: string } & ListFilter,
): Promise<ShorePage> {
  const { vesselId, limit, cursor, ...filter } = options;
  const after = cursor === undefined ? undefined : decodeCursor(cursor);
  const rows = await sql<{ data: ApiRecord; vessel_id: string; created_at: Date; id: string }[]>`
    select data, vessel_id, created_at, id from shore_records
    where entity = ${entity} and deleted_at is null
      ${vesselId === undefined ? sql`` : sql`and vessel_id = ${vesselId}`}
      ${filterConditions(sql, filter)}
      ${after ? sql`and (created_at, id) > (${after[0]}, ${after[1]})` : sql``}
    order by created_at, id
    limit ${limit + 1}`;
  return toPage(rows, limit, (r) => ({ ...r.data, vesselId: r.vessel_id }));
}
