/**
 * The shore inbox: exactly-once, in-order apply of a vessel's changes.
 *
 * One transaction per (vessel, epoch) batch: upsert the position row first (it is the
 * vessel's lock, so transactions for one vessel from any number of shore processes run one
 * after another), insert every envelope into the inbox (its key (vessel, epoch, seq) turns a
 * re-delivery into a no-op), then apply every inbox row from last_seq + 1 on while the seqs
 * are contiguous. Rows past a gap wait in the inbox, durably, until the gap is filled: by
 * this process, after a restart, or by another shore instance.
 */
import type postgres from "postgres";
import type { Sql } from "../connection.ts";

import type { ChangeSync, Envelope } from "../../core/change.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { applyRemote, type Conflict, type SyncRecord } from "../../sync/merge.ts";
import { recordConflicts } from "../conflicts.ts";
import { earlierCreatedAt, type StoredSync, toChange, toRow, toSyncRecord } from "../sync-rows.ts";

type Tx = postgres.TransactionSql;

/** Inbox rows read per apply step; a long backlog is applied in steps of this size. */
const APPLY_STEP = 2_000;

/** A change the shore can never apply, kept in `shore_dead_letters` and stepped over. */
export interface DeadLetter {
  seq: number;
  messageId: string;
  /** The SQLSTATE the database refused it with (the `reason` label of the metric). */
  reason: string;
  detail: string;
}

/**
 * A second message at a (vessel, epoch, seq) already held, under another `messageId`: a
 * re-delivery carries the same id, so this is a forgery (or a vessel bug); never applied.
 */
export interface Forgery {
  seq: number;
  /** The id held (and applied, or waiting). */
  kept: string;
  /** The id of the message refused. */
  refused: string;
}

/** What one vessel may park ashore; past these, envelopes are refused (and re-sent later). */
export interface IngestLimits {
  /** Seqs further than this ahead of the position are refused (a forged 2^53 - 1 would sit
   * in the inbox for good, its gap asked for for ever). */
  seqWindow: number;
  /** Epochs of one vessel received in the last day; a new epoch beyond them is refused. */
  maxLiveEpochs: number;
  /** Rows of one vessel waiting past gaps, every epoch; a batch that would leave more is refused. */
  maxParked: number;
}

/** The production limits. */
export const DEFAULT_LIMITS: IngestLimits = {
  seqWindow: 100_000,
  maxLiveEpochs: 4,
  maxParked: 100_000,
};

/** Why envelopes were refused (the `reason` label of `bosun_shore_refused_total`). */
export type RefusalReason = "seq_window" | "epoch_limit" | "inbox_full";

class Refused extends Error {
  constructor(readonly reason: RefusalReason) {
    super(reason);
  }
}

/** What one batch did. */
export interface IngestResult {
  /** Envelopes already in the inbox (or twice in the batch): re-deliveries. */
  duplicates: number;
  /** Changes applied by this transaction (its own and waiting ones a batch unblocked). */
  applied: number;
  /** Highest contiguous seq applied (or dead-lettered) in this epoch after the batch. */
  lastSeq: number;
  /** Whether rows still wait past a gap. */
  waiting: boolean;
  /** Conflicts the applied changes met (docs/two-way-sync.md), recorded now. */
  conflicts: number;
  /** Changes dead-lettered by this transaction. */
  deadLettered: DeadLetter[];
  /** Messages refused for a seq held under another messageId. */
  forgeries: Forgery[];
  /** Envelopes refused past a bound, by reason. */
  refused: Partial<Record<RefusalReason, number>>;
}

interface Change {
  seq: number;
  entity: string;
  operation: string;
  data: Record<string, unknown>;
  timestamp: string;
  messageId: string;
  /** Two-way sync metadata; absent from changes of a vessel older than two-way sync. */
  sync?: ChangeSync | null;
}

/**
 * A data exception (class 22) or integrity violation (class 23): the database refuses this
 * data, and will refuse it on every retry. Anything else (an outage, a timeout, a lock) may
 * pass next time and is never a reason to skip a change.
 */
