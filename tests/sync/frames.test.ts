/**
 * LINK_MODE=frames end to end, against real Mosquitto and PostgreSQL: vessel → frames → shore,
 * frame boundaries, re-cut re-sends, refused frames, mixed modes across a restart, catch-up
 * in frames, no re-send after an outage, and a watermark that an ack raises.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { startProxy } from "../support/proxy.ts";
import { ack, observe, startVessel, type TestVessel } from "../support/vessel.ts";
import { SimulatedVessel, startShore, valueOf } from "../support/fleet.ts";
import { startShoreRig } from "../support/shore-rig.ts";
import { waitUntil } from "../support/wait.ts";
import { createRecordStore } from "../../db/vessel/records.ts";
import { OutboxGate } from "../../core/outbox-gate.ts";
import { claimChanges, vesselState } from "../../db/vessel/outbox.ts";
import { decodeFrame, encodeFrame, FRAME_CONTENT_TYPE, FRAME_MAX_BYTES } from "../../sync/frame.ts";
import { topicsOf } from "../../sync/protocol.ts";
import type { Envelope } from "../../sync/protocol.ts";

const acked = (vessel: TestVessel, n: number) =>
  waitUntil(
    async () => (await vessel.report()).lastAckedSeq === n,
    `the vessel's lastAckedSeq reaching ${n}`,
  );

/** Text that deflate cannot shrink much: 10,000 characters, different per record. */
function noise(seed: number): string {
  let x = seed * 2654435761 >>> 0;
  let s = "";
  for (let i = 0; i < 10_000; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += String.fromCharCode(0x21 + (x >>> 16) % 90);
  }
  return s;
}

Deno.test("frames carry a vessel's changes to shore exactly once, cut at 256 KiB", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  await using broker = await startMosquitto();
  const shore = await startShore(broker.url, shoreDb.sql);
  try {
    // No re-send of quarter-MiB frames while a loaded machine applies them.
    await using vessel = await startVessel({
      sql: vesselDb.sql,
      brokerUrl: broker.url,
      env: { ACK_TIMEOUT_S: "30" },
    });
    await using wire = await observe(broker.url, `vessel/${vessel.vesselId}/sync/#`);
    const sizes: number[] = [];
    wire.client.on("message", (topic, payload) => {
      if (topic.endsWith("/frames")) sizes.push(payload.byteLength);
    });
    // One change alone first, then a backlog of ~7.5 KB changes: far past one frame.
    await vessel.records.create("crew", { name: "first" });
    await acked(vessel, 1);
    const n = 120;
    await Promise.all(Array.from({ length: n }, (_, i) =>
      vessel.records.create("work_orders", {
        title: `wo ${i}`,
        equipmentId: "pump-1",
        description: noise(i),
      })));
    await acked(vessel, n + 1);

    const topics = topicsOf(vessel.vesselId);
    const others = wire.received.filter((r) =>
      ![topics.frames, topics.status, topics.ack].includes(r.topic)
    );
    assert.deepEqual(others, [], "no per-entity messages in frames mode");
    assert.ok(sizes.length >= 4, `${sizes.length} frames for ${n} large changes`);
    assert.ok(sizes.every((s) => s <= FRAME_MAX_BYTES), `frame sizes ${sizes}`);
    assert.equal(await valueOf(shore.metrics.shore.applied), n + 1);
    const [row] = await shoreDb.sql`select count(*)::int as n from shore_records`;
    assert.equal(row!.n, n + 1);
    const health = await vessel.report();
    assert.deepEqual(health.topics, [topics.frames, topics.status]);
    assert.ok(await valueOf(vessel.metrics.linkBytes, { direction: "sent" }) > 0);
    assert.ok(await valueOf(shore.metrics.linkBytes, { direction: "received" }) > 0);
  } finally {
    await shore.close();
  }
});

