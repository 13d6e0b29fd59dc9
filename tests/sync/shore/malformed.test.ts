import assert from "node:assert/strict";
import { startShoreRig } from "../../support/shore-rig.ts";
import { publishAll, SimulatedVessel, valueOf } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import { classify, MAX_PAYLOAD_BYTES } from "../../../sync/shore/classify.ts";

const bytes = (s: string) => new TextEncoder().encode(s);

Deno.test("malformed messages are counted by reason, never applied, and the shore keeps going", async () => {
  await using rig = await startShoreRig();
  const { db, shore, pub } = rig;
  const v = new SimulatedVessel("vessel-m");
  const good = v.create();
  const topic = "vessel/vessel-m/sync/work_orders";
  const withSeq = (seq: unknown) => JSON.stringify({ ...good, seq });
  const bad: [string, string | Uint8Array][] = [
    [topic, "{not json"],
    [topic, new Uint8Array([0xff, 0xfe, 0x7b])],
    [topic, JSON.stringify({ ...good, extra: 1 })],
    [topic, JSON.stringify({ ...good, data: { ...good.data, title: "" } })],
    [
      topic,
      JSON.stringify({ ...good, data: { ...good.data, createdAt: "0000-01-01T00:00:00Z" } }),
    ],
    [topic, JSON.stringify({ ...good, timestamp: "0000-01-01T00:00:00Z" })],
    ["vessel/vessel-m/sync/cargo", JSON.stringify(good)],
    [topic, withSeq(0)],
    [topic, withSeq(-1)],
    [topic, withSeq(1.5)],
    [topic, withSeq("x")],
    ["vessel/bad.id/sync/work_orders", JSON.stringify(good)],
    [`vessel/${"x".repeat(65)}/sync/work_orders`, JSON.stringify(good)],
    ["vessel/vessel-other/sync/work_orders", JSON.stringify(good)],
    [topic, JSON.stringify({ ...good, data: "x".repeat(MAX_PAYLOAD_BYTES) })],
    ["vessel/vessel-m/sync/system/status", JSON.stringify({ status: "sinking" })],
  ];
  for (const [t, payload] of bad) await pub.publishAsync(t, payload as string, { qos: 1 });
  // Published last on one connection, so delivered after every bad one.
  await publishAll(pub, [good]);
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.applied) === 1,
    "the good change is applied",
  );

  const counts: Record<string, number> = {};
  for (const v of (await shore.metrics.shore.malformed.get()).values) {
    counts[String(v.labels.reason)] = v.value;
  }
  assert.deepEqual(counts, {
    invalid_json: 2,
    invalid_envelope: 2,
    invalid_record: 2,
    unknown_entity: 1,
    invalid_seq: 4,
    invalid_topic: 2,
    mismatch: 1,
    oversized: 1,
    invalid_status: 1,
  });
  const [inbox] = await db.sql<{ n: number }[]>`select count(*)::int8 as n from shore_inbox`;
  assert.equal(inbox!.n, 1);
  const vessels = await db.sql<{ vessel_id: string }[]>`select vessel_id from shore_vessels`;
  assert.deepEqual(vessels.map((r) => r.vessel_id), ["vessel-m"]);
});

Deno.test("classify ignores the shore's own topics and a cleared retained status", () => {
  for (const rest of ["ack", "conflicts", "catchup/request"]) {
    assert.deepEqual(classify(`vessel/v1/sync/${rest}`, bytes("{}")), { kind: "ignored" });
  }
  assert.deepEqual(classify("vessel/v1/sync/system/status", new Uint8Array()), { kind: "ignored" });
});

Deno.test("classify reads catch-up envelopes and status payloads", () => {
  const v = new SimulatedVessel("v1");
  const e = { ...v.create("alerts"), type: "catchup" as const, sequence: 0, total: 1 };
  const m = classify("vessel/v1/sync/catchup/alerts", bytes(JSON.stringify(e)));
  assert.equal(m.kind, "envelope");
  const at = "2026-11-27T10:00:00.000Z";
  assert.deepEqual(
    classify(
      "vessel/v1/sync/system/status",
      bytes(JSON.stringify({ status: "online", timestamp: at })),
    ),
    { kind: "presence", presence: { vesselId: "v1", status: "online", at: new Date(at) } },
  );
  assert.equal(classify("vessel/v1/sync/catchup/cargo/x", bytes("{}")).kind, "malformed");
  assert.equal(classify("ship/v1/sync/alerts", bytes("{}")).kind, "malformed");
});
