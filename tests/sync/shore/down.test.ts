/**
 * The shore's down publisher (sync/shore/down.ts) against a real Mosquitto and PostgreSQL, with
 * a plain MQTT subscriber standing in for the vessel: it sees what goes down and acknowledges
 * (or not) on the retained down ack, as a vessel does.
 */
import assert from "node:assert/strict";
import mqtt from "mqtt";
import { Hlc } from "../../../core/hlc.ts";
import { silentLogger } from "../../../core/log.ts";
import { createMetrics } from "../../../core/metrics.ts";
import { parseConfig } from "../../../config.ts";
import { claimDownChanges, downFigures } from "../../../db/shore/down-outbox.ts";
import { createShoreWrites } from "../../../db/shore/writes.ts";
import { createSession } from "../../../sync/session.ts";
import { createDownPublisher, type DownPublisherOptions } from "../../../sync/shore/down.ts";
import { ackPayload, topicsOf } from "../../../sync/protocol.ts";
import { startMosquitto } from "../../support/mosquitto.ts";
import { freshDatabase } from "../../support/pg.ts";
import { observe, type Received } from "../../support/vessel.ts";
import { waitUntil } from "../../support/wait.ts";
import type { Sql } from "../../../db/connection.ts";

const VESSEL = "down-v1";

/** A shore session and its down publisher; `close()` stops both. */
async function startDown(
  url: string,
  sql: Sql,
  options: Partial<DownPublisherOptions> & { ackTimeoutMs: number },
) {
  const config = parseConfig({ MQTT_BROKER_URL: url, MQTT_KEEPALIVE_S: "5" });
  const metrics = createMetrics();
  const session = createSession({
    mqtt: config.mqtt,
    clientId: `bosun.shore-t-${crypto.randomUUID().slice(0, 8)}`,
    log: silentLogger,
    backoff: { baseMs: 50, ceilingMs: 500 },
    metrics,
  });
  await waitUntil(() => session.connected, "the shore session connects");
  const down = createDownPublisher({
    sql,
    session,
    log: silentLogger,
    linkMode: "messages",
    pollMs: 100,
    metrics: metrics.shore,
    ...options,
  });
  await down.start();
  return {
    down,
    metrics,
    async close() {
      await down.stop();
      await session.close();
    },
  };
}

/** Publishes the vessel's retained down ack, as sync/vessel/down.ts does. */
async function downAck(url: string, epoch: string, seq: number) {
  const c = await mqtt.connectAsync(url);
  await c.publishAsync(topicsOf(VESSEL).downAck, ackPayload({ epoch, seq }), {
    qos: 1,
    retain: true,
  });
  await c.endAsync();
}

const seqsOf = (r: Received[]) => r.map((x) => x.envelope.seq);
const covers = (r: Received[], from: number, to: number) => {
  const seen = new Set(seqsOf(r));
  for (let seq = from; seq <= to; seq++) if (!seen.has(seq)) return false;
  return true;
};
const timesSent = (r: Received[], seq: number) => seqsOf(r).filter((s) => s === seq).length;

Deno.test("with more than a batch unacknowledged, the re-send walks every row; the ack ends it", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await observe(broker.url, `${topicsOf(VESSEL).down}/#`);
  const writes = createShoreWrites({ sql: db.sql, hlc: new Hlc({ origin: "shore" }) });
  for (let i = 0; i < 100; i++) await writes.create(VESSEL, "crew", { name: `c${i}` });
  const rig = await startDown(broker.url, db.sql, { ackTimeoutMs: 300, batch: 20 });
  try {
    await vessel.until((r) => covers(r, 1, 100), "the first send of seqs 1..100");
    await vessel.until(
      (r) => Array.from({ length: 100 }, (_, i) => i + 1).every((seq) => timesSent(r, seq) >= 2),
      "every one of the 100 unacknowledged rows sent again (5 batches' worth)",
    );
    const epoch = vessel.received[0]!.envelope.epoch;
    await downAck(broker.url, epoch, 100);
    await waitUntil(async () => {
      const [f] = await downFigures(db.sql);
      return f!.backlog === 0 && f!.ackedSeq === 100 && f!.publishedSeq === 100;
    }, "the vessel's ack releases the down outbox");
    assert.ok(
      (await rig.metrics.shore.downResent.get()).values[0]!.value >= 100,
      "the re-sends are counted",
    );
  } finally {
    await rig.close();
  }
});

Deno.test("a restarted shore sends at once only the down changes the broker never PUBACKed", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await observe(broker.url, `${topicsOf(VESSEL).down}/#`);
  const writes = createShoreWrites({ sql: db.sql, hlc: new Hlc({ origin: "shore" }) });
  for (let i = 0; i < 30; i++) await writes.create(VESSEL, "crew", { name: `a${i}` });
  // ACK_TIMEOUT_S far beyond the test: nothing here is a timed re-send.
  const first = await startDown(broker.url, db.sql, { ackTimeoutMs: 600_000 });
  await vessel.until((r) => covers(r, 1, 30), "seqs 1..30 sent");
  await waitUntil(async () => (await downFigures(db.sql))[0]!.publishedSeq === 30, "watermark 30");
  await first.close();
  // A crash between claim and send: seqs 31..40 are claimed, never published.
  for (let i = 0; i < 10; i++) await writes.create(VESSEL, "crew", { name: `b${i}` });
  assert.equal((await claimDownChanges(db.sql, VESSEL, 10)).at(-1)!.seq, 40);
  for (let i = 0; i < 5; i++) await writes.create(VESSEL, "crew", { name: `c${i}` });
  vessel.received.length = 0;
  const second = await startDown(broker.url, db.sql, { ackTimeoutMs: 600_000 });
  try {
    await vessel.until((r) => covers(r, 31, 45), "the claimed-but-unsent 31..40 and new 41..45");
    // The restart's pass decides on 1..40 before any new claim (41..45): had it re-sent what
    // the broker took before the restart, 1..30 would be here.
    assert.deepEqual(seqsOf(vessel.received).filter((s) => s <= 30), []);
  } finally {
    await second.close();
  }
});

Deno.test("an alert queued behind a silent vessel's backlog overtakes it once the vessel acks", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  await using vessel = await observe(broker.url, `${topicsOf(VESSEL).down}/#`);
  const writes = createShoreWrites({ sql: db.sql, hlc: new Hlc({ origin: "shore" }) });
  for (let i = 0; i < 30; i++) {
    await writes.create(VESSEL, "work_orders", { title: `w${i}`, equipmentId: "e" });
  }
  const rig = await startDown(broker.url, db.sql, {
    ackTimeoutMs: 600_000,
    batch: 10,
    window: 10,
  });
  try {
    await vessel.until((r) => covers(r, 1, 10), "a window's worth (10) sent");
    // The window is full: the other 20 work orders stay unclaimed while the vessel is silent.
    const [figures] = await downFigures(db.sql);
    assert.equal(figures!.lastSeq, 10);
    await writes.create(VESSEL, "alerts", {
      equipmentId: "e",
      severity: "critical",
      message: "Bilge alarm",
    });
    await downAck(broker.url, vessel.received[0]!.envelope.epoch, 10);
    await vessel.until((r) => r.some((x) => x.envelope.entity === "alerts"), "the alert sent");
    const alert = vessel.received.find((x) => x.envelope.entity === "alerts")!;
    assert.equal(alert.envelope.seq, 11, "claimed first, before the 20 waiting work orders");
    assert.equal(alert.qos, 2, "alerts travel at QoS 2 in messages mode");
  } finally {
    await rig.close();
  }
});