Deno.test("a shore applies frames cut differently on re-send once per seq, and refuses bad frames whole", async (t) => {
  await using rig = await startShoreRig();
  const sim = new SimulatedVessel("mv-frames");
  const changes = Array.from({ length: 10 }, () => sim.mixed());
  const topic = topicsOf(sim.vesselId).frames;
  const send = (envelopes: Envelope[], contentType?: string) =>
    rig.pub.publishAsync(topic, Buffer.from(encodeFrame(envelopes)), {
      qos: 1,
      properties: contentType ? { contentType } : undefined,
    });
  const applied = () => valueOf(rig.shore.metrics.shore.applied);
  const malformed = (reason: string) => valueOf(rig.shore.metrics.shore.malformed, { reason });

  await t.step("frames 1–5, 3–8 and 1–10 apply ten changes", async () => {
    await send(changes.slice(0, 5), FRAME_CONTENT_TYPE);
    await send(changes.slice(2, 8)); // no content type: the header alone (MQTT 3.1.1)
    await send(changes, FRAME_CONTENT_TYPE);
    await waitUntil(async () => await applied() === 10, "ten changes applied");
    const [pos] = await rig.db.sql`select last_seq::int from shore_positions
      where vessel_id = ${sim.vesselId}`;
    assert.equal(pos!.last_seq, 10);
    const [inbox] = await rig.db.sql`select count(*)::int as n from shore_inbox
      where vessel_id = ${sim.vesselId}`;
    assert.equal(inbox!.n, 10);
  });

  const more = Array.from({ length: 3 }, () => sim.mixed());
  await t.step("an unknown encoding version is counted and named, not applied", async () => {
    const v2 = encodeFrame(more);
    v2[2] = 2;
    await rig.pub.publishAsync(topic, Buffer.from(v2), { qos: 1 });
    await send(more, "application/vnd.bosun.frame;v=2");
    await waitUntil(async () => await malformed("unknown_encoding") === 2, "two unknown counted");
  });

  await t.step("a truncated frame and a frame with one bad record are refused whole", async () => {
    const whole = encodeFrame(more);
    await rig.pub.publishAsync(topic, Buffer.from(whole.subarray(0, whole.length - 4)), {
      qos: 1,
    });
    const bad = more.map((e, i) => i === 1 ? { ...e, data: { ...e.data, version: -1 } } : e);
    await send(bad, FRAME_CONTENT_TYPE);
    await waitUntil(async () => await malformed("corrupt_frame") === 1, "the truncated counted");
    await waitUntil(async () => await malformed("invalid_record") === 1, "the bad record counted");
    assert.equal(await applied(), 10, "nothing of a refused frame is applied");
  });

  await t.step("the shore keeps going: the good frame is applied", async () => {
    await send(more, FRAME_CONTENT_TYPE);
    await waitUntil(async () => await applied() === 13, "thirteen changes applied");
    const [pos] = await rig.db.sql`select last_seq::int from shore_positions
      where vessel_id = ${sim.vesselId}`;
    assert.equal(pos!.last_seq, 13);
  });
});

Deno.test("a vessel restarted from messages to frames and back loses and doubles nothing", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  await using broker = await startMosquitto();
  const shore = await startShore(broker.url, shoreDb.sql);
  const id = `v-mixed-${crypto.randomUUID().slice(0, 6)}`;
  try {
    let total = 0;
    for (const mode of ["messages", "frames", "messages", "frames"]) {
      await using vessel = await startVessel({
        sql: vesselDb.sql,
        brokerUrl: broker.url,
        env: { VESSEL_ID: id, LINK_MODE: mode },
      });
      // Written before the session is up, and some while it drains.
      for (let i = 0; i < 15; i++) {
        await vessel.records.create(i % 4 ? "equipment" : "alerts", {
          ...(i % 4
            ? { name: `${mode} ${i}` }
            : { equipmentId: "e", severity: "critical", message: `${mode} ${i}` }),
        });
      }
      total += 15;
      await acked(vessel, total);
    }
    const [row] = await shoreDb.sql`select count(*)::int as n from shore_records`;
    assert.equal(row!.n, total);
    assert.equal(await valueOf(shore.metrics.shore.applied), total);
  } finally {
    await shore.close();
  }
});

