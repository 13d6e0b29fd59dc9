import assert from "node:assert/strict";
import { Hono } from "hono";
import mqtt from "mqtt";
import { freshDatabase } from "../../support/pg.ts";
import { startMosquitto } from "../../support/mosquitto.ts";
import { observe, startVessel, type TestVessel } from "../../support/vessel.ts";
import { waitUntil } from "../../support/wait.ts";
import { catchupRoutes } from "../../../routes/catchup.ts";
import { applyAck, pruneAcked, vesselState } from "../../../db/vessel/outbox.ts";
import { toHttpError } from "../../../core/errors.ts";
import type { Envelope } from "../../../sync/protocol.ts";

// The routes as app.ts mounts them, with its error mapper.
function app(vessel: TestVessel) {
  const a = new Hono();
  a.route("/catchup", catchupRoutes({ catchup: vessel.engine.catchup }));
  a.onError((err, c) => {
    const e = toHttpError(err);
    return c.json({ error: e?.code ?? "internal" }, e?.status ?? 500);
  });
  return a;
}

const post = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

Deno.test("catch-up by seq and by time returns the change log in seq order, deletes included", async (t) => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  // The per-entity catch-up topics of LINK_MODE=messages; frames: tests/sync/frames.test.ts.
  await using vessel = await startVessel({
    sql: db.sql,
    brokerUrl: broker.url,
    env: { LINK_MODE: "messages" },
  });
  const http = app(vessel);
  const a = await vessel.records.create("equipment", { name: "a" });
  await vessel.records.create("crew", { name: "b" });
  await vessel.records.remove("equipment", a.id as string);
  const midway = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 5));
  await vessel.records.create("equipment", { name: "c" });
  await waitUntil(
    async () => (await vessel.report()).queuedMessages === 0,
    "the vessel reports nothing queued",
  );

  await t.step("GET by seq pages with nextSince and hasMore", async () => {
    const r1 = await http.request("/catchup?since=0&limit=2");
    assert.equal(r1.status, 200);
    const p1 = await r1.json();
    assert.deepEqual(p1.changes.map((e: Envelope) => [e.seq, e.operation]), [[1, "create"], [
      2,
      "create",
    ]]);
    assert.deepEqual([p1.nextSince, p1.hasMore], [2, true]);
    const p2 = await (await http.request(`/catchup?since=${p1.nextSince}&limit=2`)).json();
    assert.deepEqual(p2.changes.map((e: Envelope) => [e.seq, e.operation]), [[3, "delete"], [
      4,
      "create",
    ]]);
    assert.equal(p2.hasMore, false);
    assert.equal(p2.changes[0].type, "data_change");
    assert.equal(p2.changes[0].data.id, a.id);
  });

  await t.step("GET filters by entity", async () => {
    const p = await (await http.request("/catchup?since=0&entity=equipment")).json();
    assert.deepEqual(p.changes.map((e: Envelope) => e.seq), [1, 3, 4]);
  });

  await t.step("bad queries are 400", async () => {
    for (
      const q of [
        "",
        "?since=-1",
        "?since=x",
        "?since=0&entity=ships",
        "?since=0&limit=0",
        "?since=0&x=1",
      ]
    ) {
      assert.equal((await http.request(`/catchup${q}`)).status, 400, q);
    }
  });

  await t.step(
    "POST by time re-publishes on the catch-up topics with sequence and total",
    async () => {
      await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/catchup/+`);
      const r = await http.request("/catchup", post({ since: midway }));
      assert.equal(r.status, 200);
      assert.deepEqual(await r.json(), { published: 1, fromSeq: 4, toSeq: 4 });
      await shore.until((m) => m.length >= 1, "one catch-up message at the observer");
      const m = shore.received[0]!;
      assert.equal(m.topic, `vessel/${vessel.vesselId}/sync/catchup/equipment`);
      assert.equal(m.envelope.type, "catchup");
      assert.deepEqual([m.envelope.seq, m.envelope.sequence, m.envelope.total], [4, 0, 1]);
    },
  );

  await t.step("POST by seq includes the delete, with the original messageIds", async () => {
    await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/catchup/+`);
    const r = await (await http.request("/catchup", post({ since: 1 }))).json();
    assert.deepEqual(r, { published: 3, fromSeq: 2, toSeq: 4 });
    await shore.until((m) => m.length >= 3, "three catch-up messages at the observer");
    const listed = (await (await http.request("/catchup?since=1")).json()).changes as Envelope[];
    const got = shore.received.map((m) => m.envelope).sort((x, y) => x.seq - y.seq);
    assert.deepEqual(got.map((e) => [e.seq, e.operation, e.sequence, e.total]), [
      [2, "create", 0, 3],
      [3, "delete", 1, 3],
      [4, "create", 2, 3],
    ]);
    assert.deepEqual(got.map((e) => e.messageId), listed.map((e) => e.messageId));
  });

  await t.step("bad bodies are 400, non-JSON 415", async () => {
    for (const body of [{}, { since: "yesterday" }, { since: 0, limit: 0 }, { since: 0, x: 1 }]) {
      assert.equal((await http.request("/catchup", post(body))).status, 400);
    }
    const r = await http.request("/catchup", { method: "POST", body: "since=0" });
    assert.equal(r.status, 415);
    const bad = await http.request("/catchup", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{",
    });
    assert.equal(bad.status, 400);
  });

  await t.step(
    "a catch-up request over MQTT re-publishes; a malformed one is dropped",
    async () => {
      await using shore = await observe(broker.url, `vessel/${vessel.vesselId}/sync/catchup/+`);
      const c = await mqtt.connectAsync(broker.url);
      const topic = `vessel/${vessel.vesselId}/sync/catchup/request`;
      await c.publishAsync(topic, "not json", { qos: 1 });
      await c.publishAsync(topic, JSON.stringify({ since: 2, entity: "equipment" }), { qos: 1 });
      await c.endAsync();
      const replies = () => shore.received.filter((m) => !m.topic.endsWith("/request"));
      await shore.until(() => replies().length >= 2, "two catch-up replies at the observer");
      assert.deepEqual(replies().map((m) => m.envelope.seq).sort(), [3, 4]);
    },
  );
});

Deno.test("POST /catchup is 503 while the broker is unreachable", async () => {
  await using db = await freshDatabase();
  await using vessel = await startVessel({ sql: db.sql, brokerUrl: "mqtt://127.0.0.1:1" });
  const r = await app(vessel).request("/catchup", post({ since: 0 }));
  assert.equal(r.status, 503);
});

Deno.test("retention prunes only acknowledged changes older than the limit, in batches", async () => {
  await using db = await freshDatabase();
  // Seqs 1-2,500 acknowledged 40 days ago, 2,501-2,600 now, the rest not yet.
  await db.sql`insert into changes (entity, record_id, operation, data, changed_at, priority,
      epoch, seq)
    select 'crew', gen_random_uuid(), 'create', '{}', now(), 1, s.epoch, g
    from generate_series(1, 2700) g, vessel_state s`;
  await db.sql`update vessel_state set last_seq = 2700`;
  const { epoch } = await vesselState(db.sql);
  await applyAck(db.sql, { epoch, seq: 2500 });
  await db.sql`update vessel_acks set at = now() - interval '40 days',
    minute = minute - interval '40 days'`;
  await applyAck(db.sql, { epoch, seq: 2600 });
  assert.equal(await pruneAcked(db.sql, 30, 1_000), 2500);
  const [left] = await db.sql`select count(*)::int as n, min(seq)::int as lo from changes`;
  assert.deepEqual({ ...left }, { n: 200, lo: 2501 });
});
