/**
 * 200 simulated vessels against one shore, with the broker killed (-9) and restarted while
 * they send (issue 13's fleet in the chaos suite). CI-sized: 2 vessels back from an outage
 * with 2,000 changes each, 10 chatty (5 changes/s), the rest quiet (a change every 2 s), about
 * a minute in all. FLEET_CHAOS_FULL=1 runs the full size: 4 × 20,000, 20 chatty at 10/s.
 * Every change is applied exactly once and every vessel is acknowledged with nothing held.
 * The figures of a 200-vessel fleet are bench/fleet200.ts's.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { startShore } from "../support/fleet.ts";
import { createFleet, type PeerKind } from "../support/fleet-sim.ts";
import { waitUntil, withDeadline } from "../support/wait.ts";

const FULL = Deno.env.get("FLEET_CHAOS_FULL") === "1";
const VESSELS = 200;
const BACKLOG_VESSELS = FULL ? 4 : 2;
const BACKLOG = FULL ? 20_000 : 2_000;
const CHATTY = FULL ? 20 : 10;
const CHATTY_RATE = FULL ? 10 : 5;

Deno.test({
  name:
    "200 vessels, broker killed mid-run: every change applied exactly once, every vessel acknowledged",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    await using db = await freshDatabase();
    await using broker = await startMosquitto();
    const shore = await startShore(broker.url, db.sql);
    const kinds: PeerKind[] = Array.from(
      { length: VESSELS },
      (_, i) =>
        i < BACKLOG_VESSELS
          ? { name: "backlog", perSecond: 0, backlog: BACKLOG }
          : i < BACKLOG_VESSELS + CHATTY
          ? { name: "chatty", perSecond: CHATTY_RATE, backlog: 0 }
          : { name: "quiet", perSecond: 0.5, backlog: 0 },
    );
    const fleet = createFleet(kinds, (i) => ({
      id: `f200-${i}`,
      urls: [broker.url],
      protocolVersion: 5,
      ackTimeoutMs: 3_000,
    }));
    try {
      await withDeadline(fleet.connected(), `${VESSELS} simulated vessels connect`, 60_000);
      fleet.start();
      await new Promise((r) => setTimeout(r, 3_000));
      // The fault: the broker dies with whatever it held (no persistence) and comes back.
      await broker.kill();
      await new Promise((r) => setTimeout(r, 1_000));
      await broker.restart();
      await withDeadline(fleet.connected(), "every vessel reconnects", 60_000);
      await new Promise((r) => setTimeout(r, 4_000));
      // Timers slip on a loaded machine: drive on until every vessel has made a change.
      await waitUntil(
        () => fleet.peers.every(({ peer }) => peer.seq > 0),
        "every vessel makes a change",
      );
      fleet.stopDriving();
      await withDeadline(
        fleet.allAcknowledged(),
        "every vessel is acknowledged",
        FULL ? 1_200_000 : 120_000,
      );

      const rows = await db.sql<{ vessel_id: string; last_seq: number; applied_count: number }[]>`
        select vessel_id, last_seq::int, applied_count::int from shore_positions`;
      const byId = new Map(rows.map((r) => [r.vessel_id, r]));
      for (const { peer } of fleet.peers) {
        assert.equal(byId.get(peer.id)?.last_seq, peer.seq, `${peer.id}'s last seq ashore`);
        assert.equal(byId.get(peer.id)?.applied_count, peer.seq, `${peer.id} applied once each`);
        assert.equal(peer.pending, 0, `${peer.id} holds nothing unacknowledged`);
      }
      const made = fleet.peers.reduce((n, { peer }) => n + peer.seq, 0);
      const [inbox] = await db.sql<{ n: number }[]>`select count(*)::int as n from shore_inbox`;
      assert.equal(inbox!.n, made, "one inbox row per change");
      assert.ok(made >= BACKLOG_VESSELS * BACKLOG + VESSELS - BACKLOG_VESSELS);
    } finally {
      await fleet.close();
      await shore.close();
    }
  },
});
