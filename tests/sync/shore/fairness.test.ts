/**
 * A quiet vessel's change is applied while busy vessels drain their backlogs, not after a
 * turn of each of them: the shore's write slots go by what each vessel was given
 * (sync/shore/batches.ts). Through a real broker and PostgreSQL.
 */
import assert from "node:assert/strict";
import { startShoreRig } from "../../support/shore-rig.ts";
import { SimulatedVessel } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import { topicsOf } from "../../../sync/protocol.ts";
import { cutFrames, FRAME_CONTENT_TYPE } from "../../../sync/frame.ts";
import { deriveMessageId } from "../../../sync/message-id.ts";
import type { Envelope } from "../../../sync/protocol.ts";

const BUSY = 5;
const BACKLOG = 2_000;
const BATCH = 500;

Deno.test("a quiet vessel's change is applied next while 5 busy vessels drain 2,000-change backlogs", async () => {
  // One write slot and batches of 500: each busy vessel needs 4.
  await using rig = await startShoreRig({ concurrency: 1, maxBatch: BATCH });
  const { db, pub, shore } = rig;
  // The order batches are written in: every batch first upserts its vessel's position row
  // (setting last_received_at; applying sets last_seq only).
  await db.sql.unsafe(`
    create table batch_order (n bigserial primary key, vessel_id text not null);
    create function note_batch() returns trigger language plpgsql as $$
    begin insert into batch_order (vessel_id) values (new.vessel_id); return new; end $$;
    create trigger note_batch after insert or update of last_received_at on shore_positions
      for each row execute function note_batch()`);

  const publish = async (vessel: SimulatedVessel, n: number) => {
    const envelopes: Envelope[] = Array.from({ length: n }, () => {
      const e = vessel.create();
      return { ...e, messageId: deriveMessageId(vessel.vesselId, e.epoch, e.seq) };
    });
    for (const frame of cutFrames(envelopes)) {
      await pub.publishAsync(topicsOf(vessel.vesselId).frames, frame.payload as never, {
        qos: 1,
        properties: { contentType: FRAME_CONTENT_TYPE },
      });
    }
  };

  // The shore's writes wait (its first batch holds the one slot) until every backlog and the
  // quiet change are in its queue.
  const blocker = await db.sql.reserve();
  await blocker`begin`;
  await blocker`lock table shore_positions in share mode`;
  const quiet = new SimulatedVessel("vessel-quiet");
  let quietArrived = false;
  const off = shore.session.onMessage((topic) => {
    if (topic.startsWith(`vessel/${quiet.vesselId}/`)) quietArrived = true;
  });
  try {
    const busy = Array.from({ length: BUSY }, (_, i) => new SimulatedVessel(`vessel-busy-${i}`));
    for (const v of busy) await publish(v, BACKLOG);
    await publish(quiet, 1);
    await waitUntil(() => quietArrived, "the quiet vessel's change reaches the shore");
  } finally {
    off();
    await blocker`commit`;
    blocker.release();
  }

  await waitUntil(async () => {
    const [row] = await db.sql<{ n: number }[]>`
      select coalesce(sum(last_seq), 0)::int as n from shore_positions`;
    return row!.n === BUSY * BACKLOG + 1;
  }, "every change is applied");
  const order = (await db.sql<{ vessel_id: string }[]>`
    select vessel_id from batch_order order by n`).map((r) => r.vessel_id);
  // The batch that held the slot, then the quiet vessel's: not after a turn of each other busy vessel.
  assert.equal(order.indexOf(quiet.vesselId), 1, `batch order: ${order.join(" ")}`);
  assert.equal(order.length, BUSY * Math.ceil(BACKLOG / BATCH) + 1, "one batch per 500");
});
