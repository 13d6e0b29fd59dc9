/**
 * A database that answers and then restarts while the gateway is still starting is unreachable,
 * which is retried (CONTRACT §1), not a failed start. Found by the fault suite (seed 6003): the
 * shore exited 1 with "start-up failed: write CONNECTION_CLOSED" when its PostgreSQL was stopped
 * during its start-up, and came back only because the suite restarts a gateway that dies.
 *
 * Deterministic: the test holds the migrations' advisory lock, so the gateway's first migration
 * waits on it after `select 1` has answered; the cluster is then restarted under it.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { createPgCluster } from "../support/pgcluster.ts";
import { type GatewayProcess, spawnLocalGateway } from "../support/process.ts";
import { waitUntil } from "../support/wait.ts";

// db/migrations.ts LOCK_KEY: the same in every bosun process.
const MIGRATION_LOCK = 0x62_6f_73_75;

Deno.test("a database restarted during start-up is waited for, not a failed start", async () => {
  await using pg = await createPgCluster({ databases: ["bosun"] });
  const holder = postgres(pg.url("bosun"), { max: 1, onnotice: () => {} });
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-start-restart-" });
  try {
    await holder`select pg_advisory_lock(${MIGRATION_LOCK})`;
    await using gw: GatewayProcess = spawnLocalGateway({
      databaseUrl: pg.url("bosun"),
      dataDir,
      token: "start-restart-token-0123456789",
      env: { ROLE: "shore", VESSEL_ID: "shore-1" },
    });
    let exited: number | undefined;
    gw.exited().then((code) => exited = code);

    // The gateway's connection waits for the lock the test holds: start-up is mid-migration.
    await waitUntil(
      async () => {
        const [row] = await holder<{ n: number }[]>`
        select count(*)::int as n from pg_locks where locktype = 'advisory' and not granted`;
        return row!.n > 0;
      },
      "the gateway's migration to wait on the advisory lock",
      60_000,
    );

    await pg.restart("immediate");
    await holder.end({ timeout: 1 }).catch(() => {});

    await waitUntil(
      () => exited !== undefined || /"msg":"Started"/.test(gw.stderr()),
      "the gateway to finish starting (or to exit)",
      90_000,
    );
    assert.equal(exited, undefined, `the gateway exited (${exited}):\n${gw.output()}`);
    assert.match(gw.stderr(), /Database lost during start-up, starting again/);
    const port = await gw.port();
    const res = await fetch(`http://127.0.0.1:${port}/health`);
    await res.body?.cancel();
    assert.equal(res.status, 200);
  } finally {
    await holder.end({ timeout: 1 }).catch(() => {});
    await Deno.remove(dataDir, { recursive: true });
  }
});
