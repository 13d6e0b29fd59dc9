/**
 * The shore's outbox towards each vessel: db/vessel/outbox.ts's claim, re-read and ack over
 * shore_down_changes, one stream (epoch, gapless seq) per vessel, so that one vessel's backlog
 * never stands in front of another's. Rows are change rows (core/change.ts), so
 * sync/protocol.ts's toEnvelope builds their envelopes as it builds the vessel's.
 */
import type { Sql } from "../connection.ts";
import { pruneAckedRows } from "../retention.ts";
import type { ChangeRow, ChangeSync } from "../../core/change.ts";

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
  | { kind: "acked"; released: number }
  | { kind: "ignored" }
  | { kind: "new_epoch"; epoch: string; released: number };

/**
 * Applies a vessel's `{epoch, seq}` down ack. Another epoch's is ignored. One beyond the
 * stream's last seq means this shore database was restored from an older backup: the vessel
 * holds changes this database never saw, so the vessel's stream starts a new epoch (its inbox
 * keeps a position per epoch and will not take the next changes for duplicates).
 */
export function applyDownAck(
  sql: Sql,
  vesselId: string,
  ack: { epoch: string; seq: number },
): Promise<DownAckOutcome> {
  return sql.begin(async (tx) => {
    const [state] = await tx<{ epoch: string; last_seq: number }[]>`
      select epoch::text, last_seq from shore_down_state where vessel_id = ${vesselId}
      for update`;
    if (!state || state.epoch !== ack.epoch) return { kind: "ignored" } as const;
    if (ack.seq > state.last_seq) {
      const [next] = await tx<{ epoch: string }[]>`
        update shore_down_state set epoch = gen_random_uuid(), last_seq = 0, published_seq = 0
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
    return { kind: "acked", released: r.count } as const;
  }) as Promise<DownAckOutcome>;
}

/** Per vessel with a down stream: changes not yet acknowledged by the vessel. */
export async function downBacklog(sql: Sql): Promise<{ vesselId: string; backlog: number }[]> {
  return [
    ...await sql<{ vesselId: string; backlog: number }[]>`
    select s.vessel_id as "vesselId",
      (select count(*) from shore_down_changes c
        where c.vessel_id = s.vessel_id and c.acked_at is null)::int8 as backlog
    from shore_down_state s order by s.vessel_id`,
  ];
}

/**
 * Deletes down changes the vessels acknowledged more than `days` ago, `batch` rows a
 * statement (db/vessel/outbox.ts's pruneAcked for the down streams); returns the count.
 */
export function pruneDownAcked(sql: Sql, days: number, batch = 1_000): Promise<number> {
  return pruneAckedRows(sql, "shore_down_changes", days, batch);
}
