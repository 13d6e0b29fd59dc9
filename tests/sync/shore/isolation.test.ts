/**
 * One vessel's failures never take the shore's capacity from another vessel.
 */
import assert from "node:assert/strict";
import { startShoreRig } from "../../support/shore-rig.ts";
import { publishAll, SimulatedVessel } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import type { Sql } from "../../../db/connection.ts";

const lastSeq = async (sql: Sql, vesselId: string) => {
  const [row] = await sql<{ last_seq: number }[]>`
    select last_seq from shore_positions where vessel_id = ${vesselId}`;
  return row?.last_seq ?? 0;
};

Deno.test("a vessel whose every batch fails leaves the shore's one ingest slot to the others", async () => {
  // One slot and one change a batch: the shore's whole capacity is what the failing vessel
  // could hold. Before the fix it held the slot through its back-off sleeps and went first
  // again after each (its lane never emptied), so the innocent vessel waited behind
  // 60 × 5 failed attempts.
  await using rig = await startShoreRig({ concurrency: 1, maxBatch: 1 });
  const { db, pub } = rig;
  // A failure that is neither a data error nor an outage: retried, and the vessel's alone.
  await db.sql.unsafe(`
    create function refuse_hostile() returns trigger language plpgsql as $$
    begin
      if new.vessel_id = 'vessel-failing' then raise exception 'refused for the test'; end if;
      return new;
    end $$;
    create trigger refuse_hostile before insert on shore_inbox
      for each row execute function refuse_hostile()`);
  const failing = new SimulatedVessel("vessel-failing");
  const innocent = new SimulatedVessel("vessel-innocent");
  await publishAll(pub, Array.from({ length: 60 }, () => failing.create()));
  await publishAll(pub, [innocent.create(), innocent.create(), innocent.create()]);
  await waitUntil(
    async () => await lastSeq(db.sql, innocent.vesselId) === 3,
    "the innocent vessel's 3 changes are applied while the failing vessel retries",
    20_000,
  );
  assert.equal(await lastSeq(db.sql, failing.vesselId), 0);
});
