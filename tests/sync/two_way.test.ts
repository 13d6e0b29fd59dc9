/**
 * Two-way sync end to end (issue 11): a real vessel role (tests/support/vessel.ts) and a real
 * shore ingest with its down publisher (sync/shore/down.ts) on their own databases, through a
 * real Mosquitto. Concurrency is made the way it happens at sea: the broker is stopped, both
 * sides edit, the broker comes back.
 */
import assert from "node:assert/strict";
import { Hlc } from "../../core/hlc.ts";
import { listConflicts } from "../../db/conflicts.ts";
import { createShoreWrites } from "../../db/shore/writes.ts";
import { createDownPublisher } from "../../sync/shore/down.ts";
import { silentLogger } from "../../core/log.ts";
import { startShore } from "../support/fleet.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { freshDatabase } from "../support/pg.ts";
import { startVessel } from "../support/vessel.ts";
import { waitUntil } from "../support/wait.ts";

for (const linkMode of ["frames", "messages"] as const) {
  Deno.test(`two-way sync over MQTT (LINK_MODE=${linkMode})`, async (t) => {
    const dir = await Deno.makeTempDir({ prefix: "bosun-two-way-" });
    await using broker = await startMosquitto({ persistenceDir: dir });
    await using vesselDb = await freshDatabase();
    await using shoreDb = await freshDatabase();
    await using vessel = await startVessel({
      sql: vesselDb.sql,
      brokerUrl: broker.url,
      env: { LINK_MODE: linkMode },
    });
    const shore = await startShore(broker.url, shoreDb.sql);
    const down = createDownPublisher({
      sql: shoreDb.sql,
      session: shore.session,
      log: silentLogger,
      ackTimeoutMs: 1_000,
      linkMode,
      pollMs: 100,
    });
    await down.start();
    const writes = createShoreWrites({ sql: shoreDb.sql, hlc: new Hlc({ origin: "shore" }) });
    const { vesselId } = vessel;
    const onBoard = (id: string) => vessel.records.get("work_orders", id);
    const ashore = (id: string) => writes.get(vesselId, "work_orders", id);
    const conflictsOf = async (sql: typeof vesselDb.sql, id: string) =>
      (await listConflicts(sql, { entity: "work_orders", limit: 100 })).items
        .filter((c) => c.recordId === id);
    const order = () =>
      writes.create(vesselId, "work_orders", {
        title: "Overhaul purifier",
        equipmentId: "eq-1",
        status: "open",
        priority: 3,
      });
    /** Stops the broker (keeping its persistence), runs `edits`, starts it again. */
    const partitioned = async (edits: () => Promise<unknown>) => {
      await broker.stop();
      await waitUntil(
        () => !vessel.engine.session.connected && !shore.session.connected,
        "both sides see the broker gone",
      );
      await edits();
      await broker.restart();
    };

    try {
      await t.step("a record created ashore appears on board once, with no echo", async () => {
        const created = await order();
        await waitUntil(async () => (await onBoard(created.id)) !== undefined, "it is on board");
        const record = await onBoard(created.id);
        assert.equal(record!.title, "Overhaul purifier");
        const [inbox] = await vesselDb.sql<{ n: number }[]>`
          select count(*)::int as n from down_inbox where envelope->'data'->>'id' = ${created.id}`;
        assert.equal(inbox!.n, 1);
        const [echo] = await vesselDb.sql<{ n: number }[]>`
          select count(*)::int as n from changes where data->>'id' = ${created.id}`;
        assert.equal(echo!.n, 0, "applying the shore's change wrote no change going back");
        await waitUntil(async () => {
          const [r] = await shoreDb.sql<{ n: number }[]>`
            select count(*)::int as n from shore_down_changes
            where vessel_id = ${vesselId} and acked_at is null`;
          return r!.n === 0;
        }, "the vessel's down ack releases the shore's down outbox");
      });

      await t.step("an edit on board of a record created ashore reaches shore", async () => {
        const created = await order();
        await waitUntil(async () => (await onBoard(created.id)) !== undefined, "it is on board");
        await vessel.records.update("work_orders", created.id, { status: "in_progress" });
        await waitUntil(
          async () => (await ashore(created.id))?.status === "in_progress",
          "the edit made on board is ashore",
        );
      });

      await t.step("concurrent edits of different fields both survive", async () => {
        const created = await order();
        await waitUntil(async () => (await onBoard(created.id)) !== undefined, "it is on board");
        await partitioned(async () => {
          await writes.update(vesselId, "work_orders", created.id, { title: "Overhaul No. 2" });
          await vessel.records.update("work_orders", created.id, { priority: 1 });
        });
        const both = (r?: Record<string, unknown>) =>
          r?.title === "Overhaul No. 2" && r?.priority === 1;
        await waitUntil(async () => both(await onBoard(created.id)), "both edits on board");
        await waitUntil(async () => both(await ashore(created.id)), "both edits ashore");
        assert.equal((await conflictsOf(vesselDb.sql, created.id)).length, 0);
        assert.equal((await conflictsOf(shoreDb.sql, created.id)).length, 0);
      });

      await t.step("same-field edits converge with one conflict on each side", async () => {
        const created = await order();
        await waitUntil(async () => (await onBoard(created.id)) !== undefined, "it is on board");
        await partitioned(async () => {
          await writes.update(vesselId, "work_orders", created.id, { title: "Shore's title" });
          await vessel.records.update("work_orders", created.id, { title: "Ship's title" });
        });
        await waitUntil(async () => {
          const [a, b] = [await onBoard(created.id), await ashore(created.id)];
          return a?.title === b?.title && a?.version === b?.version;
        }, "the title and version agree on board and ashore");
        await waitUntil(
          async () =>
            (await conflictsOf(vesselDb.sql, created.id)).length === 1 &&
            (await conflictsOf(shoreDb.sql, created.id)).length === 1,
          "one conflict recorded on each side",
        );
        const [mine] = await conflictsOf(vesselDb.sql, created.id);
        const [theirs] = await conflictsOf(shoreDb.sql, created.id);
        assert.deepEqual(mine!.fields, ["title"]);
        assert.deepEqual(mine!.vessel, { title: "Ship's title" });
        assert.deepEqual(mine!.shore, { title: "Shore's title" });
        assert.deepEqual(mine!.resolved, { title: (await onBoard(created.id))!.title });
        assert.deepEqual(
          { ...theirs!, id: "", at: "" },
          { ...mine!, id: "", at: "" },
          "both sides recorded the same conflict",
        );
        await waitUntil(async () => {
          const [r] = await vesselDb.sql<{ n: number }[]>`
            select count(*)::int as n from conflicts where published_at is null`;
          return r!.n === 0;
        }, "the vessel publishes its conflict on <root>/conflicts");
      });

      await t.step("a delete ashore wins over a concurrent edit on board", async () => {
        const created = await order();
        await waitUntil(async () => (await onBoard(created.id)) !== undefined, "it is on board");
        await partitioned(async () => {
          await writes.remove(vesselId, "work_orders", created.id);
          await vessel.records.update("work_orders", created.id, { priority: 5 });
        });
        await waitUntil(
          async () => (await onBoard(created.id)) === undefined,
          "the record is deleted on board",
        );
        await waitUntil(
          async () =>
            (await conflictsOf(vesselDb.sql, created.id)).length === 1 &&
            (await conflictsOf(shoreDb.sql, created.id)).length === 1,
          "one delete/update conflict recorded on each side",
        );
        assert.equal(await ashore(created.id), undefined, "still deleted ashore");
        const [mine] = await conflictsOf(vesselDb.sql, created.id);
        assert.deepEqual(mine!.vessel, { priority: 5 });
        assert.equal(mine!.shore, null);
        assert.equal(mine!.resolved, null);
      });
    } finally {
      await down.stop();
      await shore.close();
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  });
}
