/**
 * Group commit for creates: creates that arrive while earlier ones are being written wait
 * and then go together as one statement (one round trip, one commit, one WAL flush), each
 * record with its change row, as the single-create statement writes them.
 *
 * No create is held back on purpose: while fewer than `maxInFlight` statements are running,
 * a create is written at once, alone. Batches form only under load, from the creates that
 * queued behind a running statement, so a quiet gateway answers as fast as before and a busy
 * one spends one commit on many requests.
 *
 * Each caller is answered only once its own rows are committed. When PostgreSQL refuses a
 * batch (a duplicate id, a value it cannot store), nothing of it was written: each create
 * is then written alone and gets its own outcome (a 409 for the duplicate, 201 for the rest).
 * A lost connection is not retried, as a single create would not be: its outcome is unknown,
 * and the callers get the error (503) as they would have.
 */
import type { Sql } from "../connection.ts";
import type { ApiRecord, Entity } from "../../core/entities.ts";
import { isDatabaseUnavailable } from "../../core/errors.ts";

/** One create as written: the record (also the change's data) and its change's priority. */
export interface CreateRow {
  entity: Entity;
  record: ApiRecord;
  priority: number;
  /** The record's two-way sync bookkeeping and its change's (db/sync-rows.ts). */
  sync: { record: unknown; change: unknown };
}

/** Options for {@linkcode GroupCommit}. */
export interface GroupCommitOptions {
  sql: Sql;
  /** Writes one create alone: the single-create statement. */
  single: (row: CreateRow) => Promise<void>;
  /** Create statements running at once; the rest queue into the next batch (default 2). */
  maxInFlight?: number;
  /** Most creates in one statement (default 500). */
  maxBatch?: number;
}

interface Waiting {
  row: CreateRow;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Writes creates, batching those that queue behind running statements. */
export class GroupCommit {
  #sql: Sql;
  #single: (row: CreateRow) => Promise<void>;
  #maxInFlight: number;
  #maxBatch: number;
  #queue: Waiting[] = [];
  #inFlight = 0;

  constructor(options: GroupCommitOptions) {
    this.#sql = options.sql;
    this.#single = options.single;
    this.#maxInFlight = options.maxInFlight ?? 2;
    this.#maxBatch = options.maxBatch ?? 500;
  }

  /** Resolves once `row`'s record and change are committed. */
  write(row: CreateRow): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ row, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.#maxInFlight && this.#queue.length) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inFlight++;
      this.#run(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  async #run(batch: Waiting[]): Promise<void> {
    if (batch.length === 1) return settle(batch[0]!, this.#single(batch[0]!.row));
    try {
      await this.#writeMany(batch.map((w) => w.row));
    } catch (err) {
      if (!refusedByServer(err)) {
        for (const w of batch) w.reject(err);
        return;
      }
      // Nothing of the batch was written: each create alone, with its own outcome.
      await Promise.all(batch.map((w) => settle(w, this.#single(w.row))));
      return;
    }
    for (const w of batch) w.resolve();
  }

  /** One statement: a CTE per entity table present, then every change row in batch order. */
  async #writeMany(rows: CreateRow[]): Promise<void> {
    const entities = [...new Set(rows.map((r) => r.entity))].sort();
    // Entity names come from the fixed list, never from input: safe as identifiers.
    const tables = entities.map((e, i) => `
      , t${i} as (
        insert into ${e} (id, version, data, created_at, updated_at, sync)
        select id, 1, data, at, at, sync from items where entity = '${e}'
      )`).join("");
    const items = rows.map((r, i) => ({
      ord: i,
      entity: r.entity,
      id: r.record.id,
      data: r.record,
      at: r.record.createdAt,
      priority: r.priority,
      sync: r.sync.record,
      change_sync: r.sync.change,
    }));
    await this.#sql.unsafe(
      `with items as (
        select * from jsonb_to_recordset($1::text::jsonb) as x(
          ord int, entity text, id uuid, data jsonb, at timestamptz, priority smallint,
          sync jsonb, change_sync jsonb)
      )${tables}
      insert into changes (entity, record_id, operation, data, changed_at, priority, sync)
      select entity, id, 'create', data, at, priority, change_sync from items order by ord`,
      [JSON.stringify(items)],
      { prepare: true },
    );
  }
}

function settle(w: Waiting, p: Promise<void>): Promise<void> {
  return p.then(w.resolve, w.reject);
}

/**
 * True when PostgreSQL answered the statement with an error of the statement itself (not of
 * the connection or the server's availability): it was rolled back, nothing was written.
 */
function refusedByServer(err: unknown): boolean {
  return typeof (err as { severity?: unknown })?.severity === "string" &&
    !isDatabaseUnavailable(err);
}
