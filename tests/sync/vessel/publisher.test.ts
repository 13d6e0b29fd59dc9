import assert from "node:assert/strict";
import { freshDatabase } from "../../support/pg.ts";
import { startMosquitto } from "../../support/mosquitto.ts";
import { freePort } from "../../support/ports.ts";
import { ack, observe, startVessel } from "../../support/vessel.ts";
import { fillChangeLog } from "../../../bench/common.ts";
import { waitUntil } from "../../support/wait.ts";
import { startProxy } from "../../support/proxy.ts";
import { createRecordStore } from "../../../db/vessel/records.ts";
import { OutboxGate } from "../../../core/outbox-gate.ts";
import { claimChanges } from "../../../db/vessel/outbox.ts";
import type { Sql } from "../../../db/connection.ts";

const MESSAGES = { LINK_MODE: "messages" };

const uniqueSeqs = (r: { envelope: { seq: number } }[]) =>
  new Set(r.map((m) => m.envelope.seq)).size;

Deno.test("seq is gapless and per-record order holds under 20 concurrent writers with transactions held open", async () => {
  await using db = await freshDatabase({ max: 24 });
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url, window: 32 });
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);

  // Each writer creates a record then updates it a few times; every other transaction
  // sleeps before committing, so change ids commit out of order.
  const perWriter = 6;
  const writers = Array.from({ length: 20 }, (_, w) =>
    (async () => {
      const id = crypto.randomUUID();
      for (let i = 0; i < perWriter; i++) {
        await db.sql.begin(async (tx) => {
          const store = createRecordStore({ sql: tx as unknown as Sql, gate: vessel.gate });
          if (i === 0) await store.create("work_orders", { id, title: `w${w}`, equipmentId: "e" });
          else await store.update("work_orders", id, { priority: (i % 5) + 1 });
          if ((w + i) % 2 === 0) await tx`select pg_sleep(${0.01 * ((w % 5) + 1)})`;
        });
        vessel.gate.added(0); // wakes the publisher once the commit is visible
      }
      return id;
    })());
  await Promise.all(writers);
  const total = 20 * perWriter;
  await shore.until((r) => uniqueSeqs(r) === total, `all ${total} seqs at the observer`);

  const seqs = [...new Set(shore.received.map((m) => m.envelope.seq))].sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: total }, (_, i) => i + 1));
  const [db1] = await db.sql`select count(*)::int as n, min(seq)::int as lo, max(seq)::int as hi,
    count(distinct seq)::int as d from changes`;
  assert.deepEqual({ ...db1 }, { n: total, lo: 1, hi: total, d: total });

  // Per record: versions in seq order are 1, 2, ... (commit order of that record).
  const byRecord = new Map<string, { seq: number; version: number }[]>();
  for (const m of shore.received) {
    const list = byRecord.get(m.envelope.data.id as string) ?? [];
    list.push({ seq: m.envelope.seq, version: m.envelope.data.version as number });
    byRecord.set(m.envelope.data.id as string, list);
  }
  assert.equal(byRecord.size, 20);
  for (const list of byRecord.values()) {
    const unique = [...new Map(list.map((x) => [x.seq, x])).values()].sort((a, b) => a.seq - b.seq);
    assert.deepEqual(unique.map((x) => x.version), [1, 2, 3, 4, 5, 6]);
  }
});

Deno.test("alerts arrive at QoS 2 and other entities at QoS 1 (LINK_MODE=messages)", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url, env: MESSAGES });
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
  await vessel.records.create("alerts", { equipmentId: "e", severity: "critical", message: "m" });
  await vessel.records.create("equipment", { name: "pump" });
  await vessel.records.create("crew", { name: "ann" });
  await shore.until((r) => uniqueSeqs(r) === 3, "3 distinct seqs at the observer");
  const qos = Object.fromEntries(shore.received.map((m) => [m.envelope.entity, m.qos]));
  assert.deepEqual(qos, { alerts: 2, equipment: 1, crew: 1 });
  for (const m of shore.received) {
    assert.equal(m.topic, `vessel/${vessel.vesselId}/sync/${m.envelope.entity}`);
    assert.equal(m.envelope.type, "data_change");
  }
});

