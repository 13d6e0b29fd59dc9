/**
 * The down stream end to end: a real shore gateway (main.ts, ROLE=shore, ACK_TIMEOUT_S at its
 * default 60 s, so no timed re-send happens within the test) and a real vessel role, through a
 * real Mosquitto, each on its own PostgreSQL database. Down catch-up by request (contract §4:
 * `vessel/<id>/down/catchup/request`), and the down stream in `/health`, `/metrics` and
 * `GET /api/vessels` on both sides.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../config.ts";
import { silentLogger } from "../../core/log.ts";
import { advanceDownPublished, claimDownChanges } from "../../db/shore/down-outbox.ts";
import { createShoreWrites } from "../../db/shore/writes.ts";
import { Hlc } from "../../core/hlc.ts";
import { start } from "../../main.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { freshDatabase } from "../support/pg.ts";
import { startVessel, type TestVessel } from "../support/vessel.ts";
import { waitUntil } from "../support/wait.ts";

const TOKEN = "down-catchup-token-0123456789";

Deno.test("down catch-up by request, and the down stream on both sides' health and metrics", async (t) => {
  await using broker = await startMosquitto();
  await using shoreDb = await freshDatabase();
  await using vesselDb = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-down-" });
  const shore = await start(
    parseConfig({
      ROLE: "shore",
      VESSEL_ID: "shore-a",
      DATABASE_URL: shoreDb.url,
      MQTT_BROKER_URL: broker.url,
      HOST: "127.0.0.1",
      PORT: "0",
      API_TOKENS: TOKEN,
      DATA_DIR: dataDir,
    }),
    silentLogger,
  );
  const base = `http://127.0.0.1:${shore.port}`;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      text,
      body: text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : undefined,
    };
  };
  const vesselId = `v-${crypto.randomUUID().slice(0, 8)}`;
  const boot = () =>
    startVessel({ sql: vesselDb.sql, brokerUrl: broker.url, env: { VESSEL_ID: vesselId } });
  let vessel: TestVessel | undefined = await boot();
  const crewAshore = (name: string) => call("POST", `/api/crew?vesselId=${vesselId}`, { name });
  const downOnBoard = async () => (await vessel!.report()).down as Record<string, unknown>;
  const crewOnBoard = async () => {
    const [r] = await vesselDb.sql<{ n: number }[]>`
      select count(*)::int as n from crew where deleted_at is null`;
    return r!.n;
  };
  const metricOf = (text: string, series: string) => {
    const line = text.split("\n").find((l) => l.startsWith(series + " "));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };

  try {
    let total = 0;
    await t.step(
      "a gap in the down stream is asked for and filled, not left to the re-send",
      async () => {
        for (let i = 0; i < 3; i++) assert.equal((await crewAshore(`a${i}`)).status, 201);
        total = 3;
        await waitUntil(
          async () => (await downOnBoard()).lastAppliedSeq === 3,
          "seqs 1..3 on board",
        );
        // A frame lost on the way: rows claimed and counted published that never reach the
        // broker. (A row the publisher claims first goes out normally; only ours are lost.)
        const writes = createShoreWrites({ sql: shoreDb.sql, hlc: new Hlc({ origin: "shore" }) });
        let lost = 0;
        while (lost < 3) {
          await writes.create(vesselId, "crew", { name: `lost${lost}` });
          total++;
          const claimed = await claimDownChanges(shoreDb.sql, vesselId, 1);
          if (claimed.length === 0) continue;
          lost++;
          await advanceDownPublished(shoreDb.sql, vesselId, claimed[0]!.epoch, claimed[0]!.seq);
        }
        for (let i = 0; i < 2; i++) assert.equal((await crewAshore(`b${i}`)).status, 201);
        total += 2;
        await waitUntil(
          async () => (await downOnBoard()).lastAppliedSeq === total,
          `every one of the ${total} shore changes applied on board`,
        );
        assert.equal(await crewOnBoard(), total);
        const shoreMetrics = (await call("GET", "/metrics")).text;
        assert.ok(metricOf(shoreMetrics, "bosun_shore_down_catchup_requests_total")! >= 1);
        assert.ok(metricOf(shoreMetrics, "bosun_shore_down_catchup_published_total")! >= 3);
        assert.equal(
          metricOf(shoreMetrics, "bosun_shore_down_resent_total"),
          0,
          "no timed re-send",
        );
        const vesselMetrics = await vessel!.metrics.registry.metrics();
        assert.ok(metricOf(vesselMetrics, "bosun_down_catchup_requests_total")! >= 1);
      },
    );

    await t.step(
      "/health, /metrics and /api/vessels show the down stream on both sides",
      async () => {
        await waitUntil(async () => {
          const [v] = (await call("GET", "/api/vessels")).body
            .filter((x: { vesselId: string }) => x.vesselId === vesselId);
          return v?.downBacklog === 0 && v?.downAckedSeq === total;
        }, "the shore sees the vessel's ack of every change");
        const [v] = (await call("GET", "/api/vessels")).body
          .filter((x: { vesselId: string }) => x.vesselId === vesselId);
        assert.equal(v.downPublishedSeq, total);
        assert.equal(v.downUnacked, 0);
        assert.equal(typeof v.downEpoch, "string");
        assert.notEqual(v.downLastAckAt, null);
        const health = (await call("GET", "/health")).body;
        const stream = health.down.streams.find((s: { vesselId: string }) =>
          s.vesselId === vesselId
        );
        assert.deepEqual(
          [stream.backlog, stream.queued, stream.unacked, stream.lastSeq, stream.ackedSeq],
          [0, 0, 0, total, total],
        );
        assert.equal(health.down.backlog, 0);
        assert.equal(health.unackedMessages, 0);
        const text = (await call("GET", "/metrics")).text;
        assert.equal(metricOf(text, `bosun_shore_down_backlog{vessel="${vesselId}"}`), 0);
        assert.equal(metricOf(text, `bosun_shore_down_acked_seq{vessel="${vesselId}"}`), total);
        assert.equal(metricOf(text, `bosun_shore_down_published_seq{vessel="${vesselId}"}`), total);
        assert.equal(metricOf(text, "bosun_down_applied_seq"), undefined, "a vessel series");
        const onBoard = await downOnBoard();
        assert.deepEqual(
          [onBoard.lastAppliedSeq, onBoard.waiting, onBoard.dropped, onBoard.conflicts],
          [total, 0, 0, 0],
        );
        assert.equal(onBoard.epoch, v.downEpoch);
        await vessel!.refresh();
        const vesselText = await vessel!.metrics.registry.metrics();
        assert.equal(metricOf(vesselText, "bosun_down_applied_seq"), total);
        assert.equal(metricOf(vesselText, "bosun_down_waiting"), 0);
        assert.ok(metricOf(vesselText, "bosun_down_applied_total")! >= 3);
      },
    );

    await t.step(
      "a restart asks nothing while its session holds the stream; a restore to an earlier position is served from its down ack",
      async () => {
        const shoreMetric = async (series: string) =>
          metricOf((await call("GET", "/metrics")).text, series) ?? 0;
        const ackedAshore = (seq: number) =>
          waitUntil(async () => {
            const [v] = (await call("GET", "/api/vessels")).body
              .filter((x: { vesselId: string }) => x.vesselId === vesselId);
            return v?.downAckedSeq === seq;
          }, `the shore sees the vessel's down ack of ${seq}`);
        const requests = await shoreMetric("bosun_shore_down_catchup_requests_total");
        await vessel![Symbol.asyncDispose]();
        for (let i = 0; i < 2; i++) assert.equal((await crewAshore(`s${i}`)).status, 201);
        total += 2;
        vessel = await boot();
        await waitUntil(async () => (await crewOnBoard()) === total, `all ${total} on board`);
        await ackedAshore(total);
        assert.equal(
          metricOf(await vessel.metrics.registry.metrics(), "bosun_down_catchup_requests_total"),
          0,
          "the broker session held the stream: no catch-up request at start",
        );

        // The restore: the database as it was before the last two shore changes arrived.
        await vessel[Symbol.asyncDispose]();
        vessel = undefined;
        const served = await shoreMetric("bosun_shore_down_catchup_published_total");
        await vesselDb.sql`delete from down_inbox where seq > ${total - 2}`;
        await vesselDb.sql`update down_positions set last_seq = ${total - 2}`;
        await vesselDb.sql`delete from crew where data->>'name' in ('s0', 's1')`;
        vessel = await boot();
        await waitUntil(async () => (await crewOnBoard()) === total, `all ${total} back on board`);
        assert.equal(await shoreMetric("bosun_shore_down_catchup_requests_total"), requests);
        assert.ok(
          await shoreMetric("bosun_shore_down_catchup_published_total") >= served + 2,
          "served from the vessel's down ack",
        );
      },
    );

    await t.step("a vessel restored from a backup gets back what it had acknowledged", async () => {
      await vessel![Symbol.asyncDispose]();
      vessel = undefined;
      for (let i = 0; i < 2; i++) assert.equal((await crewAshore(`c${i}`)).status, 201);
      total += 2;
      await waitUntil(async () => {
        const [v] = (await call("GET", "/api/vessels")).body
          .filter((x: { vesselId: string }) => x.vesselId === vesselId);
        return v?.downBacklog === 2;
      }, "the shore shows the 2 changes waiting for the vessel");
      // The restore: the vessel's database as it was before any shore change reached it.
      await vesselDb.sql`delete from down_inbox`;
      await vesselDb.sql`delete from down_positions`;
      await vesselDb.sql`delete from crew`;
      vessel = await boot();
      await waitUntil(async () => (await crewOnBoard()) === total, `all ${total} back on board`);
      await waitUntil(async () => {
        const [v] = (await call("GET", "/api/vessels")).body
          .filter((x: { vesselId: string }) => x.vesselId === vesselId);
        return v?.downBacklog === 0;
      }, "the vessel's ack releases the 2 waiting changes");
    });
  } finally {
    await vessel?.[Symbol.asyncDispose]();
    await shore.close();
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
  }
});
