import assert from "node:assert/strict";
import { parseConfig } from "../../../config.ts";
import { createMetrics } from "../../../core/metrics.ts";
import { silentLogger } from "../../../core/log.ts";
import { Hlc } from "../../../core/hlc.ts";
import { createShoreRole } from "../../../roles/shore.ts";
import { createShoreWrites } from "../../../db/shore/writes.ts";
import { applyDownAck, claimDownChanges } from "../../../db/shore/down-outbox.ts";
import { freshDatabase } from "../../support/pg.ts";
import { waitUntil } from "../../support/wait.ts";

Deno.test("a started shore role prunes acknowledged down changes past CATCHUP_RETENTION_DAYS, and only those", async () => {
  await using db = await freshDatabase();
  const { sql } = db;
  const writes = createShoreWrites({ sql, hlc: new Hlc({ origin: "shore" }) });
  for (let i = 0; i < 4; i++) await writes.create("ship-1", "crew", { name: `c${i}` });
  const [first] = await claimDownChanges(sql, "ship-1", 10);
  await applyDownAck(sql, "ship-1", { epoch: first!.epoch, seq: 3 });
  // Seqs 1-2 were acknowledged 40 days ago, seq 3 now; seq 4 never.
  await sql`update shore_down_changes set acked_at = now() - interval '40 days'
    where vessel_id = 'ship-1' and seq <= 2`;

  const config = parseConfig({
    ROLE: "shore",
    VESSEL_ID: "shore-a",
    LOCAL_MODE: "false",
    DATABASE_URL: "postgres://unused",
    CATCHUP_RETENTION_DAYS: "30",
  });
  const role = createShoreRole({ config, sql, log: silentLogger, metrics: createMetrics() });
  await role.start();
  try {
    const left = async () =>
      (await sql<{ seq: number }[]>`select seq from shore_down_changes order by seq`)
        .map((r) => r.seq);
    await waitUntil(async () => (await left()).length === 2, "the two old rows are pruned");
    assert.deepEqual(await left(), [3, 4]);
  } finally {
    await role.close();
  }
});
