import assert from "node:assert/strict";
import { freshDatabase } from "../../support/pg.ts";
import { waitUntil } from "../../support/wait.ts";
import { silentLogger } from "../../../core/log.ts";
import type { Sql } from "../../../db/connection.ts";
import { type OutboxRow, vesselState } from "../../../db/vessel/outbox.ts";
import { Watermark } from "../../../sync/vessel/watermark.ts";

const row = (epoch: string, seq: number): OutboxRow => ({
  id: seq,
  entity: "crew",
  epoch,
  seq,
  json: "{}",
});

Deno.test("the watermark rises over contiguous PUBACKs only, is raised by shore's ack, and is written to vessel_state", async () => {
  await using db = await freshDatabase();
  const { epoch } = await vesselState(db.sql);
  const released: number[] = [];
  const w = new Watermark({
    sql: db.sql,
    log: silentLogger,
    ackMode: "shore",
    maxAbove: 100,
    onReleased: (n) => released.push(n),
  });
  w.seed(epoch, 0);

  // PUBACKs out of order: 1, 3, 4 (2 is held back): the mark stops at 1, then runs to 4.
  w.published(row(epoch, 1));
  w.published(row(epoch, 3));
  w.published(row(epoch, 4));
  assert.equal(w.mark.seq, 1);
  assert.deepEqual([...w.mark.above].sort(), [3, 4]);
  w.published(row(epoch, 2));
  assert.equal(w.mark.seq, 4);
  assert.equal(w.mark.above.size, 0);
  await waitUntil(
    async () => (await vesselState(db.sql)).publishedSeq === 4,
    "the watermark written (batched)",
  );

  // Seq 5's PUBACK is lost; shore's ack of 6 says both were published.
  w.published(row(epoch, 6));
  assert.equal(w.mark.seq, 4);
  w.acked(epoch, 6);
  assert.equal(w.mark.seq, 6);
  await w.stop();
  assert.equal((await vesselState(db.sql)).publishedSeq, 6);

  // Another epoch's ack moves nothing; a refusal of another epoch is not kept.
  w.acked(crypto.randomUUID(), 100);
  assert.equal(w.mark.seq, 6);
  w.refuse(crypto.randomUUID(), [7]);
  assert.equal(w.refused.size, 0);
  assert.deepEqual(released, [], "ACK_MODE=shore: a PUBACK acknowledges nothing");
});

Deno.test("the watermark: refused seqs are kept until PUBACKed or a new epoch, and an ack before the first read counts", async () => {
  await using db = await freshDatabase();
  const { epoch } = await vesselState(db.sql);
  const w = new Watermark({
    sql: db.sql,
    log: silentLogger,
    ackMode: "shore",
    maxAbove: 2,
    onReleased: () => {},
  });
  // Shore's ack arrived before the publisher read the database's watermark (0).
  w.acked(epoch, 3);
  w.seed(epoch, 0);
  assert.equal(w.mark.seq, 3);

  w.refuse(epoch, [4, 5]);
  assert.deepEqual([...w.refused].sort(), [4, 5]);
  w.refuse(epoch, [6]);
  assert.equal(w.refused.size, 2, "no more than maxAbove remembered");
  w.published(row(epoch, 4));
  assert.deepEqual([...w.refused], [5]);

  const next = crypto.randomUUID();
  w.seed(next, 0);
  assert.equal(w.mark.epoch, next);
  assert.equal(w.mark.seq, 0);
  assert.equal(w.refused.size, 0, "a new epoch starts over");
  await w.stop();
});

Deno.test("the watermark is written one write at a time, however many PUBACKs arrive meanwhile", async () => {
  // A database that answers only when told, and counts the writes it gets.
  const writes: number[] = [];
  let inFlight = 0;
  let most = 0;
  const answers: (() => void)[] = [];
  const sql = ((_strings: TemplateStringsArray, seq: number) => {
    writes.push(seq);
    most = Math.max(most, ++inFlight);
    return new Promise<void>((resolve) =>
      answers.push(() => {
        inFlight--;
        resolve();
      })
    );
  }) as unknown as Sql;
  const epoch = crypto.randomUUID();
  const w = new Watermark({
    sql,
    log: silentLogger,
    ackMode: "shore",
    maxAbove: 100,
    onReleased: () => {},
  });
  w.seed(epoch, 0);
  // 3,000 PUBACKs in one go (a few frames' rows): the first past the batch size starts a write.
  for (let seq = 1; seq <= 3_000; seq++) w.published(row(epoch, seq));
  assert.deepEqual(writes, [1024]);
  answers.shift()!();
  await waitUntil(() => writes.length === 2, "the second write, after the first");
  assert.deepEqual(writes, [1024, 3000]);
  const stopped = w.stop();
  answers.shift()!();
  await stopped;
  assert.equal(most, 1);
  assert.deepEqual(writes, [1024, 3000]);
});