Deno.test("catch-up re-publishes in frames, cut where an entity filter skips seqs", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: broker.url });
  for (let i = 0; i < 6; i++) {
    await vessel.records.create(i % 2 ? "crew" : "equipment", { name: `r${i}` });
  }
  await waitUntil(async () => (await vessel.report()).queuedMessages === 0, "nothing queued");
  await using wire = await observe(broker.url, `vessel/${vessel.vesselId}/sync/frames`);
  const frames: number[] = [];
  wire.client.on("message", () => frames.push(1));
  const all = await vessel.engine.catchup.republish({ since: 2 });
  assert.deepEqual(all, { published: 4, fromSeq: 3, toSeq: 6 });
  await wire.until((r) => r.length === 4, "four caught-up changes");
  assert.deepEqual(
    wire.received.map((
      r,
    ) => [r.envelope.type, r.envelope.seq, r.envelope.sequence, r.envelope.total]),
    [["catchup", 3, 0, 4], ["catchup", 4, 1, 4], ["catchup", 5, 2, 4], ["catchup", 6, 3, 4]],
  );
  assert.equal(frames.length, 1);
  await vessel.engine.catchup.republish({ since: 0, entity: "equipment" });
  await wire.until((r) => r.length === 7, "three caught-up equipment changes");
  assert.deepEqual(wire.received.slice(4).map((r) => r.envelope.seq), [1, 3, 5]);
  assert.equal(frames.length, 4, "seqs 1, 3 and 5 do not run on: three frames");
});

Deno.test("after a link outage longer than ACK_TIMEOUT_S nothing is sent twice", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  await using broker = await startMosquitto();
  await using proxy = startProxy({ target: { port: broker.port } });
  const shore = await startShore(broker.url, shoreDb.sql);
  try {
    await using vessel = await startVessel({
      sql: vesselDb.sql,
      brokerUrl: proxy.url(),
      env: { ACK_TIMEOUT_S: "2" },
    });
    for (let i = 0; i < 20; i++) await vessel.records.create("crew", { name: `before ${i}` });
    await acked(vessel, 20);
    proxy.setMode({ kind: "cut" });
    await waitUntil(
      async () => (await vessel.report()).status === "disconnected",
      "the vessel sees the link down",
    );
    for (let i = 0; i < 50; i++) await vessel.records.create("crew", { name: `during ${i}` });
    // Longer than ACK_TIMEOUT_S: the re-send clock must not count the outage.
    await new Promise((r) => setTimeout(r, 3_000));
    proxy.setMode({ kind: "pass" });
    await acked(vessel, 70);
    // A re-send after the ack would still show: give it one more ACK_TIMEOUT_S.
    await new Promise((r) => setTimeout(r, 2_500));
    assert.equal(await valueOf(shore.metrics.shore.duplicates), 0);
    assert.equal(await valueOf(shore.metrics.shore.applied), 70);
  } finally {
    await shore.close();
  }
});

