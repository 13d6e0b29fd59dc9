import assert from "node:assert/strict";
import postgres from "postgres";
import { createPgCluster } from "./pgcluster.ts";

Deno.test("an owned cluster keeps committed rows across fast and immediate stops", async () => {
  await using cluster = await createPgCluster({ databases: ["bosun"] });
  const sql = postgres(cluster.url("bosun"), { max: 1, onnotice: () => {} });
  try {
    await sql`create table t (n int)`;
    await sql`insert into t values (1)`;
    await cluster.restart("immediate");
    await sql`insert into t values (2)`.catch(() => sql`insert into t values (2)`);
    await cluster.stop("fast");
    assert.equal(cluster.running, false);
    await cluster.start();
    const rows = await sql<{ n: number }[]>`select n from t order by n`;
    assert.deepEqual(rows.map((r) => r.n), [1, 2]);
  } finally {
    await sql.end({ timeout: 1 });
  }
});
