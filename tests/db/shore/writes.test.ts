import assert from "node:assert/strict";
import { Hlc } from "../../../core/hlc.ts";
import { createShoreWrites } from "../../../db/shore/writes.ts";
import {
  applyDownAck,
  claimDownChanges,
  downFigures,
  pendingDownAfter,
  pruneDownAcked,
} from "../../../db/shore/down-outbox.ts";
import { HttpError } from "../../../core/errors.ts";
import { freshDatabase } from "../../support/pg.ts";

const V1 = "ship-1";
const V2 = "ship-2";

const rejects = (p: Promise<unknown>, status: number, code: string) =>
  assert.rejects(p, (e) => e instanceof HttpError && e.status === status && e.code === code);

Deno.test("shore writes for a vessel commit each change in that vessel's down outbox", async (t) => {
  await using db = await freshDatabase();
  const { sql } = db;
  const store = createShoreWrites({ sql, hlc: new Hlc({ origin: "shore" }) });

  await t.step("create answers the record, readable with its vessel", async () => {
    const rec = await store.create(V1, "work_orders", {
      title: "Overhaul pump",
      equipmentId: "pump-1",
      status: "open",
      priority: 3,
    });
    assert.equal(rec.version, 1);
    assert.equal(rec.vesselId, V1);
    assert.equal(rec.createdAt, rec.updatedAt);
    assert.deepEqual(await store.get(V1, "work_orders", rec.id), rec);
    assert.equal(await store.get(V2, "work_orders", rec.id), undefined);
    const [row] = await sql`select operation, data, sync, seq from shore_down_changes
      where record_id = ${rec.id}`;
    assert.equal(row!.operation, "create");
    assert.equal(row!.seq, null, "seq is handed out by the claim, not by the writer");
    const { vesselId: _, ...data } = rec;
    assert.deepEqual(row!.data, data);
    assert.deepEqual(
      [...row!.sync.fields].sort(),
      ["assignedTo", "description", "dueAt", "equipmentId", "priority", "status", "title"],
    );
  });

  await t.step("update and delete follow If-Match as on board", async () => {
    const rec = await store.create(V1, "equipment", { name: "Pump", runningHours: 10 });
    await rejects(
      store.update(V1, "equipment", rec.id, { runningHours: 11 }, 7),
      412,
      "version_mismatch",
    );
    const updated = await store.update(V1, "equipment", rec.id, { runningHours: 11, type: "x" }, 1);
    assert.deepEqual(
      { v: updated.version, h: updated.runningHours, t: updated.type, n: updated.name },
      { v: 2, h: 11, t: "x", n: "Pump" },
    );
    const cleared = await store.update(V1, "equipment", rec.id, { type: null });
    assert.equal("type" in cleared, false, "a field set to null is left out, as on board");
    assert.ok(cleared.updatedAt >= updated.updatedAt);
    await rejects(store.remove(V1, "equipment", rec.id, 1), 412, "version_mismatch");
    await store.remove(V1, "equipment", rec.id, 3);
    assert.equal(await store.get(V1, "equipment", rec.id), undefined);
    await rejects(store.update(V1, "equipment", rec.id, { name: "x" }), 404, "not_found");
    await rejects(store.remove(V1, "equipment", rec.id), 404, "not_found");
    await rejects(store.update(V2, "equipment", rec.id, { name: "x" }), 404, "not_found");
    const ops = await sql`select operation from shore_down_changes where record_id = ${rec.id}
      order by id`;
    assert.deepEqual(ops.map((r) => r.operation), ["create", "update", "update", "delete"]);
  });

  await t.step("a create with an id already used (even deleted) is a 409", async () => {
    const rec = await store.create(V1, "crew", { name: "Ada" });
    await rejects(store.create(V1, "crew", { id: rec.id, name: "Bob" }), 409, "conflict");
    await store.remove(V1, "crew", rec.id);
    await rejects(
      store.create(V1, "crew", { id: rec.id.toUpperCase(), name: "Bob" }),
      409,
      "conflict",
    );
    // Another vessel's records are another namespace.
    const other = await store.create(V2, "crew", { id: rec.id, name: "Cy" });
    assert.equal(other.id, rec.id);
  });

  await t.step("each vessel's down stream has its own gapless seq, alerts first", async () => {
    await store.create(V2, "alerts", { equipmentId: "e", severity: "critical", message: "fire" });
    const first = await claimDownChanges(sql, V1, 3);
    assert.deepEqual(first.map((r) => r.seq), [1, 2, 3]);
    const rest = await claimDownChanges(sql, V1, 100);
    assert.deepEqual(rest.map((r) => r.seq), rest.map((_, i) => i + 4));
    assert.ok(rest.every((r) => r.epoch === first[0]!.epoch && r.vesselId === V1));
    const v2 = await claimDownChanges(sql, V2, 100);
    assert.equal(v2[0]!.entity, "alerts", "an alert overtakes the vessel's backlog");
    assert.deepEqual(v2.map((r) => r.seq), v2.map((_, i) => i + 1));
    assert.notEqual(v2[0]!.epoch, first[0]!.epoch);
    assert.deepEqual(await claimDownChanges(sql, V1, 100), []);
    assert.deepEqual((await downFigures(sql)).map((f) => [f.vesselId, f.backlog]), [
      [V1, first.length + rest.length],
      [V2, v2.length],
    ]);
  });

  await t.step(
    "concurrent writes of one record take increasing clocks in claim order",
    async () => {
      const rec = await store.create(V1, "work_orders", { title: "t", equipmentId: "e" });
      await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => store.update(V1, "work_orders", rec.id, { priority: (i % 5) + 1 }),
        ),
      );
      const rows = await claimDownChanges(sql, V1, 100);
      const clocks = rows.filter((r) => r.data.id === rec.id).map((r) => r.sync.clock);
      assert.equal(clocks.length, 21);
      assert.deepEqual(clocks, [...clocks].sort());
      assert.equal(new Set(clocks).size, clocks.length);
      const versions = rows.filter((r) => r.data.id === rec.id).map((r) => r.data.version);
      assert.deepEqual(versions, versions.map((_, i) => i + 1));
    },
  );
});

