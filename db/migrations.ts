/**
 * Versioned schema migrations, applied in order at start ({@linkcode migrate}).
 *
 * Append only: a released migration is never edited. Kept as code rather than .sql files so
 * the compiled binary carries them.
 */
import type { Sql } from "./connection.ts";
import { ENTITIES } from "../core/entities.ts";

interface Migration {
  version: number;
  name: string;
  sql: string;
}

const entityTables = ENTITIES.map((e) => `
create table ${e} (
  id uuid primary key,
  version integer not null,
  data jsonb not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  deleted_at timestamptz
);
create index ${e}_page on ${e} (created_at, id) where deleted_at is null;`).join("\n");

/**
 * Every migration, in order. There is no version 3: no migration in this repository's history
 * ever carried it (a numbering slip). Renumbering 4 would make databases that recorded it run
 * it again, so the gap stays; new migrations continue from the highest number.
 */
export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: "records and change log",
    sql: `
${entityTables}

-- One row: this database's change-log epoch and the last seq handed out. A new database is a
-- new epoch, so a shore never takes its changes for duplicates of an older database's.
create table vessel_state (
  singleton boolean primary key default true check (singleton),
  epoch uuid not null,
  last_seq bigint not null default 0
);
insert into vessel_state (epoch) values (gen_random_uuid());

-- The change log and outbox in one: a row per committed create, update or delete, written in
-- the record's own transaction. seq is assigned when the publisher claims the row, not here:
-- ids drawn before commit are not in commit order, so "everything after the last id" skips
-- transactions that commit late, while "every row without a seq" never does.
create table changes (
  id bigint generated always as identity primary key,
  entity text not null,
  record_id uuid not null,
  operation text not null check (operation in ('create', 'update', 'delete')),
  data jsonb not null,
  changed_at timestamptz not null,
  message_id uuid not null default gen_random_uuid(),
  priority smallint not null,
  epoch uuid,
  seq bigint,
  published_at timestamptz,
  acked_at timestamptz,
  unique (epoch, seq)
);
create index changes_unclaimed on changes (priority, id) where seq is null;
create index changes_unpublished on changes (seq) where published_at is null and seq is not null;
create index changes_unacked on changes (seq) where acked_at is null and seq is not null;
create index changes_pending on changes (id) where acked_at is null;
create index changes_acked on changes (acked_at) where acked_at is not null;
create index changes_time on changes (changed_at);
`,
  },
  {
    version: 2,
    name: "shore inbox, positions, presence and records",
    sql: `
-- Presence per vessel, from its retained system/status topic and from its data.
create table shore_vessels (
  vessel_id text primary key,
  status text not null default 'unknown' check (status in ('online', 'offline', 'unknown')),
  status_at timestamptz,
  last_seen_at timestamptz,
  first_seen_at timestamptz not null default now(),
  -- The epoch and last seq an online status announced: changes shore must still receive.
  reported_epoch uuid,
  reported_seq bigint
);

-- Where shore stands per vessel and epoch: every seq up to last_seq is applied. The row is
-- also the per-vessel lock: every ingest transaction upserts it first, so transactions for
-- one vessel (from any number of shore processes) run one after another. last_received_at
-- (shore's clock, not the vessel's) picks the vessel's current epoch for its ack.
create table shore_positions (
  vessel_id text not null,
  epoch uuid not null,
  last_seq bigint not null default 0,
  applied_count bigint not null default 0,
  last_received_at timestamptz not null,
  updated_at timestamptz not null default now(),
  primary key (vessel_id, epoch)
);

-- Every change received, keyed by (vessel, epoch, seq): the key recognises a re-delivery,
-- and rows past a gap wait here (durably) until the gap is filled.
create table shore_inbox (
  vessel_id text not null,
  epoch uuid not null,
  seq bigint not null,
  message_id uuid not null,
  entity text not null,
  operation text not null,
  envelope jsonb not null,
  received_at timestamptz not null default now(),
  applied_at timestamptz,
  primary key (vessel_id, epoch, seq)
);
create index shore_inbox_waiting on shore_inbox (vessel_id, epoch, seq) where applied_at is null;

-- The fleet's records as applied: one row per (entity, vessel, id), newest version wins.
create table shore_records (
  entity text not null,
  vessel_id text not null,
  id uuid not null,
  version integer not null,
  data jsonb not null,
  created_at timestamptz not null,
  updated_at timestamptz not null,
  deleted_at timestamptz,
  applied_at timestamptz not null default now(),
  primary key (entity, vessel_id, id)
);
create index shore_records_vessel_page on shore_records (entity, vessel_id, created_at, id)
  where deleted_at is null;
create index shore_records_page on shore_records (entity, created_at, id)
  where deleted_at is null;
`,
  },
  {
    version: 4,
    name: "published watermark instead of a published_at per row",
    sql: `
-- "Published" becomes a watermark: every seq of the current epoch up to published_seq got its
-- PUBACK/PUBCOMP. It is advanced by one small update per batch, where published_at cost a
-- second non-HOT update of every change row (a new heap tuple and an entry in most indexes).
-- Everything above it is re-sent after a restart: a duplicate, which shore discards.
alter table vessel_state add column published_seq bigint not null default 0;
update vessel_state s set published_seq = coalesce(
  (select min(seq) - 1 from changes
    where epoch = s.epoch and seq is not null and published_at is null and acked_at is null),
  s.last_seq);

-- Fewer indexes for the claim's new row version to enter (it cannot be a HOT update: seq is
-- indexed). published_at is no longer written; the pending figures (count, oldest) come from
-- changes_unclaimed and changes_unacked together.
drop index changes_unpublished;
drop index changes_pending;
`,
  },
  {
    version: 5,
    name: "shore dead letters and forgeries",
    sql: `
-- Changes the shore's database refused on their own (a data error, SQLSTATE class 22 or 23,
-- found by applying the batch change by change): kept with the reason for the operator, and
-- stepped over by the vessel's position so the stream goes on (db/shore/inbox.ts). The
-- envelope is JSON text, not jsonb: it may be the very jsonb the database refused.
create table shore_dead_letters (
  vessel_id text not null,
  epoch uuid not null,
  seq bigint not null,
  message_id uuid not null,
  envelope text not null,
  reason text not null,
  detail text not null,
  dead_at timestamptz not null default now(),
  primary key (vessel_id, epoch, seq)
);

-- Messages refused because their (vessel, epoch, seq) was held under another messageId: a
-- re-delivery carries the same id, so each one is a forgery or a vessel bug (a security event).
alter table shore_vessels add column forgeries bigint not null default 0;
`,
  },
  {
    version: 11,
    name: "two-way sync: clocks, conflicts, the down outbox and inbox",
    sql: `
-- Per record, the merge's bookkeeping beside the values in data (sync/merge.ts): each entity
-- field's clock, the tombstone's clock, the newest clock applied from the other side, and this
-- side's changes the other side may not have seen yet. Null on rows written before two-way
-- sync: db/sync-rows.ts derives their clocks from updated_at.
${ENTITIES.map((e) => `alter table ${e} add column sync jsonb;`).join("\n")}
alter table shore_records add column sync jsonb;

-- The merge metadata of each change (its clock, the other side's clock it had seen, the fields
-- it wrote), for the other side to merge it.
alter table changes add column sync jsonb;

-- Conflicts on either role (docs/two-way-sync.md), identified by the two changes that met, so
-- applying the same change twice can never record its conflicts twice. at is truncated to
-- milliseconds so the (at, id) keyset cursor of db/paging.ts round-trips.
create table conflicts (
  id uuid primary key default gen_random_uuid(),
  entity text not null,
  record_id uuid not null,
  vessel_id text not null,
  fields jsonb not null,
  vessel jsonb,
  shore jsonb,
  resolved jsonb,
  vessel_clock text not null,
  shore_clock text not null,
  at timestamptz not null default date_trunc('milliseconds', now()),
  published_at timestamptz,
  unique (entity, vessel_id, record_id, vessel_clock, shore_clock)
);
create index conflicts_page on conflicts (at desc, id desc);
create index conflicts_entity_page on conflicts (entity, at desc, id desc);
create index conflicts_unpublished on conflicts (at) where published_at is null;

-- The shore's outbox towards each vessel: vessel_state and changes again, one stream per
-- vessel. seq is handed out when a publisher claims rows (db/shore/down-outbox.ts), under the
-- vessel's shore_down_state row lock, so each vessel's seq is gapless in publish order.
create table shore_down_state (
  vessel_id text primary key,
  epoch uuid not null default gen_random_uuid(),
  last_seq bigint not null default 0,
  published_seq bigint not null default 0
);
create table shore_down_changes (
  id bigint generated always as identity primary key,
  vessel_id text not null,
  entity text not null,
  record_id uuid not null,
  operation text not null check (operation in ('create', 'update', 'delete')),
  data jsonb not null,
  changed_at timestamptz not null,
  message_id uuid not null default gen_random_uuid(),
  priority smallint not null,
  epoch uuid,
  seq bigint,
  published_at timestamptz,
  acked_at timestamptz,
  sync jsonb not null,
  unique (vessel_id, epoch, seq)
);
create index shore_down_unclaimed on shore_down_changes (vessel_id, priority, id)
  where seq is null;
create index shore_down_unacked on shore_down_changes (vessel_id, seq)
  where acked_at is null and seq is not null;

-- The vessel's inbox of the shore's changes: shore_inbox and shore_positions for one peer.
create table down_positions (
  epoch uuid primary key,
  last_seq bigint not null default 0,
  applied_count bigint not null default 0,
  last_received_at timestamptz not null,
  updated_at timestamptz not null default now()
);
create table down_inbox (
  epoch uuid not null,
  seq bigint not null,
  message_id uuid not null,
  entity text not null,
  operation text not null,
  envelope jsonb not null,
  received_at timestamptz not null default now(),
  applied_at timestamptz,
  primary key (epoch, seq)
);
create index down_inbox_waiting on down_inbox (epoch, seq) where applied_at is null;
`,
  },
  {
    version: 12,
    name: "down stream: acknowledged position and last ack per vessel",
    sql: `
-- How far each vessel acknowledged its down stream, and when: the down publisher's window
-- and the down figures of /health, /metrics and /api/vessels read it from here instead of
-- scanning shore_down_changes.
alter table shore_down_state add column acked_seq bigint not null default 0;
alter table shore_down_state add column last_ack_at timestamptz;
`,
  },
  {
    version: 13,
    name: "vessel outbox: acknowledged watermark, messageId derived where it is read",
    sql: `
-- "Acknowledged" becomes a watermark, as "published" did in version 4: a change is
-- acknowledged iff it has a seq and its epoch is not the current one or its seq is at most
-- acked_seq. One small update per ack, where acked_at cost a second non-HOT update of every
-- change row (a new heap tuple, an entry in most indexes, and vacuum's work after).
-- Under ACK_MODE=broker the PUBACKs advance it contiguously; rows marked one by one before
-- (past a refused row) count from the first unacknowledged one: re-sent, never lost.
alter table vessel_state add column acked_seq bigint not null default 0;
alter table vessel_state add column last_ack_at timestamptz;
update vessel_state s set
  acked_seq = coalesce((select min(seq) - 1 from changes
    where epoch = s.epoch and seq is not null and acked_at is null), s.last_seq),
  last_ack_at = (select max(acked_at) from changes where acked_at is not null);

-- When each epoch was acknowledged how far, for retention (CATCHUP_RETENTION_DAYS after the
-- ack): one row per epoch and minute, its seq the highest acknowledged by at.
create table vessel_acks (
  epoch uuid not null,
  minute timestamptz not null,
  seq bigint not null,
  at timestamptz not null,
  primary key (epoch, minute)
);
insert into vessel_acks (epoch, minute, seq, at)
  select epoch, date_trunc('minute', acked_at), max(seq), max(acked_at) from changes
  where acked_at is not null and seq is not null group by 1, 2;

-- The messageId is derived from (vessel, epoch, seq) where it is read (db/vessel/outbox.ts):
-- a claim no longer writes it. Rows claimed before keep theirs (derived, or random from before
-- derivation), so a change's id never changes; rows not yet claimed get theirs when read.
alter table changes alter column message_id drop default;
alter table changes alter column message_id drop not null;
update changes set message_id = null where seq is null;

-- Fewer indexes for the claim's new row version to enter: the watermark replaces the partial
-- indexes over acked_at.
drop index changes_unacked;
drop index changes_acked;
alter table changes drop column acked_at;
`,
  },
  {
    version: 14,
    name: "shore inbox rows applied as they arrive keep no envelope",
    sql: `
-- A change that continues its vessel's position is applied in the transaction that receives
-- it (db/shore/inbox.ts), and its inbox row is written applied: nothing reads an applied row's
-- envelope (gap repair and dead letters read waiting rows, a forgery is told by message_id),
-- so none is written (about a fifth of the shore database's CPU per change). changed_at
-- (the change's own time, from its envelope) stays, for the write-to-applied latency; rows
-- from before this migration have it in their envelope only.
alter table shore_inbox alter column envelope drop not null;
alter table shore_inbox add column changed_at timestamptz;
`,
  },
];

// Any constant serves; it only has to be the same in every bosun process.
const LOCK_KEY = 0x62_6f_73_75;

/**
 * Applies the migrations not yet recorded. Each runs in its own transaction holding an
 * advisory lock, so two processes starting at once apply each exactly once.
 */
export async function migrate(sql: Sql, migrations = MIGRATIONS): Promise<number[]> {
  const applied: number[] = [];
  for (const m of migrations) {
    const done = await sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${LOCK_KEY})`;
      await tx`create table if not exists schema_migrations (
        version integer primary key,
        name text not null,
        applied_at timestamptz not null default now()
      )`;
      const [row] = await tx`select 1 from schema_migrations where version = ${m.version}`;
      if (row) return false;
      await tx.unsafe(m.sql);
      await tx`insert into schema_migrations (version, name) values (${m.version}, ${m.name})`;
      return true;
    });
    if (done) applied.push(m.version);
  }
  return applied;
}
