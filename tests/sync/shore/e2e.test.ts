/**
 * End to end with real gateway processes: a vessel (`ROLE=vessel`) written to over HTTP, a
 * shore (`ROLE=shore`), a real broker and PostgreSQL, and faults on the way.
 */
import assert from "node:assert/strict";
import { freshDatabase, type TestDatabase } from "../../support/pg.ts";
import { type Mosquitto, startMosquitto } from "../../support/mosquitto.ts";
import { freePort } from "../../support/ports.ts";
import { publishAll, rawClient, SimulatedVessel } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import {
  drive,
  gateway,
  health,
  shoreRecords,
  tallies,
  vesselRecords,
} from "../../support/drive.ts";
import type { GatewayProcess } from "../../support/process.ts";

const WRITES = 2_000;

function vesselEnv(db: TestDatabase, broker: Mosquitto, port: number, vesselId = "vessel-e2e") {
  return {
    ROLE: "vessel",
    VESSEL_ID: vesselId,
    DATABASE_URL: db.url,
    MQTT_BROKER_URL: broker.url,
    PORT: String(port),
    ACK_TIMEOUT_S: "2",
    MQTT_KEEPALIVE_S: "5",
  };
}

const shoreEnv = (db: TestDatabase, broker: Mosquitto) => ({
  ROLE: "shore",
  VESSEL_ID: "shore-a",
  DATABASE_URL: db.url,
  MQTT_BROKER_URL: broker.url,
  PORT: "0",
  MQTT_KEEPALIVE_S: "5",
});

/** Waits until the vessel holds nothing unacknowledged, then checks shore against it. */
async function assertSynced(vesselDb: TestDatabase, shoreDb: TestDatabase, vesselPort: number) {
  await waitUntil(
    async () => {
      const h = await health(vesselPort);
      return h?.queuedMessages === 0 && h?.unackedMessages === 0;
    },
    "the vessel has nothing unacknowledged",
    100_000,
  );
  const { vessel, shore } = await tallies(vesselDb.sql, shoreDb.sql, "vessel-e2e");
  // A PATCH racing a DELETE of the same record makes no change (404): nearly every write does.
  assert.ok(vessel.changes > WRITES * 0.9, `the vessel logged ${vessel.changes} changes`);
  // Exactly once: every change applied, none twice, every seq received once.
  assert.deepEqual(shore, {
    applied: vessel.changes,
    lastSeq: vessel.maxSeq,
    inbox: vessel.changes,
  });
  assert.deepEqual(
    await shoreRecords(shoreDb.sql, "vessel-e2e"),
    await vesselRecords(vesselDb.sql),
  );
}

/** Drives {@linkcode WRITES} writes, running each fault once after its write count, every one. */
async function driveWithFaults(port: number, faults: Record<number, () => Promise<void>>) {
  await drive(() => port, WRITES, {
    onWrite: async (done) => {
      const fault = faults[done];
      delete faults[done];
      await fault?.();
    },
  });
  assert.deepEqual(Object.keys(faults), []);
}

Deno.test("one vessel and one shore: 2,000 mixed writes are applied exactly once and all acknowledged", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase({ migrated: false });
  await using broker = await startMosquitto();
  await using shore = await gateway(shoreEnv(shoreDb, broker));
  await shore.port();
  const port = freePort();
  await using vessel = await gateway(vesselEnv(vesselDb, broker, port));
  await vessel.port();
  await drive(() => port, WRITES);
  await assertSynced(vesselDb, shoreDb, port);
});

Deno.test("shore down for the whole run, then started: it catches up in full", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase({ migrated: false });
  await using broker = await startMosquitto();
  const port = freePort();
  await using vessel = await gateway(vesselEnv(vesselDb, broker, port));
  await vessel.port();
  await drive(() => port, WRITES);
  await using shore = await gateway(shoreEnv(shoreDb, broker));
  await shore.port();
  await assertSynced(vesselDb, shoreDb, port);
});