Deno.test("shore's ack raises the published watermark when no PUBACK ever came", async () => {
  await using db = await freshDatabase();
  const dir = await Deno.makeTempDir({ prefix: "bosun-acl-" });
  await Deno.chmod(dir, 0o755);
  // The broker refuses every frame: only shore's ack can tell the vessel they were delivered.
  await Deno.writeTextFile(`${dir}/acl`, "topic deny vessel/+/sync/frames\ntopic readwrite #\n");
  try {
    await using broker = await startMosquitto({ extraConfig: `acl_file ${dir}/acl` });
    const id = `v-mark-${crypto.randomUUID().slice(0, 6)}`;
    const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
    for (let i = 0; i < 3; i++) await store.create("crew", { name: `c${i}` });
    // Sent by an earlier process whose PUBACKs were lost with its link; shore applied them.
    await claimChanges(db.sql, 10, id);
    const { epoch } = await vesselState(db.sql);
    await ack(broker.url, id, epoch, 3);
    await using vessel = await startVessel({
      sql: db.sql,
      brokerUrl: broker.url,
      env: { VESSEL_ID: id },
    });
    await waitUntil(async () => {
      const h = await vessel.report();
      return h.lastAckedSeq === 3 && h.lastPublishedSeq === 3 && h.queuedMessages === 0;
    }, "lastPublishedSeq raised to the ack's 3");
    const [state] = await db.sql`select published_seq::int from vessel_state`;
    assert.equal(state!.published_seq, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an alert committed during a drain over a slow link overtakes the backlog, in a frame of its own", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  await using broker = await startMosquitto();
  await using proxy = startProxy({ target: { port: broker.port } });
  const shore = await startShore(broker.url, shoreDb.sql);
  try {
    await using vessel = await startVessel({
      sql: vesselDb.sql,
      brokerUrl: proxy.url(),
      env: { ACK_TIMEOUT_S: "60" }, // no re-send blurs the order
    });
    // The frames as they reach the broker: which entities each one carried.
    await using frames = await observe(broker.url, topicsOf(vessel.vesselId).frames);
    const framesOf = new Map<number, string[]>(); // seq -> the entities of its frame
    frames.client.on("message", (_topic, payload) => {
      const frame = decodeFrame(payload);
      if (!frame.ok) return;
      const entities = frame.envelopes.map((e) => e.entity);
      for (const e of frame.envelopes) framesOf.set(e.seq, entities);
    });
    proxy.setMode({ kind: "cut" });
    await waitUntil(
      async () => (await vessel.report()).status === "disconnected",
      "the vessel sees the link down",
    );
    const backlog = 4_000;
    for (let i = 0; i < backlog; i += 200) {
      await Promise.all(Array.from(
        { length: 200 },
        (_, j) => vessel.records.create("crew", { name: `crew ${i + j}`, role: "deck" }),
      ));
    }
    // A slow link (128 kbit/s, 600 ms RTT, 1 % loss): the backlog takes many seconds.
    proxy.setMode({
      kind: "throttle",
      throttle: { bitsPerSecond: 128_000, latencyMs: 300, loss: 0.01 },
    });
    const count = async (entity: string) => {
      const [row] = await shoreDb.sql`
        select count(*)::int as n from shore_records where entity = ${entity}`;
      return row!.n as number;
    };
    await waitUntil(async () => await count("crew") >= 200, "the drain under way ashore");
    await vessel.records.create("alerts", {
      equipmentId: "engine-1",
      severity: "critical",
      message: "Bilge high",
      acknowledged: false,
    });
    await waitUntil(async () => await count("alerts") === 1, "the alert applied ashore", 120_000);
    const crewBefore = await count("crew");
    // Without a claim bounded by the link, the whole backlog was claimed (seqs 1..4000)
    // before the alert, and it arrived after all of it.
    assert.ok(
      crewBefore <= backlog - 1_500,
      `the alert arrived after ${crewBefore} of ${backlog} backlog changes`,
    );
    // Claimed first, then the backlog rows behind it: they did not share its frame (and it
    // did not wait for them to cross the link).
    const [alertRow] = await shoreDb.sql`
      select seq::int from shore_inbox where entity = 'alerts'`;
    await frames.until(() => framesOf.has(alertRow!.seq), "the alert's frame observed");
    assert.deepEqual(framesOf.get(alertRow!.seq), ["alerts"]);
    await acked(vessel, backlog + 1);
    assert.equal(await count("crew"), backlog); // exactly once
    // Duplicates are not held to 0 here: one full-suite run (2026-11-30, 18:30) saw 2 on this
    // throttled link and no run alone has since (docs/frames.md, "What is done and what is not").
    // The no-duplicate promise after an outage is the test "after a link outage longer than
    // ACK_TIMEOUT_S nothing is sent twice" above, and bench/outage.ts.
  } finally {
    await shore.close();
  }
});
