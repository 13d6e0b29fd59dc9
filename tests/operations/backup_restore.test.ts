/**
 * The README's "Backup and restore", done as an operator would: stop the vessel, copy its
 * DATA_DIR (the embedded database), go on working, lose the directory, restore the copy. The
 * restored vessel finds the shore's retained ack ahead of its own last seq, starts a new epoch,
 * and shore loses nothing: what it applied before stays, and what the vessel writes after the
 * restore is applied too, never taken for a duplicate of the old epoch's seqs.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { startShore } from "../support/fleet.ts";
import { spawnGateway } from "../support/process.ts";
import { waitUntil } from "../support/wait.ts";

const TOKEN = "backup-restore-token-0123456789";

Deno.test({
  name: "a vessel restored from a DATA_DIR backup starts a new epoch and shore loses nothing",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    await using broker = await startMosquitto();
    await using shoreDb = await freshDatabase();
    const shore = await startShore(broker.url, shoreDb.sql);
    const dataDir = await Deno.makeTempDir({ prefix: "bosun-backup-data-" });
    const backupDir = await Deno.makeTempDir({ prefix: "bosun-backup-copy-" });
    const vesselId = `v-${crypto.randomUUID().slice(0, 8)}`;
    const env = {
      VESSEL_ID: vesselId,
      DATA_DIR: dataDir,
      PORT: "0",
      HOST: "127.0.0.1",
      MQTT_BROKER_URL: broker.url,
      API_TOKENS: TOKEN,
      ACK_TIMEOUT_S: "2",
    };
    const auth = { authorization: `Bearer ${TOKEN}` };
    // Starts the vessel, writes `names`, waits until shore acknowledges up to `ackedSeq`, stops.
    const session = async (names: string[], ackedSeq: number) => {
      await using gw = spawnGateway({ env });
      // An embedded start: PGlite's WebAssembly is slow to warm on a loaded machine.
      const base = `http://127.0.0.1:${await gw.port(180_000)}`;
      for (const name of names) {
        const res = await fetch(`${base}/api/crew`, {
          method: "POST",
          headers: { ...auth, "content-type": "application/json" },
          body: JSON.stringify({ name }),
        });
        assert.equal(res.status, 201, await res.text());
      }
      let health: Record<string, unknown> = {};
      await waitUntil(
        async () => {
          health = await (await fetch(`${base}/health`)).json();
          return health.lastAckedSeq === ackedSeq && health.queuedMessages === 0;
        },
        `shore acknowledges seq ${ackedSeq} (health: ${JSON.stringify(health)})`,
        180_000,
      );
      assert.equal(await gw.stop("SIGTERM"), 0);
      return health.epoch as string;
    };
    const shoreNames = async () =>
      (await shoreDb.sql<{ name: string }[]>`
        select data->>'name' as name from shore_records where vessel_id = ${vesselId}
        order by 1`).map((r) => r.name);
    try {
      const first = await session(["a1", "a2", "a3"], 3);
      await new Deno.Command("cp", { args: ["-a", `${dataDir}/.`, backupDir] }).output();
      assert.equal(await session(["b1", "b2"], 5), first, "same database, same epoch");

      // The disk is lost; the backup taken after "a3" is restored.
      await Deno.remove(dataDir, { recursive: true });
      await Deno.mkdir(dataDir, { mode: 0o700 });
      await new Deno.Command("cp", { args: ["-a", `${backupDir}/.`, dataDir] }).output();

      // Shore's retained ack (seq 5) is past the restored last seq (3): a new epoch, whose
      // first changes are seqs 1 and 2 again, and must be applied, not dropped as duplicates.
      const restored = await session(["c1", "c2"], 2);
      assert.notEqual(restored, first, "the restored vessel started a new epoch");
      await waitUntil(
        async () => (await shoreNames()).length === 7,
        "shore holds all seven records",
      );
      assert.deepEqual(await shoreNames(), ["a1", "a2", "a3", "b1", "b2", "c1", "c2"]);
      const epochs = await shoreDb.sql<{ epoch: string; last_seq: number }[]>`
        select epoch::text, last_seq::int from shore_positions where vessel_id = ${vesselId}
        order by last_seq desc`;
      assert.deepEqual(
        epochs.map((e) => [e.epoch, e.last_seq]),
        [[first, 5], [restored, 2]],
      );
    } finally {
      await shore.close();
      await Deno.remove(dataDir, { recursive: true }).catch(() => {});
      await Deno.remove(backupDir, { recursive: true }).catch(() => {});
    }
  },
});
