/**
 * The fleet simulator (tests/support/fleet-sim.ts), CI-sized: 20 protocol peers (quiet,
 * chatty, two with a backlog, one of which loses messages and must answer catch-up requests)
 * against a real shore on PostgreSQL through Mosquitto. Every change is applied exactly once
 * and every peer is acknowledged. The 200-vessel run is bench/fleet200.ts.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { startShore } from "../support/fleet.ts";
import { createFleet, type PeerKind } from "../support/fleet-sim.ts";
import { waitUntil, withDeadline } from "../support/wait.ts";
import { parsePayload, statusSchema, topicsOf } from "../../sync/protocol.ts";
import mqtt from "mqtt";

const PEERS = 20;
const LOSSY = 0;

Deno.test("20 simulated vessels through Mosquitto: every change applied exactly once, every peer acknowledged", async () => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const shore = await startShore(broker.url, db.sql);
  const kinds: PeerKind[] = Array.from(
    { length: PEERS },
    (_, i) =>
      i < 2
        ? { name: "backlog", perSecond: 0, backlog: 1_500 }
        : i < 6
        ? { name: "chatty", perSecond: 10, backlog: 0 }
        : { name: "quiet", perSecond: 1, backlog: 0 },
  );
  const fleet = createFleet(kinds, (i) => ({
    id: `sim-${i}`,
    urls: [broker.url],
    protocolVersion: 5,
    ackTimeoutMs: 3_000,
    // Peer 0 (a backlog) loses every 25th change on first send: only catch-up brings it.
    skipFirstSend: i === LOSSY ? (seq) => seq % 25 === 0 : undefined,
  }));
  try {
    await withDeadline(fleet.connected(), "every simulated vessel connects", 20_000);
    fleet.start();
    await new Promise((r) => setTimeout(r, 5_000)); // quiet and chatty peers change meanwhile
    // Timers slip on a loaded machine: drive on until every peer has made a change.
    await waitUntil(
      () => fleet.peers.every(({ peer }) => peer.seq > 0),
      "every peer makes a change",
    );
    fleet.stopDriving();
    await withDeadline(fleet.allAcknowledged(), "every simulated vessel is acknowledged", 45_000);

    const made = fleet.peers.map(({ peer }) => peer.seq);
    const total = made.reduce((a, b) => a + b, 0);
    const rows = await db.sql<{ vessel_id: string; last_seq: number; applied_count: number }[]>`
      select vessel_id, last_seq::int, applied_count::int from shore_positions`;
    const byId = new Map(rows.map((r) => [r.vessel_id, r]));
    for (const { peer } of fleet.peers) {
      assert.equal(byId.get(peer.id)?.last_seq, peer.seq, `${peer.id}'s last seq ashore`);
      assert.equal(byId.get(peer.id)?.applied_count, peer.seq, `${peer.id} applied once each`);
      assert.equal(peer.acked, peer.seq, `${peer.id} acknowledged`);
      assert.equal(peer.pending, 0, `${peer.id} holds nothing unacknowledged`);
    }
    const [inbox] = await db.sql<{ n: number }[]>`select count(*)::int as n from shore_inbox`;
    assert.equal(inbox!.n, total);
    const lossy = fleet.peers[LOSSY]!.peer;
    assert.ok(lossy.stats.catchupServed > 0, "the lossy peer answered catch-up requests");

    // Every peer's retained status says online, with its epoch.
    const observer = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    const statuses = new Map<string, unknown>();
    observer.on("message", (topic, payload) => {
      statuses.set(topic, parsePayload(payload, statusSchema));
    });
    await observer.subscribeAsync("vessel/+/sync/system/status", { qos: 1 });
    await withDeadline(
      (async () => {
        while (statuses.size < PEERS) await new Promise((r) => setTimeout(r, 50));
      })(),
      "every peer's retained status",
      10_000,
    );
    for (const { peer } of fleet.peers) {
      const s = statuses.get(topicsOf(peer.id).status) as { status: string; epoch: string };
      assert.equal(s.status, "online");
      assert.equal(s.epoch, peer.vessel.epoch);
    }
    await observer.endAsync();
  } finally {
    await fleet.close();
    await shore.close();
  }
});