export const isDataError = (err: unknown): boolean =>
  /^2[23]/.test(String((err as { code?: unknown })?.code ?? ""));

/**
 * Ingests envelopes of one vessel and epoch (in any order, duplicates allowed) in one
 * transaction and applies whatever has become contiguous.
 *
 * The batch is written whole first. When the database refuses its data (a data error), the
 * transaction is run again change by change, each in a savepoint: a change refused on its own
 * is dead-lettered (kept with the reason) and the vessel's position moves past it, so one bad
 * change never holds back the changes behind it. An outage is never dead-lettered: it throws,
 * and the caller retries.
 */
export async function ingest(
  sql: Sql,
  vesselId: string,
  epoch: string,
  envelopes: readonly Envelope[],
  limits: IngestLimits = DEFAULT_LIMITS,
): Promise<IngestResult> {
  try {
    try {
      return await ingestOnce(sql, vesselId, epoch, envelopes, false, limits);
    } catch (err) {
      if (!isDataError(err)) throw err;
      return await ingestOnce(sql, vesselId, epoch, envelopes, true, limits);
    }
  } catch (err) {
    if (!(err instanceof Refused)) throw err;
    // The whole batch is refused and its transaction rolled back: nothing of it is kept.
    return {
      duplicates: 0,
      applied: 0,
      lastSeq: 0,
      waiting: false,
      conflicts: 0,
      deadLettered: [],
      forgeries: [],
      refused: { [err.reason]: envelopes.length },
    };
  }
}

