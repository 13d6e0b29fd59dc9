/**
 * The shore inbox: exactly-once, in-order apply of a vessel's changes.
 *
 * One transaction per (vessel, epoch) batch: upsert the position row first (it is the
 * vessel's lock, so transactions for one vessel from any number of shore processes run one
 * after another), insert every envelope into the inbox (its key (vessel, epoch, seq) turns a
 * re-delivery into a no-op), then apply every inbox row from last_seq + 1 on while the seqs
 * are contiguous. Rows past a gap wait in the inbox, durably, until the gap is filled: by
 * this process, after a restart, or by another shore instance.
 *
 * The common case takes a shorter way: a batch whose seqs continue the position, with nothing
 * waiting at them, is applied from memory and its inbox rows are written applied, without
 * their envelopes (nothing reads an applied row's envelope), instead of written, read back and
 * updated. The key and the position row's lock hold exactly-once alike on both ways.
 */
import type postgres from "postgres";
import type { Sql } from "../connection.ts";

import type { Envelope } from "../../core/change.ts";
import { applyChanges, type InboxChange } from "./apply.ts";
import { type DeadLetter, deadLetter, isDataError, letterOf } from "./dead-letters.ts";

type Tx = postgres.TransactionSql;

/** Inbox rows read per apply step; a long backlog is applied in steps of this size. */
const APPLY_STEP = 2_000;

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
    const window = last + limits.seqWindow;
    const inWindow = unique.filter((e) => e.seq <= window);
    const outside = envelopes.filter((e) => e.seq > window).length;
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
    let applied = 0;
    let conflicts = 0;
    // The common case, a frame that continues the position: its head (the seqs from
    // last_seq + 1 on, as far as they run contiguously in memory) is applied straight from
    // memory and its inbox rows are written applied, once, instead of written waiting, read
    // back and updated. Only where nothing waits at those seqs (a row parked past a gap, a
    // dead letter): then the inbox, not this batch, says what they hold, and the general
    // path below reads it. The position row's lock makes this read final until commit.
    let head = 0;
    while (head < rows.length && rows[head]!.seq === last + 1 + head) head++;
    // The lowest seq above the position held waiting or dead-lettered (before this batch).
    let firstWaiting = -1;
    if (!oneByOne && head > 0) {
      firstWaiting = await lowestWaiting(tx, vesselId, epoch, last);
      if (firstWaiting > last + head) {
        const done = rows.splice(0, head);
        inserted = await insertInbox(tx, vesselId, epoch, done, { applied: true });
        // Only an applied row could hold these keys, and every applied seq is at or below
        // last_seq: a database that says otherwise was changed by hand.
        if (inserted !== head) {
          throw new Error(`Inbox of "${vesselId}" holds seqs above its position ${last}`);
        }
        conflicts += await applyChanges(tx, vesselId, done.map((r) => r.envelope));
        applied = head;
        last += head;
      }
    }
    // Whatever is left (past a gap, or the whole batch where rows wait) is written waiting.
    if (!oneByOne) {
      if (rows.length > 0) inserted += await insertInbox(tx, vesselId, epoch, rows);
    } else {
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
        envelopes.filter((e) => e.seq <= window),
      )
      : [];
    duplicates -= forgeries.length;
    if (forgeries.length > 0) {
      await tx`
        insert into shore_vessels (vessel_id, forgeries) values (${vesselId}, ${forgeries.length})
        on conflict (vessel_id) do update
        set forgeries = shore_vessels.forgeries + excluded.forgeries`;
    }

    // After the fast path, what waits is known: the rest of the batch, past a gap, and what
    // waited before; only where that continues the position is there more to apply.
    let waiting = rows.length > 0 || firstWaiting < Infinity;
    const known = applied > 0 && Math.min(rows[0]?.seq ?? Infinity, firstWaiting) > last + 1;
    while (!known) {
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

/** The lowest seq above `last` waiting in the inbox or dead-lettered; Infinity when none. */
async function lowestWaiting(tx: Tx, vesselId: string, epoch: string, last: number) {
  const [row] = await tx<{ seq: string | null }[]>`
    select least(
      (select min(seq) from shore_inbox
        where vessel_id = ${vesselId} and epoch = ${epoch} and applied_at is null
          and seq > ${last}),
      (select min(seq) from shore_dead_letters
        where vessel_id = ${vesselId} and epoch = ${epoch} and seq > ${last})) as seq`;
  return row!.seq === null ? Infinity : Number(row!.seq);
}

interface InboxRow {
  seq: number;
  message_id: string;
  entity: string;
  operation: string;
  envelope: Envelope;
}

/**
 * Inserts inbox rows, waiting (with their envelopes, which the apply reads back), or
 * `applied` in this transaction (without: nothing reads an applied row's envelope).
 */
function insertInbox(
  tx: Tx,
  vesselId: string,
  epoch: string,
  rows: InboxRow[],
  { applied = false } = {},
): Promise<number> {
  const values = rows.map(({ envelope, ...row }) => ({
    ...row,
    changed_at: envelope.timestamp,
    envelope: applied ? null : envelope,
  }));
  return tx`
    insert into shore_inbox
      (vessel_id, epoch, seq, message_id, entity, operation, envelope, changed_at, applied_at)
    select ${vesselId}, ${epoch}, x.seq, x.message_id, x.entity, x.operation, x.envelope,
      x.changed_at, case when ${applied}::boolean then now() end
    from jsonb_to_recordset(${tx.json(values as never)}) as x(
      seq bigint, message_id uuid, entity text, operation text, envelope jsonb,
      changed_at timestamptz)
    -- A re-delivery of a dead-lettered change is a duplicate too.
    where not exists (select 1 from shore_dead_letters d
      where d.vessel_id = ${vesselId} and d.epoch = ${epoch} and d.seq = x.seq)
    order by x.seq
    on conflict do nothing`.then((r) => r.count);
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
): Promise<InboxChange[]> {
  const missing: number[] = [];
  for (let s = from + 1; s <= to; s++) if (!batch.has(s) && !dead.has(s)) missing.push(s);
  const stored = missing.length === 0 ? [] : await tx<InboxChange[]>`
    select seq, entity, operation, envelope->'data' as data, envelope->>'timestamp' as timestamp,
      message_id::text as "messageId", envelope->'sync' as sync
    from shore_inbox
    where vessel_id = ${vesselId} and epoch = ${epoch} and seq = any(${missing}::bigint[])`;
  const out: InboxChange[] = [...stored];
  for (let s = from + 1; s <= to; s++) {
    const e = batch.get(s);
    if (e && !dead.has(s)) out.push(e);
  }
  return out.sort((a, b) => a.seq - b.seq);
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