Deno.test("writes are accepted with the broker down and drained, alerts first, when it starts", async () => {
  await using db = await freshDatabase();
  const port = freePort();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: `mqtt://127.0.0.1:${port}` });
  for (let i = 0; i < 20; i++) await vessel.records.create("equipment", { name: `e${i}` });
  await vessel.records.create("alerts", { equipmentId: "e", severity: "warning", message: "m" });
  const health = await vessel.report();
  assert.equal(health.status, "disconnected");
  assert.equal(health.queuedMessages, 21);

  await using broker = await startMosquitto({ port });
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
  await shore.until((r) => uniqueSeqs(r) === 21, "21 distinct seqs at the observer");
  // The alert was committed last but claimed first: it overtakes the backlog.
  const alert = shore.received.find((m) => m.envelope.entity === "alerts")!;
  assert.equal(alert.envelope.seq, 1);
  await waitUntil(
    async () => (await vessel.report()).queuedMessages === 0,
    "the vessel reports nothing queued",
  );
  assert.equal((await vessel.report()).status, "connected");
});

Deno.test("a broker replaced without persistence gets every unacknowledged change again, same seq and messageId", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url });
  const filter = `vessel/${vessel.vesselId}/sync/+`;
  const before = new Map<number, string>();
  {
    await using shore = await observe(broker.url, filter);
    for (let i = 0; i < 10; i++) await vessel.records.create("crew", { name: `c${i}` });
    await shore.until((r) => uniqueSeqs(r) === 10, "10 distinct seqs at the observer");
    for (const m of shore.received) before.set(m.envelope.seq, m.envelope.messageId);
  }
  await broker.kill();
  await broker.restart();
  await using shore = await observe(broker.url, filter);
  await shore.until((r) => uniqueSeqs(r) === 10, "10 distinct seqs at the observer");
  const after = new Map(shore.received.map((m) => [m.envelope.seq, m.envelope.messageId]));
  assert.deepEqual([...after].sort(), [...before].sort());
});

Deno.test("after a crash, claimed but unpublished rows are published first on restart", async () => {
  await using db = await freshDatabase();
  const gate = new OutboxGate(1_000);
  const store = createRecordStore({ sql: db.sql, gate });
  for (let i = 0; i < 3; i++) await store.create("crew", { name: `old${i}` });
  // A process claimed these (seq 1..3) and died before publishing them.
  const claimed = await claimChanges(db.sql, 10, "v-crashed");
  assert.deepEqual(claimed.map((r) => r.seq), [1, 2, 3]);
  await store.create("alerts", { equipmentId: "e", severity: "info", message: "new" });

  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url, window: 1 });
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
  await shore.until((r) => uniqueSeqs(r) === 4, "4 distinct seqs at the observer");
  const order = [...new Set(shore.received.map((m) => m.envelope.seq))];
  assert.deepEqual(order, [1, 2, 3, 4]);
  assert.equal(shore.received.find((m) => m.envelope.seq === 4)!.envelope.entity, "alerts");
});