Deno.test("the vessel killed -9 three times and the broker replaced twice mid-run: still exactly once", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase({ migrated: false });
  await using broker = await startMosquitto();
  await using shore = await gateway(shoreEnv(shoreDb, broker));
  await shore.port();
  const port = freePort();
  const env = vesselEnv(vesselDb, broker, port);
  let vessel: GatewayProcess = await gateway(env);
  await vessel.port();
  const killVessel = async () => {
    await vessel.stop("SIGKILL");
    vessel = await gateway(env);
  };
  const replaceBroker = async () => {
    await broker.kill();
    await broker.restart();
  };
  const faults: Record<number, () => Promise<void>> = {
    300: killVessel,
    600: replaceBroker,
    900: killVessel,
    1_200: replaceBroker,
    1_500: killVessel,
  };
  try {
    await driveWithFaults(port, faults);
    await assertSynced(vesselDb, shoreDb, port);
  } finally {
    await vessel.stop("SIGKILL");
  }
});

Deno.test("the shore killed -9 twice mid-run: it resumes from its database, still exactly once", async () => {
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase({ migrated: false });
  await using broker = await startMosquitto();
  const env = shoreEnv(shoreDb, broker);
  let shore: GatewayProcess = await gateway(env);
  await shore.port();
  const port = freePort();
  await using vessel = await gateway(vesselEnv(vesselDb, broker, port));
  await vessel.port();
  const restart = async () => {
    await shore.stop("SIGKILL");
    shore = await gateway(env);
  };
  const faults: Record<number, () => Promise<void>> = { 500: restart, 1_300: restart };
  try {
    await driveWithFaults(port, faults);
    await assertSynced(vesselDb, shoreDb, port);
  } finally {
    await shore.stop("SIGKILL");
  }
});

Deno.test("two shore processes in one group: when one is killed, the other receives every new change", async () => {
  await using db = await freshDatabase({ migrated: false });
  await using broker = await startMosquitto();
  const env = (id: string) => ({
    ...shoreEnv(db, broker),
    VESSEL_ID: id,
    SHORE_SHARED_GROUP: "fleet",
  });
  await using a = await gateway(env("shore-a"));
  await using b = await gateway(env("shore-b"));
  await a.waitForLog(/"msg":"MQTT connected"/);
  await b.waitForLog(/"msg":"MQTT connected"/);
  const pub = await rawClient(broker.url);
  const lastSeq = async () => {
    const [row] = await db.sql<{ n: number }[]>`
      select coalesce(max(last_seq), 0)::int8 as n from shore_positions`;
    return row!.n;
  };
  try {
    // Until both have subscribed, a change may go nowhere: probe with one-change vessels.
    let probes = 0;
    await waitUntil(async () => {
      await publishAll(pub, [new SimulatedVessel(`probe-${probes++}`).create()]);
      const [row] = await db.sql`select 1 from shore_positions where last_seq = 1 limit 1`;
      return row !== undefined;
    }, "the group receives");
    const v = new SimulatedVessel("vessel-x");
    await publishAll(pub, Array.from({ length: 300 }, () => v.mixed()));
    await waitUntil(async () => await lastSeq() === v.seq, "the first 300 are applied");

    await b.stop("SIGKILL");
    // Let the broker see the closed socket; a member's session ends with its connection.
    await new Promise((r) => setTimeout(r, 500));
    // No vessel answers catch-up requests here: every change must reach shore-a live.
    await publishAll(pub, Array.from({ length: 300 }, () => v.mixed()));
    await waitUntil(
      async () => await lastSeq() === v.seq,
      "the next 300 are applied by shore-a",
      20_000,
    );
    const [row] = await db.sql<{ applied: number }[]>`
      select applied_count as applied from shore_positions where vessel_id = 'vessel-x'`;
    assert.equal(row!.applied, v.seq);
  } finally {
    await pub.endAsync();
  }
});
