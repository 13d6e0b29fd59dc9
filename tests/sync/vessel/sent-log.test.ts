import assert from "node:assert/strict";
import { SentLog } from "../../../sync/vessel/sent-log.ts";

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
