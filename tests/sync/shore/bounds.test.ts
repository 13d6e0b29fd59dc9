/**
 * What one vessel can park ashore is bounded: seqs far ahead, new epochs, rows past a gap.
 */
import assert from "node:assert/strict";
import { startShoreRig } from "../../support/shore-rig.ts";
import { publishAll, SimulatedVessel, valueOf } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import { pruneInbox } from "../../../db/shore/inbox.ts";
import { reportedGaps } from "../../../db/shore/positions.ts";
import type { Sql } from "../../../db/connection.ts";

const limits = { seqWindow: 100, maxLiveEpochs: 2, maxParked: 50 };
const waitingOf = async (sql: Sql, vesselId: string) => {
  const [row] = await sql<{ n: number }[]>`
    select count(*)::int as n from shore_inbox
    where vessel_id = ${vesselId} and applied_at is null`;
  return row!.n;
};

Deno.test("a forged seq 2^53 - 1 is refused, never stored, never asked for", async () => {
  await using rig = await startShoreRig({ limits });
  const { db, shore, pub } = rig;
  const v = new SimulatedVessel("vessel-far");
  const first = v.create();
  const far = { ...v.create(), seq: Number.MAX_SAFE_INTEGER };
  const nearEdge = { ...v.create(), seq: limits.seqWindow };
  await publishAll(pub, [first, far, nearEdge]);
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.refused, { reason: "seq_window" }) === 1,
    "the far seq is refused",
  );
  await waitUntil(async () => await waitingOf(db.sql, v.vesselId) === 1, "seq 100 waits");
  const [max] = await db.sql<{ seq: number }[]>`
    select max(seq) as seq from shore_inbox where vessel_id = ${v.vesselId}`;
  assert.equal(Number(max!.seq), limits.seqWindow);
  // A status claiming that seq is not a gap to ask for either.
  await pub.publishAsync(
    "vessel/vessel-far/sync/system/status",
    JSON.stringify({ status: "online", epoch: v.epoch, lastSeq: Number.MAX_SAFE_INTEGER }),
    { qos: 1, retain: true },
  );
  await waitUntil(async () => {
    const [row] = await db
      .sql`select reported_seq from shore_vessels where vessel_id = 'vessel-far'`;
    return Number(row?.reported_seq) === Number.MAX_SAFE_INTEGER;
  }, "the status is recorded");
  assert.equal((await reportedGaps(db.sql)).length, 0);
});

Deno.test("a vessel's new epochs beyond the live ones are refused", async () => {
  await using rig = await startShoreRig({ limits });
  const { db, shore, pub } = rig;
  for (let i = 0; i < 4; i++) {
    await publishAll(pub, [new SimulatedVessel("vessel-epochs").create()]);
  }
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.refused, { reason: "epoch_limit" }) === 2,
    "the third and fourth epochs are refused",
  );
  const [row] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from shore_positions where vessel_id = 'vessel-epochs'`;
  assert.equal(row!.n, limits.maxLiveEpochs);
});

Deno.test("rows parked past a gap are bounded per vessel, and a stale epoch's are pruned", async () => {
  await using rig = await startShoreRig({ limits, batchDelayMs: 50 });
  const { db, shore, pub } = rig;
  const old = new SimulatedVessel("vessel-parks");
  const changes = Array.from({ length: 90 }, () => old.create());
  // Seq 1 never comes: everything parks. 40 fit; the rest would pass the bound of 50.
  await publishAll(pub, changes.slice(1, 41));
  await waitUntil(async () => await waitingOf(db.sql, old.vesselId) === 40, "40 rows park");
  await publishAll(pub, changes.slice(41));
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.refused, { reason: "inbox_full" }) > 0,
    "parking past the bound is refused",
  );
  assert.ok(await waitingOf(db.sql, old.vesselId) <= limits.maxParked);

  // The vessel moves to a new epoch (its database replaced): the old epoch's parked rows
  // can never be applied, and the prune removes them.
  const current = new SimulatedVessel("vessel-parks");
  await publishAll(pub, [current.create()]);
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.applied) === 1,
    "the new epoch's change is applied",
  );
  assert.ok(await pruneInbox(db.sql, 30) > 0);
  assert.equal(await waitingOf(db.sql, old.vesselId), 0);
});
