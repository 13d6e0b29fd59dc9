import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { publishAll, rawClient, SimulatedVessel } from "../support/fleet.ts";
import { waitUntil } from "../support/wait.ts";
import { start } from "../../main.ts";
import { parseConfig } from "../../config.ts";
import { silentLogger } from "../../core/log.ts";

const TOKEN = "shore-test-token-0123456789";

Deno.test("a shore gateway serves vessels, presence, fleet records, health and metrics", async (t) => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-shore-" });
  const gateway = await start(
    parseConfig({
      ROLE: "shore",
      VESSEL_ID: "shore-a",
      DATABASE_URL: db.url,
      MQTT_BROKER_URL: broker.url,
      HOST: "127.0.0.1",
      PORT: "0",
      API_TOKENS: TOKEN,
      DATA_DIR: dataDir,
    }),
    silentLogger,
  );
  const base = `http://127.0.0.1:${gateway.port}`;
  const get = async (path: string, auth = true) => {
    const res = await fetch(base + path, {
      headers: auth ? { authorization: `Bearer ${TOKEN}` } : {},
    });
    return { status: res.status, body: await res.json().catch(() => undefined) };
  };
  const pub = await rawClient(broker.url);
  try {
    const a = new SimulatedVessel("vessel-a");
    const b = new SimulatedVessel("vessel-b");
    const aChanges = [a.create(), a.create(), a.create()];
    const bFirst = b.create();
    const bDeleted = b.remove(`work_orders/${bFirst.data.id}`);
    await waitUntil(
      async () => (await get("/health", false)).body?.status === "connected",
      "the shore connects",
    );
    await publishAll(pub, [...aChanges, bFirst, bDeleted]);
    await pub.publishAsync(
      "vessel/vessel-a/sync/system/status",
      JSON.stringify({ status: "online", vesselId: "vessel-a" }),
      { qos: 1, retain: true },
    );
    await waitUntil(async () => {
      const { body } = await get("/api/vessels");
      return body?.length === 2 && body[0].lastSeq === 3 && body[0].status === "online" &&
        body[1].lastSeq === 2;
    }, "both vessels are applied");

    await t.step("GET /api/vessels lists status, epoch, lastSeq, lastSeenAt and gaps", async () => {
      const { status, body } = await get("/api/vessels");
      assert.equal(status, 200);
      assert.equal(body[0].vesselId, "vessel-a");
      assert.equal(body[0].epoch, a.epoch);
      assert.equal(body[0].gaps, 0);
      assert.ok(!Number.isNaN(Date.parse(body[0].lastSeenAt)));
      assert.deepEqual({ ...body[1], lastSeenAt: undefined }, {
        vesselId: "vessel-b",
        status: "unknown",
        epoch: b.epoch,
        lastSeq: 2,
        lastSeenAt: undefined,
        gaps: 0,
        deadLetters: 0,
        forgeries: 0,
        // No change made ashore for it: its down stream is empty.
        downBacklog: 0,
        downUnacked: 0,
        downEpoch: null,
        downPublishedSeq: 0,
        downAckedSeq: 0,
        downLastAckAt: null,
      });
    });

    await t.step("presence follows the status topic to offline", async () => {
      await pub.publishAsync(
        "vessel/vessel-a/sync/system/status",
        JSON.stringify({ status: "offline" }),
        {
          qos: 1,
          retain: true,
        },
      );
      await waitUntil(
        async () => (await get("/api/vessels")).body[0].status === "offline",
        "offline",
      );
    });

    await t.step("GET /api/{entity} pages through applied records with vesselId", async () => {
      const first = await get("/api/work_orders?vesselId=vessel-a&limit=2");
      assert.equal(first.status, 200);
      assert.equal(first.body.items.length, 2);
      assert.ok(first.body.nextCursor);
      const second = await get(
        `/api/work_orders?vesselId=vessel-a&limit=2&cursor=${first.body.nextCursor}`,
      );
      assert.equal(second.body.items.length, 1);
      assert.equal(second.body.nextCursor, null);
      const ids = [...first.body.items, ...second.body.items].map((r: { id: string }) => r.id);
      assert.deepEqual([...ids].sort(), aChanges.map((e) => e.data.id).sort());
      assert.deepEqual(first.body.items[0], {
        ...aChanges.find((e) => e.data.id === first.body.items[0].id)!.data,
        vesselId: "vessel-a",
      });
      // vessel-b's only record was deleted; without vesselId every vessel's live records list.
      assert.equal((await get("/api/work_orders?vesselId=vessel-b")).body.items.length, 0);
      assert.equal((await get("/api/work_orders")).body.items.length, 3);
    });

    await t.step("bad queries are 400 or 404 and the routes need the token", async () => {
      assert.equal((await get("/api/work_orders?vesselId=bad.id")).status, 400);
      assert.equal((await get("/api/work_orders?cursor=nope")).status, 400);
      assert.equal((await get("/api/work_orders?limit=0")).status, 400);
      assert.equal((await get("/api/cargo")).status, 404);
      const post = await fetch(`${base}/api/work_orders`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ title: "x", equipmentId: "e" }),
      });
      // A write ashore is for one vessel: without ?vesselId= it is refused, naming it.
      assert.equal(post.status, 400, "a shore write must name its vessel");
      assert.match((await post.json()).error.message, /"vesselId" is required/);
      assert.equal((await get("/api/vessels", false)).status, 401);
      assert.equal((await get("/api/work_orders", false)).status, 401);
    });

    await t.step("/health carries the role and a fleet summary", async () => {
      const { status, body } = await get("/health", false);
      assert.equal(status, 200);
      assert.equal(body.role, "shore");
      assert.equal(body.status, "connected");
      assert.deepEqual(body.fleet, {
        vessels: 2,
        online: 0,
        offline: 1,
        unknown: 1,
        totalApplied: 5,
        vesselsWithGaps: 0,
        waiting: 0,
      });
    });

    await t.step("/metrics carries applied seq and lag per vessel and the counters", async () => {
      const text = await (await fetch(`${base}/metrics`)).text();
      assert.match(text, /bosun_shore_vessel_applied_seq\{vessel="vessel-a"\} 3/);
      assert.match(text, /bosun_shore_vessel_lag\{vessel="vessel-b"\} 0/);
      assert.match(text, /bosun_shore_applied_total 5/);
      assert.match(text, /bosun_mqtt_connected 1/);
    });
  } finally {
    await pub.endAsync();
    await gateway.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