function ingestOnce(
  sql: Sql,
  vesselId: string,
  epoch: string,
  envelopes: readonly Envelope[],
  oneByOne: boolean,
  limits: IngestLimits,
): Promise<IngestResult> {
  const bySeq = new Map<number, Envelope>();
  for (const e of envelopes) if (!bySeq.has(e.seq)) bySeq.set(e.seq, e);
  // Sorted so two transactions inserting overlapping seqs take their key locks in one order.
  const unique = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  return sql.begin(async (tx) => {
    const deadLettered: DeadLetter[] = [];
    const [position] = await tx<{ last_seq: number; created: boolean }[]>`
      insert into shore_positions (vessel_id, epoch, last_received_at)
      values (${vesselId}, ${epoch}, now())
      on conflict (vessel_id, epoch) do update set last_received_at = now()
      returning last_seq, xmax = 0 as created`;
    if (position!.created) {
      // New epochs of one vessel arriving at once would each count the others uncommitted:
      // one at a time per vessel (only new epochs pay for this; the key is the vessel's).
      await tx`select pg_advisory_xact_lock(hashtext(${"bosun.shore.epochs/" + vesselId}))`;
      const [live] = await tx<{ n: number }[]>`
        select count(*)::int as n from shore_positions
        where vessel_id = ${vesselId} and epoch <> ${epoch}
          and last_received_at > now() - interval '1 day'`;
      if (live!.n >= limits.maxLiveEpochs) throw new Refused("epoch_limit");
    }
    let last = position!.last_seq;
    const refused: Partial<Record<RefusalReason, number>> = {};
    const inWindow = unique.filter((e) => e.seq <= last + limits.seqWindow);
    const outside = envelopes.filter((e) => e.seq > last + limits.seqWindow).length;
    if (outside > 0) refused.seq_window = outside;
    // At or below last_seq is applied already: a duplicate even if its inbox row were gone.
    const rows = inWindow.filter((e) => e.seq > last).map((e) => ({
      seq: e.seq,
      message_id: e.messageId,
      entity: e.entity,
      operation: e.operation,
      envelope: e,
    }));
    let inserted = 0;
    if (!oneByOne) inserted = await insertInbox(tx, vesselId, epoch, rows);
    else {
      for (const row of rows) {
        try {
          inserted += await tx.savepoint((sp) => insertInbox(sp, vesselId, epoch, [row]));
        } catch (err) {
          if (!isDataError(err)) throw err;
          if (await deadLetter(tx, vesselId, epoch, row.envelope, err)) {
            deadLettered.push(letterOf(row.envelope, err));
          }
        }
      }
    }
    let duplicates = envelopes.length - outside - inserted - deadLettered.length;
    const forgeries = duplicates > 0
      ? await forgeriesOf(
        tx,
        vesselId,
        epoch,
        envelopes.filter((e) => e.seq <= last + limits.seqWindow),
      )
      : [];
    duplicates -= forgeries.length;
    if (forgeries.length > 0) {
      await tx`
        insert into shore_vessels (vessel_id, forgeries) values (${vesselId}, ${forgeries.length})
        on conflict (vessel_id) do update
        set forgeries = shore_vessels.forgeries + excluded.forgeries`;
    }

    let applied = 0;
    let conflicts = 0;
    let waiting = false;
    for (;;) {
      // Dead letters count as contiguous: the position steps over them.
      const next = await tx<{ seq: number; dead: boolean }[]>`
        select seq, false as dead from shore_inbox
        where vessel_id = ${vesselId} and epoch = ${epoch} and applied_at is null
          and seq > ${last}
        union all
        select seq, true as dead from shore_dead_letters
        where vessel_id = ${vesselId} and epoch = ${epoch} and seq > ${last}
        order by seq limit ${APPLY_STEP}`;
      let end = last;
      const dead = new Set<number>();
      for (const { seq, dead: d } of next) {
        if (seq !== end + 1) break;
        end = seq;
        if (d) dead.add(seq);
      }
      waiting = next.length > end - last;
      if (end === last) break;
      const changes = await changesOf(tx, vesselId, epoch, last, end, bySeq, dead);
      if (!oneByOne) conflicts += await applyChanges(tx, vesselId, changes);
      else {
        for (const c of changes) {
          try {
            conflicts += await tx.savepoint((sp) => applyChanges(sp, vesselId, [c]));
          } catch (err) {
            if (!isDataError(err)) throw err;
            const envelope = bySeq.get(c.seq) ?? await storedEnvelope(tx, vesselId, epoch, c.seq);
            await tx`
              delete from shore_inbox
              where vessel_id = ${vesselId} and epoch = ${epoch} and seq = ${c.seq}`;
            if (await deadLetter(tx, vesselId, epoch, envelope, err)) {
              deadLettered.push(letterOf(envelope, err));
            }
            dead.add(c.seq);
          }
        }
      }
      await tx`
        update shore_inbox set applied_at = now()
        where vessel_id = ${vesselId} and epoch = ${epoch} and seq > ${last} and seq <= ${end}`;
      applied += end - last - dead.size;
      last = end;
      if (waiting || next.length < APPLY_STEP) break;
    }
    if (waiting && inserted > 0) {
      const [parked] = await tx<{ n: number }[]>`
        select count(*)::int as n from (select 1 from shore_inbox
          where vessel_id = ${vesselId} and applied_at is null limit ${limits.maxParked + 1}) p`;
      if (parked!.n > limits.maxParked) throw new Refused("inbox_full");
    }
    if (last > position!.last_seq) {
      await tx`
        update shore_positions
        set last_seq = ${last}, applied_count = applied_count + ${applied}, updated_at = now()
        where vessel_id = ${vesselId} and epoch = ${epoch}`;
    }
    await tx`
      insert into shore_vessels (vessel_id, last_seen_at) values (${vesselId}, now())
      on conflict (vessel_id) do update set last_seen_at = now()`;
    return {
      duplicates,
      applied,
      lastSeq: last,
      waiting,
      conflicts,
      deadLettered,
      forgeries,
      refused,
    };
  });
}

