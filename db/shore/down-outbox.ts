/**
 * The shore's outbox towards each vessel: db/outbox.ts's claim and ack over
 * shore_down_changes, one stream (epoch, gapless seq) per vessel, so that one vessel's backlog
 * never stands in front of another's.
 */
import type { Sql } from "../connection.ts";
import type { Entity } from "../../core/entities.ts";

/** A claimed down change: its place in the vessel's stream and what to send. */
export interface DownRow {
  id: number;
  vesselId: string;
  entity: Entity;
  operation: "create" | "update" | "delete";
  epoch: string;
  seq: number;
  messageId: string;
  changedAt: Date;
  data: Record<string, unknown>;
  sync: { clock: string; seen: string | null; fields: string[] };
}

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
    const rows = await tx<DownRow[]>`
      update shore_down_changes c set epoch = ${state!.epoch}, seq = ${state!.last_seq} + p.rn
      from (select id, row_number() over (order by priority, id) as rn from shore_down_changes
            where vessel_id = ${vesselId} and seq is null order by priority, id
            limit ${limit}) p
      where c.id = p.id
      returning c.id, c.vessel_id as "vesselId", c.entity, c.operation, c.epoch::text,
        c.seq, c.message_id as "messageId", c.changed_at as "changedAt", c.data, c.sync`;
    if (rows.length) {
      await tx`update shore_down_state set last_seq = ${state!.last_seq + rows.length}
        where vessel_id = ${vesselId}`;
    }
    return [...rows].sort((a, b) => a.seq - b.seq);
  }) as Promise<DownRow[]>;
}

/** Per vessel with a down stream: changes not yet acknowledged by the vessel. */
export function downBacklog(sql: Sql): Promise<{ vesselId: string; backlog: number }[]> {
  return sql`
    select s.vessel_id as "vesselId",
      (select count(*) from shore_down_changes c
        where c.vessel_id = s.vessel_id and c.acked_at is null)::int8 as backlog
    from shore_down_state s order by s.vessel_id`;
}
