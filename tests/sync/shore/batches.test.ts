/**
 * The shore's batch queue (sync/shore/batches.ts) shares its write slots by what each vessel
 * was given: a quiet vessel's change is not held behind the batches of busy vessels.
 */
import assert from "node:assert/strict";
import { BatchQueue } from "../../../sync/shore/batches.ts";
import type { Envelope } from "../../../sync/protocol.ts";
import { SimulatedVessel } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";

/** A queue whose writes finish only when the test says so, in the order they started. */
function heldQueue(concurrency: number) {
  const started: { vesselId: string; size: number; finish: () => void }[] = [];
  const queue = new BatchQueue({
    write: (batch) =>
      new Promise<void>((resolve) => {
        started.push({ vesselId: batch[0]!.vesselId, size: batch.length, finish: resolve });
      }),
    onFailure: () => "drop",
    batchDelayMs: 0,
    maxBatch: 1_000,
    concurrency,
    maxBuffered: 1_000_000,
    maxPerVessel: 100_000,
  });
  return { queue, started };
}

const changes = (vessel: SimulatedVessel, n: number): Envelope[] =>
  Array.from({ length: n }, () => vessel.create());

Deno.test("a quiet vessel's one change is written next, before the busy vessels' next batches", async () => {
  const { queue, started } = heldQueue(1);
  const busy = Array.from({ length: 10 }, (_, i) => new SimulatedVessel(`busy-${i}`));
  for (const v of busy) assert.ok(queue.pushAll(changes(v, 3_000)));
  await waitUntil(() => started.length === 1, "the first busy batch starts");
  const quiet = new SimulatedVessel("quiet");
  assert.ok(queue.push(quiet.create()));
  started[0]!.finish();
  await waitUntil(() => started.length === 2, "the next batch starts");
  // Round-robin turns gave the slot to the 9 other busy vessels first.
  assert.deepEqual(
    { vesselId: started[1]!.vesselId, size: started[1]!.size },
    { vesselId: "quiet", size: 1 },
  );

  // The busy vessels still get every slot nobody else wants: everything is written.
  for (let i = 1; i < started.length; i++) {
    started[i]!.finish();
    await waitUntil(
      () => started.length > i + 1 || queue.buffered === 0,
      "the next batch starts, or nothing is left",
    );
  }
  const written = started.reduce((n, s) => n + s.size, 0);
  assert.equal(written, 10 * 3_000 + 1);
});

Deno.test("a vessel just given a batch waits behind those not yet given one", async () => {
  const { queue, started } = heldQueue(1);
  const [a, b, c] = ["a", "b", "c"].map((id) => new SimulatedVessel(id));
  queue.pushAll(changes(a!, 2_000));
  await waitUntil(() => started.length === 1, "a's first batch starts");
  queue.pushAll(changes(b!, 2_000));
  queue.pushAll(changes(c!, 2_000));
  for (let i = 0; i < 5; i++) {
    started[i]!.finish();
    await waitUntil(() => started.length === i + 2, `batch ${i + 2} starts`);
  }
  started[5]!.finish();
  assert.deepEqual(started.map((s) => s.vesselId), ["a", "b", "c", "a", "b", "c"]);
});

Deno.test("a vessel alone may buffer past its bound, but never into the room kept for the others", () => {
  const queue = new BatchQueue({
    write: () => new Promise<void>(() => {}), // never finishes: everything stays buffered
    onFailure: () => "drop",
    batchDelayMs: 60_000,
    maxBatch: 1_000,
    concurrency: 1,
    maxBuffered: 100,
    maxPerVessel: 20,
  });
  const busy = new SimulatedVessel("busy");
  let admitted = 0;
  while (queue.pushAll(changes(busy, 10))) admitted += 10;
  assert.equal(admitted, 80, "a lone vessel fills all but one vessel's bound");
  const quiet = new SimulatedVessel("quiet");
  assert.ok(queue.pushAll(changes(quiet, 10)), "a vessel within its bound is admitted");
  assert.ok(queue.pushAll(changes(quiet, 10)));
  assert.equal(queue.pushAll(changes(quiet, 10)), false, "the shore is full");
  assert.equal(queue.buffered, 100);
  return queue.close(0);
});
