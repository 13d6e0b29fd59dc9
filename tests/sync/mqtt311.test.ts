/**
 * MQTT 3.1.1 (`MQTT_PROTOCOL=3.1.1`) against a broker that speaks nothing else: a NATS node of
 * the test's own (MQTT 3.1.1 only, QoS 0 and 1). Every guarantee holds: the vessel's changes,
 * alerts included, are applied ashore exactly once and acknowledged, through a kill -9 of the
 * broker.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { startNatsMqtt } from "../support/nats_node.ts";
import { startVessel } from "../support/vessel.ts";
import { startShore } from "../support/fleet.ts";
import { waitUntil } from "../support/wait.ts";
import { createSession } from "../../sync/session.ts";
import { parseConfig } from "../../config.ts";
import { createLogger } from "../../core/log.ts";

const V311 = { MQTT_PROTOCOL: "3.1.1" };

Deno.test("over MQTT 3.1.1 on NATS, alerts go at QoS 1 and every change is applied once and acknowledged, through a broker kill -9", async () => {
  await using nats = await startNatsMqtt();
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  const shore = await startShore(nats.url, shoreDb.sql, { env: V311 });
  try {
    await using vessel = await startVessel({ sql: vesselDb.sql, brokerUrl: nats.url, env: V311 });
    const write = async (n: number) => {
      for (let i = 0; i < n; i++) {
        await vessel.records.create("alerts", {
          equipmentId: "e",
          severity: "critical",
          message: `a${i}`,
        });
        await vessel.records.create("work_orders", { title: `w${i}`, equipmentId: "e" });
      }
    };
    await write(10);
    await waitUntil(
      async () => (await vessel.report()).lastAckedSeq === 20,
      "shore acknowledges all 20 changes",
    );
    await nats.restart(); // kill -9, then the same store
    await write(5);
    await waitUntil(
      async () => (await vessel.report()).lastAckedSeq === 30,
      "shore acknowledges all 30 changes after the broker's kill -9",
    );
    const [applied] = await shoreDb.sql<{ n: number; alerts: number }[]>`
      select count(*)::int as n, count(*) filter (where entity = 'alerts')::int as alerts
      from shore_records`;
    assert.deepEqual({ ...applied }, { n: 30, alerts: 15 });
    const [pos] = await shoreDb.sql<{ last_seq: number }[]>`select last_seq from shore_positions`;
    assert.equal(Number(pos!.last_seq), 30);
    // QoS 2 was never attempted: NATS would have refused it and closed the connection.
    const counted = await vessel.metrics.published.get();
    assert.ok(counted.values.some((v) => v.labels.entity === "alerts"));
  } finally {
    await shore.close();
  }
});

Deno.test("a broker that refuses MQTT 5 is named in one log line saying what to set", async () => {
  await using nats = await startNatsMqtt();
  const lines: string[] = [];
  const session = createSession({
    mqtt: parseConfig({ MQTT_BROKER_URL: nats.url }).mqtt,
    clientId: `bosun-t-${crypto.randomUUID().slice(0, 8)}`,
    log: createLogger({ level: "debug", write: (l) => lines.push(l) }),
    backoff: { baseMs: 50, ceilingMs: 100 },
  });
  try {
    await waitUntil(
      () => session.reconnectAttempts >= 3,
      "three refused connection attempts",
    );
  } finally {
    await session.close();
  }
  const hints = lines.filter((l) => l.includes("set MQTT_PROTOCOL=3.1.1"));
  assert.equal(hints.length, 1, `one hint, not one per attempt:\n${lines.join("\n")}`);
  assert.equal(session.connected, false);
});