Deno.test("a vessel's down ack releases its rows; re-sends start past the ack", async () => {
  await using db = await freshDatabase();
  const { sql } = db;
  const store = createShoreWrites({ sql, hlc: new Hlc({ origin: "shore" }) });
  for (let i = 0; i < 5; i++) await store.create(V1, "crew", { name: `c${i}` });
  await store.create(V2, "crew", { name: "other" });
  const rows = await claimDownChanges(sql, V1, 10);
  const epoch = rows[0]!.epoch;
  assert.deepEqual(await applyDownAck(sql, V1, { epoch: crypto.randomUUID(), seq: 2 }), {
    kind: "ignored",
  });
  assert.deepEqual(await applyDownAck(sql, V1, { epoch, seq: 3 }), {
    kind: "acked",
    released: 3,
    behind: false,
  });
  assert.deepEqual(
    await applyDownAck(sql, V1, { epoch, seq: 1 }),
    { kind: "acked", released: 0, behind: true },
    "an ack below the last one says the vessel went back (a restored database)",
  );
  assert.deepEqual(await applyDownAck(sql, V1, { epoch, seq: 3 }), {
    kind: "acked",
    released: 0,
    behind: false,
  });
  const again = await pendingDownAfter(sql, { vesselId: V1, epoch, afterSeq: 0, limit: 10 });
  assert.deepEqual(again.map((r) => r.seq), [4, 5]);
  const figures = await downFigures(sql);
  assert.deepEqual(figures.map((f) => [f.vesselId, f.backlog]), [[V1, 2], [V2, 1]]);
  assert.deepEqual(
    [figures[0]!.ackedSeq, figures[0]!.publishedSeq, figures[0]!.unacked, figures[0]!.queued],
    [3, 3, 0, 2],
    "the ack moved the acknowledged position and the published watermark",
  );
  assert.notEqual(figures[0]!.lastAckAt, null);
  await sql`update shore_down_changes set acked_at = acked_at - interval '40 days'
    where acked_at is not null`;
  assert.equal(await pruneDownAcked(sql, 30), 3, "only acknowledged rows are pruned");
  // An ack past the stream's end: this database was restored from an older backup.
  const restored = await applyDownAck(sql, V1, { epoch, seq: 9 });
  assert.equal(restored.kind, "new_epoch");
  await store.create(V1, "crew", { name: "after" });
  const next = await claimDownChanges(sql, V1, 10);
  assert.deepEqual(next.map((r) => [r.epoch, r.seq]), [[
    (restored as { epoch: string }).epoch,
    1,
  ]]);
});
