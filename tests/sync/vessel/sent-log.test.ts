import assert from "node:assert/strict";
import { ResendClock, SentLog } from "../../../sync/vessel/sent-log.ts";

Deno.test("the sent log: a send is due for a re-send once it is the delay old with no ack covering it, counted from the send or the last connect", () => {
  let now = 0;
  const log = new SentLog(() => now);
  const e = "epoch-1";
  log.noteSent(e, 10);
  now = 500;
  log.noteSent(e, 20); // the same burst (within a second): its seq rises
  now = 1_500;
  log.noteSent(e, 30); // a new burst
  assert.deepEqual(log.takeExpired(2_000), [], "nothing 2 s old yet");

  now = 2_000;
  assert.deepEqual(log.takeExpired(2_000), [{ epoch: e, seq: 20, at: 0 }], "the first burst");
  assert.deepEqual(log.takeExpired(2_000), [], "taken out");

  // A reconnect restarts the clocks: shore could not ack while the link was down.
  now = 3_400;
  log.restartClocks();
  now = 5_000;
  assert.deepEqual(log.takeExpired(2_000), []);

  // Shore's ack covers the second burst: nothing is left to re-send.
  log.acked(e, 30);
  now = 10_000;
  assert.deepEqual(log.takeExpired(2_000), []);

  log.noteSent(e, 40);
  log.clear();
  now = 20_000;
  assert.deepEqual(log.takeExpired(2_000), [], "cleared: everything is being re-sent anyway");
});

Deno.test("the re-send clock: a shore not heard on this connection is only asked for its ack on the schedule, a moving ack restarts the clocks, a silent heard shore gets the re-send", () => {
  let now = 0;
  const clock = new ResendClock({ baseMs: 1_000, maxMs: 8_000, shoreAcks: true, now: () => now });
  const e = "epoch-1";
  clock.connected();
  clock.noteSent(e, 10);
  now = 999;
  assert.deepEqual(clock.due(), { silent: false, expired: [] });
  now = 1_000;
  assert.deepEqual(clock.due(), { silent: true, expired: [] }, "asked, nothing re-sent");
  assert.equal(clock.delayMs, 2_000, "the question backs off as a re-send would");
  now = 2_000;
  assert.deepEqual(clock.due(), { silent: true, expired: [] }, "2 s after the send");
  now = 7_999;
  assert.equal(clock.due().expired.length, 0, "still under the ceiling");
  now = 8_000;
  assert.deepEqual(clock.due().expired, [{ epoch: e, seq: 10, at: 0 }], "at the ceiling: sent");

  // Heard: shore's ack moved. Outstanding sends start their clocks again at every move.
  clock.noteSent(e, 20);
  now = 8_500;
  clock.progress();
  assert.equal(clock.delayMs, 1_000);
  now = 9_400;
  clock.progress(); // acks keep moving: shore is working through what we sent
  now = 10_300;
  assert.deepEqual(clock.due(), { silent: false, expired: [] });
  now = 10_400; // silent for the whole delay since the last move
  assert.deepEqual(clock.due(), { silent: false, expired: [{ epoch: e, seq: 20, at: 9_400 }] });
  clock.backOff();
  assert.equal(clock.delayMs, 2_000);

  // A reconnect: not heard again until the ack moves.
  clock.noteSent(e, 30);
  clock.connected();
  now = 12_400;
  assert.equal(clock.due().silent, true);

  // ACK_MODE=broker: no shore acks to hear; the schedule is the delay's.
  const broker = new ResendClock({ baseMs: 1_000, maxMs: 8_000, shoreAcks: false, now: () => now });
  broker.noteSent(e, 1);
  now += 1_000;
  assert.deepEqual(broker.due().expired.map((s) => s.seq), [1]);
});
