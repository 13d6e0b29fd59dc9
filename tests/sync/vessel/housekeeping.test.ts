import assert from "node:assert/strict";
import { silentLogger } from "../../../core/log.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import { createRecordStore } from "../../../db/vessel/records.ts";
import { applyAck, claimChanges, vesselState } from "../../../db/vessel/outbox.ts";
import { startHousekeeping } from "../../../sync/vessel/housekeeping.ts";
import { freshDatabase } from "../../support/pg.ts";
import { waitUntil } from "../../support/wait.ts";

Deno.test("vessel housekeeping prunes acknowledged changes and applied down inbox rows past retention, and only those", async () => {
  await using db = await freshDatabase();
  const { sql } = db;
  const gate = new OutboxGate(1_000);
  const store = createRecordStore({ sql, gate });
  for (let i = 0; i < 3; i++) await store.create("crew", { name: `c${i}` });
  // Change 1 acknowledged 40 days ago, change 2 today, change 3 never.
  const { epoch: ours } = await vesselState(sql);
  await claimChanges(sql, 10, "vessel-1");
  await applyAck(sql, { epoch: ours, seq: 1 });
  await sql`update vessel_acks set at = now() - interval '40 days',
    minute = minute - interval '40 days'`;
  await applyAck(sql, { epoch: ours, seq: 2 });
  // The shore's stream: seq 1 applied 40 days ago, seq 2 today, seq 3 waiting.
  const epoch = crypto.randomUUID();
  const rows: [number, string][] = [[1, "now() - interval '40 days'"], [2, "now()"], [3, "null"]];
  for (const [seq, applied] of rows) {
    await sql.unsafe(
      `insert into down_inbox (epoch, seq, message_id, entity, operation, envelope, applied_at)
       values ($1, $2, gen_random_uuid(), 'crew', 'create', '{}', ${applied})`,
      [epoch, seq],
    );
  }
  const stop = startHousekeeping({ sql, gate, log: silentLogger, retentionDays: 30, pruneMs: 50 });
  try {
    const seqs = async (table: "changes" | "down_inbox") =>
      (await sql<{ n: number }[]>`select ${sql(table === "changes" ? "id" : "seq")}::int as n
        from ${sql(table)} order by 1`).map((r) => r.n);
    await waitUntil(
      async () => (await seqs("changes")).length === 2 && (await seqs("down_inbox")).length === 2,
      "the old acknowledged change and the old applied down row are pruned",
    );
    assert.deepEqual(await seqs("changes"), [2, 3]);
    assert.deepEqual(await seqs("down_inbox"), [2, 3]);
  } finally {
    stop();
  }
});
