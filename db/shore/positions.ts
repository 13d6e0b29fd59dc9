/**
 * What the shore has applied of each vessel, and what it lacks: the ack positions
 * (sync/shore/acks.ts) and the gaps repaired by sync/shore/gaps.ts.
 */
import type { Sql } from "../connection.ts";
import { DEFAULT_LIMITS } from "./inbox.ts";

/**
 * A vessel's current epoch and its applied position. The current epoch is the one shore last
 * received a change of, by shore's clock: a vessel's clock may jump, and a straggler of an
 * older epoch only turns the ack aside until the next change of the current one.
 */
export interface AckPosition {
  vesselId: string;
  epoch: string;
  seq: number;
}

/** The ack of each vessel (all known vessels when `vesselIds` is not given). */
export function ackPositions(sql: Sql, vesselIds?: string[]): Promise<AckPosition[]> {
  return sql<AckPosition[]>`
    select distinct on (vessel_id) vessel_id as "vesselId", epoch::text as epoch, last_seq as seq
    from shore_positions
    ${vesselIds ? sql`where vessel_id = any(${vesselIds}::text[])` : sql``}
    order by vessel_id, last_received_at desc, epoch`;
}

/** A gap: rows wait in the inbox past `lastSeq`. */
export interface Gap {
  vesselId: string;
  epoch: string;
  lastSeq: number;
  firstWaiting: number;
  lastWaiting: number;
  waiting: number;
}

/** Every (vessel, epoch) not known offline with rows waiting past a gap. */
export function gaps(sql: Sql): Promise<Gap[]> {
  return sql<Gap[]>`
    select i.vessel_id as "vesselId", i.epoch::text as epoch, p.last_seq as "lastSeq",
      min(i.seq) as "firstWaiting", max(i.seq) as "lastWaiting", count(*)::int8 as waiting
    from shore_inbox i join shore_positions p using (vessel_id, epoch)
    where i.applied_at is null
      -- A request to an offline vessel would wait in its session with every later one, and
      -- all of them would be answered at once when it returns.
      and not exists (select 1 from shore_vessels v
        where v.vessel_id = i.vessel_id and v.status = 'offline')
    group by i.vessel_id, i.epoch, p.last_seq`;
}

/**
 * Gaps at the tail: vessels online whose status announced a last seq that shore has not
 * applied yet (nothing past it may have arrived, so the inbox shows no gap). `firstWaiting`
 * is the seq after the announced one.
 */
export function reportedGaps(sql: Sql, seqWindow = DEFAULT_LIMITS.seqWindow): Promise<Gap[]> {
  return sql<Gap[]>`
    select v.vessel_id as "vesselId", v.reported_epoch::text as epoch,
      coalesce(p.last_seq, 0)::int8 as "lastSeq", v.reported_seq + 1 as "firstWaiting",
      v.reported_seq as "lastWaiting", 0::int8 as waiting
    from shore_vessels v
    left join shore_positions p on p.vessel_id = v.vessel_id and p.epoch = v.reported_epoch
    where v.status = 'online' and v.reported_seq > coalesce(p.last_seq, 0)
      -- A status may claim any seq: past the window nothing would be stored if sent, so it is
      -- not asked for (a forged 2^53 - 1 would be asked for for ever).
      and v.reported_seq <= coalesce(p.last_seq, 0) + ${seqWindow}`;
}