function insertInbox(
  tx: Tx,
  vesselId: string,
  epoch: string,
  rows: { seq: number; message_id: string; entity: string; operation: string }[],
): Promise<number> {
  return tx`
    insert into shore_inbox (vessel_id, epoch, seq, message_id, entity, operation, envelope)
    select ${vesselId}, ${epoch}, x.seq, x.message_id, x.entity, x.operation, x.envelope
    from jsonb_to_recordset(${tx.json(rows as never)}) as x(
      seq bigint, message_id uuid, entity text, operation text, envelope jsonb)
    -- A re-delivery of a dead-lettered change is a duplicate too.
    where not exists (select 1 from shore_dead_letters d
      where d.vessel_id = ${vesselId} and d.epoch = ${epoch} and d.seq = x.seq)
    order by x.seq
    on conflict do nothing
    returning seq`.then((r) => r.length);
}

/**
 * Every envelope of the batch whose seq is held (in the inbox or among the dead letters)
 * under another messageId. A seq whose inbox row was pruned cannot be compared: it is at or
 * below the position, and discarded as a duplicate all the same.
 */
async function forgeriesOf(
  tx: Tx,
  vesselId: string,
  epoch: string,
  envelopes: readonly Envelope[],
): Promise<Forgery[]> {
  const seqs = [...new Set(envelopes.map((e) => e.seq))];
  const held = new Map(
    (await tx<{ seq: number; id: string }[]>`
      select seq, message_id::text as id from shore_inbox
      where vessel_id = ${vesselId} and epoch = ${epoch} and seq = any(${seqs}::bigint[])
      union all
      select seq, message_id::text from shore_dead_letters
      where vessel_id = ${vesselId} and epoch = ${epoch} and seq = any(${seqs}::bigint[])`)
      .map((r) => [Number(r.seq), r.id]),
  );
  const out: Forgery[] = [];
  for (const e of envelopes) {
    const kept = held.get(e.seq);
    if (kept !== undefined && kept !== e.messageId.toLowerCase()) {
      out.push({ seq: e.seq, kept, refused: e.messageId });
    }
  }
  return out;
}

const letterOf = (e: Envelope, err: unknown): DeadLetter => ({
  seq: e.seq,
  messageId: e.messageId,
  reason: String((err as { code?: unknown }).code),
  detail: err instanceof Error ? err.message : String(err),
});

/**
 * Keeps a change the database refused. The envelope is kept as JSON text: it may be the very
 * jsonb the database refused (JSON.stringify escapes NUL and lone surrogates, so text takes it).
 */
async function deadLetter(
  tx: Tx,
  vesselId: string,
  epoch: string,
  e: Envelope,
  err: unknown,
): Promise<boolean> {
  const { reason, detail } = letterOf(e, err);
  const rows = await tx`
    insert into shore_dead_letters (vessel_id, epoch, seq, message_id, envelope, reason, detail)
    values (${vesselId}, ${epoch}, ${e.seq}, ${e.messageId}, ${JSON.stringify(e)}, ${reason},
      ${detail.slice(0, 1_000)})
    on conflict do nothing
    returning seq`;
  return rows.length > 0;
}

async function storedEnvelope(tx: Tx, vesselId: string, epoch: string, seq: number) {
  const [row] = await tx<{ envelope: Envelope }[]>`
    select envelope from shore_inbox
    where vessel_id = ${vesselId} and epoch = ${epoch} and seq = ${seq}`;
  return row!.envelope;
}