Deno.test("a claimed row cleared from the buffer by a re-send pass is still sent (the 20-vessel stall)", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using link = startProxy({ target: { port: broker.port } });
  // No shore: nothing is acked, so what was sent is re-sent after ACK_TIMEOUT_S (1 s), doubling.
  // A live row lingers (LINK_LINGER_MS, 10 s here) only while a frame is in flight: with the
  // link black-holed, a frame stays in flight and the rows behind it wait in the buffer, across
  // a re-send pass that clears the buffer and re-sends only what was sent. The old code (pass
  // ended at its re-send range) dropped the waiting rows and never sent them: seen here as seq 2
  // never arriving (it waited behind seq 1's frame), with the PUBACKs of seq 1 in.
  await using vessel = await startVessel({
    sql: db.sql,
    brokerUrl: link.url(),
    env: { LINK_LINGER_MS: "10000" },
  });
  await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/frames`);
  await vessel.records.create("crew", { name: "first" });
  await shore.until((r) => r.some((m) => m.envelope.seq === 1), "seq 1 at the observer");
  link.setMode({ kind: "blackhole" });
  await vessel.records.create("crew", { name: "second" }); // leaves at once, held by the link
  await vessel.records.create("crew", { name: "third" }); // waits for seq 2's PUBACK
  // Past the re-send of seqs 1-2 (1-2 s after they went) and well inside seq 3's linger.
  await new Promise((r) => setTimeout(r, 4_000));
  link.setMode({ kind: "pass" });
  await shore.until((r) => r.some((m) => m.envelope.seq === 2), "seq 2 at the observer", 20_000);
  await shore.until((r) => r.some((m) => m.envelope.seq === 3), "seq 3 at the observer", 20_000);
});

Deno.test("a change the broker refuses is counted and retried later, and never blocks the changes behind it (LINK_MODE=messages)", async () => {
  await using db = await freshDatabase();
  const dir = await Deno.makeTempDir({ prefix: "bosun-acl-" });
  await Deno.chmod(dir, 0o755); // Mosquitto started as root reads it as its own user
  await Deno.writeTextFile(`${dir}/acl`, "topic deny vessel/+/sync/crew\ntopic readwrite #\n");
  try {
    await using broker = await startMosquitto({ extraConfig: `acl_file ${dir}/acl` });
    // Per-entity topics are what the ACL can refuse one change on.
    await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url, env: MESSAGES });
    await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/+`);
    await vessel.records.create("crew", { name: "refused" });
    await vessel.records.create("equipment", { name: "behind it" });
    await shore.until(
      (r) => r.some((m) => m.envelope.entity === "equipment"),
      "the equipment change at the observer",
    );
    assert.equal(shore.received.find((m) => m.envelope.entity === "equipment")!.envelope.seq, 2);
    const failures = async () => (await vessel.metrics.publishFailures.get()).values[0]?.value ?? 0;
    // Tried, refused, and tried again by the re-send pass (ACK_TIMEOUT_S=1 here).
    await waitUntil(async () => await failures() >= 2, "two publish failures are counted");
    // Never PUBACKed, so the published watermark stays below it (it is re-sent after a restart).
    const [row] = await db.sql`select seq::int from changes where entity = 'crew'`;
    assert.equal(row!.seq, 1);
    assert.equal((await vessel.report()).lastPublishedSeq, 0);
    assert.equal(shore.received.some((m) => m.envelope.entity === "crew"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the backlog waits in the vessel's database past 16,000 claimed ahead of shore's ack, and goes on as the ack moves", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({
    sql: db.sql,
    brokerUrl: broker.url,
    env: { OUTBOX_MAX_PENDING: "100000" },
  });
  await fillChangeLog(db.sql, 20_000);
  vessel.gate.added(20_000); // wakes the publisher
  const state = async () =>
    (await db.sql<{ epoch: string; last_seq: number }[]>`
    select epoch::text, last_seq from vessel_state`)[0]!;
  // Claims come in batches and the last sliver waits for an ack: they stop within the window.
  await waitUntil(async () => (await state()).last_seq >= 15_000, "15,000 claimed");
  await new Promise((r) => setTimeout(r, 1_500));
  const { epoch, last_seq } = await state();
  await new Promise((r) => setTimeout(r, 1_500)); // nothing acked: the claims stand
  assert.equal((await state()).last_seq, last_seq);
  assert.ok(last_seq <= 16_000, `${last_seq} claimed, past the window`);
  await ack(broker.url, vessel.vesselId, epoch, 10_000);
  await waitUntil(async () => (await state()).last_seq === 20_000, "the rest claimed");
  await ack(broker.url, vessel.vesselId, epoch, 20_000);
  await waitUntil(
    async () => (await vessel.report()).queuedMessages === 0,
    "the vessel reports nothing queued",
  );
});
