/**
 * A vessel offline while the office queues changes for it (issue 11): a real shore role (its
 * ingest, down publisher and HTTP API, as main.ts builds it) and a real vessel role on their own
 * databases, the vessel reaching the broker through a proxy that cuts it off. The office makes
 * `TWO_WAY_OFFLINE_N` changes (creates, updates, deletes) through the shore's API while the
 * vessel is away; then the link returns. Every change is applied on board exactly once, nothing
 * goes back up (no echo), and every record is identical on board and ashore.
 *
 * 500 changes in `deno task test`; `TWO_WAY_OFFLINE_N=10000` is the size issue 11 names
 * (its run is recorded in docs/two-way-sync.md).
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../config.ts";
import { createMetrics } from "../../core/metrics.ts";
import { silentLogger } from "../../core/log.ts";
import { gatewayApp } from "../../roles/role.ts";
import { createShoreRole } from "../../roles/shore.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { freshDatabase } from "../support/pg.ts";
import { startProxy } from "../support/proxy.ts";
import { startVessel } from "../support/vessel.ts";
import { queryOf, shoreCopies, unconverged, vesselCopies } from "../support/two-way.ts";
import { waitUntil } from "../support/wait.ts";

const N = Number(Deno.env.get("TWO_WAY_OFFLINE_N") ?? 500);
const TOKEN = "two-way-offline-token-0123456789";
/** Generous: the 10,000 run took far less (docs/two-way-sync.md). */
const DEADLINE_MS = Math.max(120_000, N * 60);

/** Runs `task` over `items`, `width` at a time. */
async function pool<T>(items: T[], width: number, task: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await task(items[next++]!);
  }));
}

Deno.test(`a vessel offline while the office queues ${N} changes for it`, async () => {
  const dir = await Deno.makeTempDir({ prefix: "bosun-two-way-offline-" });
  await using broker = await startMosquitto({ persistenceDir: dir });
  await using link = startProxy({ target: { port: broker.port } });
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();

  const config = parseConfig({
    ROLE: "shore",
    VESSEL_ID: "shore-a",
    LOCAL_MODE: "true",
    DATABASE_URL: "postgres://unused",
    MQTT_BROKER_URL: broker.url,
    MQTT_KEEPALIVE_S: "5",
    ACK_TIMEOUT_S: "5",
  });
  const metrics = createMetrics();
  const shore = createShoreRole({ config, sql: shoreDb.sql, log: silentLogger, metrics });
  await shore.start();
  const app = gatewayApp({ config, role: shore, log: silentLogger, metrics, tokens: [TOKEN] });
  await using vessel = await startVessel({ sql: vesselDb.sql, brokerUrl: link.url() });
  const { vesselId } = vessel;
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await app.request(`${path}?vesselId=${vesselId}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const appliedOnBoard = async () => {
    const [r] = await vesselDb.sql<{ rows: number; distinct: number; counted: number }[]>`
      select count(*)::int as rows, count(distinct message_id)::int as distinct,
        (select coalesce(sum(applied_count), 0)::int from down_positions) as counted
      from down_inbox where applied_at is not null`;
    return r!;
  };

  const unacked = async () => {
    const [r] = await shoreDb.sql<{ n: number }[]>`
      select count(*)::int as n from shore_down_changes
      where vessel_id = ${vesselId} and acked_at is null`;
    return r!.n;
  };

  try {
    // Both sides up: one record goes down, so the vessel's down session exists at the broker.
    const first = await call("POST", "/api/work_orders", { title: "Muster", equipmentId: "e" });
    assert.equal(first.status, 201);
    await waitUntil(
      async () => (await vessel.records.get("work_orders", first.body.id)) !== undefined,
      "the first record is on board",
    );
    await waitUntil(async () => await unacked() === 0, "the vessel acknowledges it");

    link.setMode({ kind: "cut" });
    await waitUntil(() => !vessel.engine.session.connected, "the vessel is offline");

    // The office's changes while the vessel is away: half creates, then updates, then deletes.
    const started = performance.now();
    const creates = Math.ceil(N / 2);
    const updates = Math.floor(N * 0.4);
    const deletes = N - creates - updates;
    const ids: string[] = [];
    await pool(Array.from({ length: creates }, (_, i) => i), 16, async (i) => {
      const r = await call("POST", "/api/work_orders", {
        title: `Planned job ${i}`,
        equipmentId: `eq-${i % 40}`,
        priority: (i % 5) + 1,
      });
      assert.equal(r.status, 201, JSON.stringify(r.body));
      ids.push(r.body.id);
    });
    await pool(Array.from({ length: updates }, (_, i) => i), 16, async (i) => {
      const r = await call("PATCH", `/api/work_orders/${ids[i % ids.length]}`, {
        status: "in_progress",
        description: `step ${i}`,
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    });
    await pool(ids.slice(0, deletes), 16, async (id) => {
      assert.equal((await call("DELETE", `/api/work_orders/${id}`)).status, 204);
    });
    const writtenS = (performance.now() - started) / 1000;
    assert.equal(await unacked(), N, "every change the office made waits for the vessel");
    assert.equal((await appliedOnBoard()).rows, 1, "nothing reached the vessel meanwhile");

    // The vessel comes back.
    const back = performance.now();
    link.setMode({ kind: "pass" });
    await waitUntil(
      async () => await unacked() === 0,
      `the vessel applies and acknowledges all ${N} changes`,
      DEADLINE_MS,
      250,
    );
    const drainS = (performance.now() - back) / 1000;

    const applied = await appliedOnBoard();
    assert.deepEqual(applied, { rows: N + 1, distinct: N + 1, counted: N + 1 }, "exactly once");
    const [echo] = await vesselDb.sql<{ n: number }[]>`select count(*)::int as n from changes`;
    assert.equal(echo!.n, 0, "applying the office's changes wrote no change going back");
    const onBoard = await vesselCopies(queryOf(vesselDb.sql));
    const ashore = await shoreCopies(queryOf(shoreDb.sql), vesselId);
    assert.equal(onBoard.size, creates + 1);
    assert.deepEqual(unconverged(onBoard, ashore).slice(0, 5), [], "identical on both sides");
    const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
    console.log(
      `two-way offline: ${N} office changes written in ${writtenS.toFixed(1)} s, applied on ` +
        `board and acknowledged ${drainS.toFixed(1)} s after the vessel returned (load ${load})`,
    );
  } finally {
    await shore.close();
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});