/** The changes (from, to] but `dead`: from the batch in memory where it has them, else the inbox. */
async function changesOf(
  tx: Tx,
  vesselId: string,
  epoch: string,
  from: number,
  to: number,
  batch: Map<number, Envelope>,
  dead: Set<number>,
): Promise<Change[]> {
  const missing: number[] = [];
  for (let s = from + 1; s <= to; s++) if (!batch.has(s) && !dead.has(s)) missing.push(s);
  const stored = missing.length === 0 ? [] : await tx<Change[]>`
    select seq, entity, operation, envelope->'data' as data, envelope->>'timestamp' as timestamp,
      message_id::text as "messageId", envelope->'sync' as sync
    from shore_inbox
    where vessel_id = ${vesselId} and epoch = ${epoch} and seq = any(${missing}::bigint[])`;
  const out: Change[] = [...stored];
  for (let s = from + 1; s <= to; s++) {
    const e = batch.get(s);
    if (e && !dead.has(s)) out.push(e);
  }
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * Upserts the newest version of every record the changes touch. A version never overwrites a
 * newer one already held (an old change applied late stays a no-op); a delete keeps the row
 * as a tombstone with `deleted_at`.
 */
async function applyChanges(tx: Tx, vesselId: string, all: Change[]): Promise<number> {
  // A vessel's changes written before two-way sync precede its first change with a clock.
  const changes = all.filter((c) => !c.sync);
  const newest = new Map<string, Change>();
  for (const c of changes) {
    const key = `${c.entity}/${c.data.id}`;
    const held = newest.get(key);
    if (!held || Number(c.data.version) >= Number(held.data.version)) newest.set(key, c);
  }
  // In key order, so two transactions touching the same records lock them in one order.
  const keys = [...newest.keys()].sort();
  if (keys.length > 0) await upsertNewest(tx, vesselId, keys.map((k) => newest.get(k)!));
  return await mergeChanges(tx, vesselId, all);
}

/** The pre-two-way rule: a version never overwrites a newer one already held. */
async function upsertNewest(tx: Tx, vesselId: string, newest: Change[]): Promise<void> {
  const rows = newest.map((c) => ({
    entity: c.entity,
    id: c.data.id,
    version: c.data.version,
    data: c.data,
    created_at: c.data.createdAt,
    updated_at: c.data.updatedAt,
    deleted_at: c.operation === "delete" ? c.timestamp : null,
  }));
  await tx`
    insert into shore_records
      (entity, vessel_id, id, version, data, created_at, updated_at, deleted_at)
    select x.entity, ${vesselId}, x.id, x.version, x.data, x.created_at, x.updated_at,
      x.deleted_at
    from jsonb_to_recordset(${tx.json(rows as never)}) as x(
      entity text, id uuid, version integer, data jsonb, created_at timestamptz,
      updated_at timestamptz, deleted_at timestamptz)
    on conflict (entity, vessel_id, id) do update set
      version = excluded.version, data = excluded.data, updated_at = excluded.updated_at,
      deleted_at = excluded.deleted_at, applied_at = now()
    where shore_records.version < excluded.version`;
}

/**
 * Merges vessel changes into the shore's copies (sync/merge.ts), in seq order, with the
 * conflicts they met: the mirror of db/vessel/down-inbox.ts, batched (one read under row locks,
 * one write, one conflicts insert) because a fleet's whole stream passes here. Never writes a
 * down change: what the vessel wrote it already has (no echo).
 */
async function mergeChanges(tx: Tx, vesselId: string, changes: Change[]): Promise<number> {
  const withSync = changes.filter((c) => c.sync);
  const createdAts = withSync.map((c) => String(c.data.createdAt));
  const merged = withSync.map((c) =>
    toChange(c.entity as Entity, {
      operation: c.operation as "create" | "update" | "delete",
      data: c.data,
      sync: c.sync!,
    }, "vessel")
  );
  if (merged.length === 0) return 0;
  const createdOf = new Map(merged.map((m, i) => [m, createdAts[i]!]));
  const keyOf = (entity: string, id: string) => `${entity}/${id}`;
  const createdAtOf = new Map<string, string>();
  for (const c of changes) {
    const key = keyOf(c.entity, String(c.data.id));
    if (!createdAtOf.has(key)) createdAtOf.set(key, String(c.data.createdAt));
  }
  const wanted = [...new Set(merged.map((c) => keyOf(c.entity, c.recordId)))].sort()
    .map((key) => ({ entity: key.split("/")[0], id: key.split("/")[1] }));
  // Locked in key order, so two transactions touching the same records lock them in one order.
  const held = await tx<(StoredRow & { entity: string; id: string })[]>`
    select r.entity, r.id::text as id, r.data, r.sync, r.deleted_at is not null as deleted,
      r.version
    from shore_records r
    join jsonb_to_recordset(${tx.json(wanted as never)}) as x(entity text, id uuid)
      on r.entity = x.entity and r.id = x.id
    where r.vessel_id = ${vesselId}
    order by r.entity, r.id
    for update of r`;
  const state = new Map<
    string,
    { record?: SyncRecord; version: number; createdAt: string }
  >();
  for (const r of held) {
    state.set(keyOf(r.entity, r.id), {
      record: toSyncRecord(r.entity as Entity, r, { self: "shore", recordId: r.id }),
      version: r.version,
      createdAt: r.data.createdAt,
    });
  }
  const conflicts: Conflict[] = [];
  const touched = new Set<string>();
  for (const change of merged) {
    const key = keyOf(change.entity, change.recordId);
    // A record new to shore takes its creation time from the change that brings it.
    const current = state.get(key) ?? { version: 0, createdAt: createdAtOf.get(key)! };
    const result = applyRemote(current.record, change, "shore");
    state.set(key, {
      ...current,
      // Both sides created it (the same id, concurrently): the earlier creation time stays.
      createdAt: change.op === "create" && current.record
        ? earlierCreatedAt(current.createdAt, createdOf.get(change)!)
        : current.createdAt,
      record: result.record,
      version: current.version + (result.duplicate ? 0 : 1),
    });
    if (!result.duplicate) touched.add(key);
    conflicts.push(...result.conflicts);
  }
  const rows = [...touched].sort().map((key) => {
    const s = state.get(key)!;
    const [entity, id] = key.split("/") as [string, string];
    const image = toRow(s.record!, { id, createdAt: s.createdAt, version: s.version });
    return {
      entity,
      id,
      version: s.version,
      data: image.data,
      created_at: s.createdAt,
      updated_at: image.updatedAt,
      deleted_at: image.deleted ? image.updatedAt : null,
      sync: image.sync,
    };
  });
  if (rows.length > 0) {
    await tx`
      insert into shore_records
        (entity, vessel_id, id, version, data, created_at, updated_at, deleted_at, sync)
      select x.entity, ${vesselId}, x.id, x.version, x.data, x.created_at, x.updated_at,
        x.deleted_at, x.sync
      from jsonb_to_recordset(${tx.json(rows as never)}) as x(
        entity text, id uuid, version integer, data jsonb, created_at timestamptz,
        updated_at timestamptz, deleted_at timestamptz, sync jsonb)
      on conflict (entity, vessel_id, id) do update set
        version = excluded.version, data = excluded.data, updated_at = excluded.updated_at,
        deleted_at = excluded.deleted_at, sync = excluded.sync, created_at = excluded.created_at,
        applied_at = now()`;
  }
  return await recordConflicts(tx, vesselId, conflicts);
}

interface StoredRow {
  data: ApiRecord;
  sync: StoredSync | null;
  deleted: boolean;
  version: number;
}

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

/**
 * Deletes inbox rows applied more than `days` ago. Safe for exactly-once: a re-delivery of a
 * pruned seq is at or below `last_seq`, which {@linkcode ingest} discards without the row.
 */
export async function pruneInbox(sql: Sql, days: number): Promise<number> {
  const result = await sql`
    delete from shore_inbox
    where applied_at is not null and applied_at < now() - make_interval(days => ${days})`;
  // Rows waiting past a gap in an epoch that is no longer the vessel's current one can never
  // be applied: only the current epoch is re-sent (its database is the one on board).
  const stale = await sql`
    with current as (
      select distinct on (vessel_id) vessel_id, epoch
      from shore_positions order by vessel_id, last_received_at desc, epoch
    )
    delete from shore_inbox i
    where i.applied_at is null
      and not exists (select 1 from current c where c.vessel_id = i.vessel_id
        and c.epoch = i.epoch)`;
  return result.count + stale.count;
}
