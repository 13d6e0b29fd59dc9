import assert from "node:assert/strict";
import { freshDatabase } from "../../support/pg.ts";
import { startMosquitto } from "../../support/mosquitto.ts";
import { freePort } from "../../support/ports.ts";
import { ack, observe, startVessel } from "../../support/vessel.ts";
import { waitUntil } from "../../support/wait.ts";
import { countPending, vesselState } from "../../../db/vessel/outbox.ts";
import { OutboxFullError } from "../../../core/errors.ts";
import type { EngineEvent } from "../../../sync/vessel/engine.ts";
import mqtt from "mqtt";

Deno.test("shore's ack releases rows up to its seq and a bad ack is dropped", async (t) => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url });
  const events: EngineEvent[] = [];
  vessel.engine.onEvent((e) => events.push(e));
  for (let i = 0; i < 5; i++) await vessel.records.create("equipment", { name: `e${i}` });
  await waitUntil(
    async () => (await vessel.report()).unackedMessages === 5,
    "the vessel reports 5 changes unacknowledged",
  );
  assert.equal(vessel.gate.pending, 5);
  const { epoch } = await vesselState(db.sql);

  await t.step("a malformed ack changes nothing", async () => {
    const c = await mqtt.connectAsync(broker.url);
    await c.publishAsync(`vessel/${vessel.vesselId}/sync/ack`, '{"seq": "three"}', { qos: 1 });
    await c.endAsync();
    await waitUntil(
      () => events.some((e) => e.type === "error" && e.where === "ack"),
      "the engine reports the malformed ack",
    );
    assert.equal((await vessel.report()).unackedMessages, 5);
  });

  await t.step("an ack of another epoch is ignored", async () => {
    await ack(broker.url, vessel.vesselId, crypto.randomUUID(), 5);
    await ack(broker.url, vessel.vesselId, epoch, 3);
    await waitUntil(() => events.some((e) => e.type === "acked"), "the engine applies an ack");
    const acked = events.filter((e) => e.type === "acked");
    assert.deepEqual(acked, [{ type: "acked", epoch, seq: 3, released: 3 }]);
  });

  await t.step("acked rows are released from the bound and reported", async () => {
    const report = await vessel.report();
    assert.equal(report.unackedMessages, 2);
    assert.equal(report.lastAckedSeq, 3);
    assert.equal(report.lastPublishedSeq, 5);
    assert.equal(vessel.gate.pending, 2);
    const [row] = await db.sql`select acked_seq::int as n from vessel_state`;
    assert.equal(row!.n, 3);
  });
});

Deno.test("an ack ahead of our last seq (a restored database) starts a new epoch", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url });
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
  for (let i = 0; i < 3; i++) await vessel.records.create("crew", { name: `c${i}` });
  await shore.until(
    (r) => new Set(r.map((m) => m.envelope.seq)).size === 3,
    "seqs 1-3 at the observer",
  );
  const old = await vesselState(db.sql);
  assert.equal(old.lastSeq, 3);

  // Shore applied seq 40 of this epoch: this database is an older backup.
  await ack(broker.url, vessel.vesselId, old.epoch, 40);
  await waitUntil(
    async () => (await vesselState(db.sql)).epoch !== old.epoch,
    "the vessel starts a new epoch",
  );
  const now = await vesselState(db.sql);
  assert.equal(now.lastSeq, 0);
  assert.equal(await countPending(db.sql), 0);

  await vessel.records.create("crew", { name: "after restore" });
  await shore.until(
    (r) => r.some((m) => m.envelope.epoch === now.epoch),
    "a change of the new epoch at the observer",
  );
  const fresh = shore.received.filter((m) => m.envelope.epoch === now.epoch);
  assert.deepEqual(fresh.map((m) => [m.envelope.seq, m.envelope.data.name]), [[
    1,
    "after restore",
  ]]);
});

Deno.test("at OUTBOX_MAX_PENDING writes get 503 and nothing accepted is lost", async () => {
  await using db = await freshDatabase();
  const port = freePort();
  await using vessel = await startVessel({
    sql: db.sql,
    brokerUrl: `mqtt://127.0.0.1:${port}`,
    env: { OUTBOX_MAX_PENDING: "5" },
  });
  for (let i = 0; i < 5; i++) await vessel.records.create("equipment", { name: `e${i}` });
  await assert.rejects(
    vessel.records.create("equipment", { name: "one too many" }),
    (err) => err instanceof OutboxFullError && err.status === 503 && "Retry-After" in err.headers,
  );
  const [count] = await db.sql`select count(*)::int as n from changes`;
  assert.equal(count!.n, 5);

  await using broker = await startMosquitto({ port });
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
  await shore.until(
    (r) => new Set(r.map((m) => m.envelope.seq)).size === 5,
    "five distinct seqs at the observer",
  );
  assert.deepEqual(
    [...new Set(shore.received.map((m) => m.envelope.data.name))].sort(),
    ["e0", "e1", "e2", "e3", "e4"],
  );
  const { epoch } = await vesselState(db.sql);
  await ack(broker.url, vessel.vesselId, epoch, 5);
  await waitUntil(() => vessel.gate.pending === 0, "the outbox bound counts nothing pending");
  await vessel.records.create("equipment", { name: "accepted again" });
});

Deno.test("unacknowledged changes are re-sent after ACK_TIMEOUT_S with the same seq and messageId", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url }); // 1 s
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
  await vessel.records.create("crew", { name: "acked" });
  await shore.until((r) => r.length >= 1, "the first change at the observer");
  // Shore is heard on this connection (it acked), then falls silent.
  await ack(broker.url, vessel.vesselId, shore.received[0]!.envelope.epoch, 1);
  await waitUntil(async () => (await vessel.report()).lastAckedSeq === 1, "seq 1 acked");
  await vessel.records.create("crew", { name: "silent shore" });
  const changes = (r: typeof shore.received) => r.filter((m) => !m.topic.endsWith("/ack"));
  await shore.until((r) => changes(r).length >= 3, "seq 2 twice at the observer", 10_000);
  const [, a, b] = changes(shore.received);
  assert.equal(a!.envelope.seq, 2);
  assert.deepEqual(b!.envelope, a!.envelope);
});

Deno.test("a shore not heard since the connection came up is not re-sent to at ACK_TIMEOUT_S: its broker session queues, and at its return it asks", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url }); // 1 s
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
  await vessel.records.create("crew", { name: "nobody acks" });
  await shore.until((r) => r.length >= 1, "the change at the observer");
  // Five times ACK_TIMEOUT_S: the old clock re-sent at 1, 2 and 4 s.
  await new Promise((r) => setTimeout(r, 5_000));
  assert.equal(shore.received.length, 1, "no re-send to a shore that never answered");
});

Deno.test("ACK_MODE=broker releases rows on PUBACK", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({
    sql: db.sql,
    brokerUrl: broker.url,
    env: { ACK_MODE: "broker" },
  });
  await vessel.records.create("crew", { name: "a" });
  await vessel.records.create("alerts", { equipmentId: "e", severity: "info", message: "b" });
  await waitUntil(() => vessel.gate.pending === 0, "the outbox bound counts nothing pending");
  const report = await vessel.report();
  assert.equal(report.lastAckedSeq, 2);
  assert.equal(report.unackedMessages, 0);
});
