import assert from "node:assert/strict";
import { freshDatabase } from "../../support/pg.ts";
import { startMosquitto } from "../../support/mosquitto.ts";
import { startProxy } from "../../support/proxy.ts";
import { publishAll, rawClient, SimulatedVessel, startShore } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import { openDatabase } from "../../../db/connection.ts";
import { createLogger, silentLogger } from "../../../core/log.ts";

Deno.test("a database outage holds changes in the shore's buffer; after it every change is applied once", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using proxy = startProxy({ target: { port: Number(new URL(db.url).port || 5432) } });
  const viaProxy = new URL(db.url);
  viaProxy.port = String(proxy.port);
  const shoreDb = await openDatabase({
    url: viaProxy.toString(),
    dataDir: "",
    log: silentLogger,
    max: 4,
  });
  const lines: string[] = [];
  const log = createLogger({ level: "warn", write: (line) => lines.push(line) });
  const shore = await startShore(broker.url, shoreDb.sql, { log, writeTimeoutMs: 2_000 });
  const pub = await rawClient(broker.url);
  const applied = async () => {
    const [row] = await db.sql<{ n: number; inbox: number }[]>`
      select coalesce(sum(applied_count), 0)::int8 as n,
        (select count(*) from shore_inbox)::int8 as inbox
      from shore_positions`;
    return { ...row! };
  };
  try {
    const v = new SimulatedVessel("vessel-o");
    await publishAll(pub, Array.from({ length: 50 }, () => v.mixed()));
    await waitUntil(async () => (await applied()).n === 50, "the first 50 are applied");

    proxy.setMode({ kind: "cut" });
    await publishAll(pub, Array.from({ length: 50 }, () => v.mixed()));
    await waitUntil(
      () => lines.some((l) => l.includes("Batch not written, retrying")),
      "a write fails",
    );
    assert.equal((await applied()).n, 50);
    proxy.setMode({ kind: "pass" });
    await waitUntil(async () => (await applied()).n === 100, "every change is applied");
    assert.deepEqual(await applied(), { n: 100, inbox: 100 });
    const [live] = await db.sql<{ n: number }[]>`
      select count(*)::int8 as n from shore_records where deleted_at is null`;
    assert.equal(live!.n, v.records.size);
  } finally {
    await pub.endAsync();
    await shore.close();
    await shoreDb.close();
  }
});
