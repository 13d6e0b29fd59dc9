import assert from "node:assert/strict";
import { freshDatabase } from "../../support/pg.ts";
import { SimulatedVessel } from "../../support/fleet.ts";
import { ingest } from "../../../db/shore/inbox.ts";
import { recordPresence } from "../../../db/shore/fleet.ts";
import { GapMonitor } from "../../../sync/shore/gaps.ts";
import type { CatchupRequest } from "../../../sync/protocol.ts";
import { silentLogger } from "../../../core/log.ts";
import type { Sql } from "../../../db/connection.ts";

/** A monitor whose requests are recorded, not sent: waits 1 s, backs off to 4 s. */
function recordingMonitor(sql: Sql) {
  const sent: [string, CatchupRequest][] = [];
  const monitor = new GapMonitor({
    sql,
    log: silentLogger,
    waitMs: 1_000,
    maxBackoffMs: 4_000,
    request: (vesselId, body) => {
      sent.push([vesselId, body]);
      return Promise.resolve(true);
    },
  });
  return { sent, monitor };
}

Deno.test("gap requests wait for the gap to stand still, back off, skip offline vessels, and stop once filled", async (t) => {
  await using db = await freshDatabase();
  const { sent, monitor } = recordingMonitor(db.sql);
  const v = new SimulatedVessel("vessel-gap");
  const changes = Array.from({ length: 6 }, () => v.create());
  await ingest(db.sql, v.vesselId, v.epoch, [changes[0]!, changes[4]!, changes[5]!]);
  const t0 = Date.now();

  await t.step("a new gap is given the wait before it is asked for", async () => {
    assert.equal(await monitor.check(t0), 0);
    assert.equal(await monitor.check(t0 + 999), 0);
    assert.equal(await monitor.check(t0 + 1_000), 1);
    assert.deepEqual(sent.at(-1), ["vessel-gap", { since: 1, limit: 3 }]);
  });

  await t.step("while it stays, requests back off, doubling to the ceiling", async () => {
    assert.equal(await monitor.check(t0 + 2_999), 0);
    assert.equal(await monitor.check(t0 + 3_000), 1); // 2 s after the first
    assert.equal(await monitor.check(t0 + 6_999), 0);
    assert.equal(await monitor.check(t0 + 7_000), 1); // 4 s, the ceiling
    assert.equal(await monitor.check(t0 + 11_000), 1); // 4 s again
  });

  await t.step("an offline vessel is not asked; once online it is", async () => {
    await recordPresence(db.sql, { vesselId: v.vesselId, status: "offline", at: undefined });
    assert.equal(await monitor.check(t0 + 60_000), 0);
    await recordPresence(db.sql, { vesselId: v.vesselId, status: "online", at: undefined });
    assert.equal(await monitor.check(t0 + 60_000), 0); // a gap seen anew waits again
    assert.equal(await monitor.check(t0 + 61_000), 1);
  });

  await t.step(
    "when the gap moves the wait starts over, and a filled gap is not asked for",
    async () => {
      await ingest(db.sql, v.vesselId, v.epoch, [changes[1]!]);
      assert.equal(await monitor.check(t0 + 70_000), 0);
      assert.equal(await monitor.check(t0 + 71_000), 1);
      assert.deepEqual(sent.at(-1), ["vessel-gap", { since: 2, limit: 2 }]);
      const result = await ingest(db.sql, v.vesselId, v.epoch, [changes[3]!, changes[2]!]);
      assert.deepEqual(result, {
        duplicates: 0,
        applied: 4,
        lastSeq: 6,
        waiting: false,
        conflicts: 0,
        deadLettered: [],
        forgeries: [],
        refused: {},
      });
      assert.equal(await monitor.check(t0 + 200_000), 0);
    },
  );
});

Deno.test("a shed tail, with nothing behind it in the inbox, is asked for until the position reaches it", async () => {
  await using db = await freshDatabase();
  const { sent, monitor } = recordingMonitor(db.sql);
  const v = new SimulatedVessel("vessel-shed");
  const changes = Array.from({ length: 5 }, () => v.create());
  await ingest(db.sql, v.vesselId, v.epoch, changes.slice(0, 2));
  monitor.shed(v.vesselId, v.epoch, 5); // seqs 3..5 shed from memory: the inbox shows no gap
  const t0 = Date.now();
  assert.equal(await monitor.check(t0), 0);
  assert.equal(await monitor.check(t0 + 1_000), 1);
  assert.deepEqual(sent.at(-1), ["vessel-shed", { since: 2, limit: 3 }]);

  await ingest(db.sql, v.vesselId, v.epoch, changes.slice(2));
  assert.equal(await monitor.check(t0 + 100_000), 0);
  monitor.shed(v.vesselId, v.epoch, 4); // reached already: never asked for
  assert.equal(await monitor.check(t0 + 200_000), 0);
  assert.equal(sent.length, 1);
});
