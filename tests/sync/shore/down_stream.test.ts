/**
 * sync/shore/down-stream.ts's arithmetic, with fake time: when the down stream re-sends, what a
 * pass sends, how the window holds a silent vessel.
 */
import assert from "node:assert/strict";
import { DownStream } from "../../../sync/shore/down-stream.ts";

const EPOCH = "00000000-0000-4000-8000-000000000001";
const rows = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => ({ seq: from + i }));
const stream = () => new DownStream("v1", { ackTimeoutMs: 1_000, maxResendMs: 4_000 });

Deno.test("a restart sends at once only what was never PUBACKed, the rest after the delay", () => {
  const s = stream();
  s.seed({ epoch: EPOCH, lastSeq: 10, publishedSeq: 6, ackedSeq: 2 });
  s.startPass(0);
  assert.deepEqual(s.pass, { afterSeq: 6, resendUntil: 0 }, "the pass starts above the mark");
  assert.deepEqual(s.select(rows(7, 10)).map((r) => r.seq), [7, 8, 9, 10]);
  assert.equal(s.dueResend(999), null, "PUBACKed before the restart: a full delay from it");
  assert.deepEqual(s.dueResend(1_000), { fromSeq: 3, toSeq: 6, delayMs: 1_000 });
  assert.equal(s.passRequest, "all");
  s.seed({ epoch: EPOCH, lastSeq: 10, publishedSeq: 6, ackedSeq: 2 });
  s.startPass(1_000);
  assert.deepEqual(s.pass, { afterSeq: 2, resendUntil: 6 });
  assert.deepEqual(
    s.select(rows(3, 10)).map((r) => r.seq),
    [3, 4, 5, 6, 7, 8, 9, 10],
    "the re-send range again, and past it what never got a PUBACK",
  );
});

Deno.test("a re-send covers what was sent more than the delay ago, not what was sent since", () => {
  const s = stream();
  s.claimed(EPOCH, 500);
  s.noteSent(500, 0);
  s.claimed(EPOCH, 1_000);
  s.noteSent(1_000, 1_500);
  assert.deepEqual(s.dueResend(1_000), { fromSeq: 1, toSeq: 500, delayMs: 1_000 });
  s.startPass(1_000);
  // Every claimed row is walked (the pass runs to the last claimed row), up to 500 again.
  const picked = s.select(rows(1, 1_000).map((r) => ({ ...r })));
  assert.equal(picked.length, 1_000, "seqs never PUBACKed go too");
  s.pass = null;
  s.noteSent(500, 1_600); // the re-send, within a second of the burst at 1.5 s
  assert.equal(s.dueResend(3_499), null, "the delay doubled while the vessel stays silent");
  assert.deepEqual(s.dueResend(3_500), { fromSeq: 1, toSeq: 1_000, delayMs: 2_000 });
  assert.equal(s.resendDelay, 4_000, "up to its ceiling");
});

Deno.test("the vessel's ack resets the delay and drops what it covers from the sent log", () => {
  const s = stream();
  s.claimed(EPOCH, 20);
  s.noteSent(10, 0);
  s.noteSent(20, 1_000);
  s.resendDelay = 4_000;
  assert.equal(s.acked(EPOCH, 10, 1_200), true);
  assert.equal(s.resendDelay, 1_000);
  assert.deepEqual(s.sentLog, [{ seq: 20, at: 1_000 }]);
  assert.equal(s.mark.seq, 10, "acknowledged is published");
  assert.equal(s.acked(EPOCH, 10, 1_300), false, "the same ack again moves nothing");
  assert.equal(s.acked(EPOCH, 20, 1_400), true);
  assert.equal(s.dueResend(10_000), null, "nothing left to re-send");
});

Deno.test("the window holds a silent vessel's claims; its ack opens it", () => {
  const s = stream();
  s.seed({ epoch: EPOCH, lastSeq: 0, publishedSeq: 0, ackedSeq: 0 });
  assert.equal(s.room(100), 100);
  s.claimed(EPOCH, 100);
  assert.equal(s.room(100), 0, "a window's worth claimed: nothing more");
  s.acked(EPOCH, 40, 1);
  assert.equal(s.room(100), 40);
});

Deno.test("an ack that arrives before the stream read the database counts once it does", () => {
  const s = stream();
  assert.equal(s.acked(EPOCH, 7, 1), false);
  s.seed({ epoch: EPOCH, lastSeq: 9, publishedSeq: 3, ackedSeq: 5 });
  assert.equal(s.ackedSeq, 7);
  assert.equal(s.mark.seq, 7);
});

Deno.test("a reconnect restarts every send's clock; without a session everything goes again", () => {
  const s = stream();
  s.seed({ epoch: EPOCH, lastSeq: 30, publishedSeq: 30, ackedSeq: 0 });
  s.passRequest = null;
  s.noteSent(30, 0);
  s.connected(true, 5_000);
  assert.equal(s.passRequest, "unpublished");
  assert.equal(s.dueResend(5_999), null, "the clock restarted at the connect");
  s.passRequest = null;
  s.connected(false, 6_000);
  s.startPass(6_000);
  assert.equal(s.pass!.resendUntil, Infinity, "the broker lost what it held: all of it again");
});

Deno.test("catch-up requests merge into one from the earliest seq", () => {
  const s = stream();
  s.askCatchup({ since: 8, limit: 3, entity: "crew" });
  s.askCatchup({ since: 4, limit: 2 });
  assert.deepEqual(s.catchup, { since: 4, limit: 3, entity: undefined });
});

Deno.test("while the vessel is offline its re-send clock stands still", () => {
  const s = stream();
  s.claimed(EPOCH, 10);
  s.noteSent(10, 0);
  s.away(600);
  s.away(5_000);
  assert.equal(s.dueResend(5_999), null, "an offline vessel cannot ack: no re-send");
  assert.deepEqual(s.dueResend(6_000), { fromSeq: 1, toSeq: 10, delayMs: 1_000 });
});

Deno.test("rows another shore instance claimed fall under this one's re-send", () => {
  const s = stream();
  s.seed({ epoch: EPOCH, lastSeq: 10, publishedSeq: 10, ackedSeq: 10 });
  s.passRequest = null;
  s.claimedElsewhere(EPOCH, 25, 0);
  assert.equal(s.room(100), 85, "the window counts them");
  s.claimedElsewhere(EPOCH, 25, 500);
  assert.deepEqual(s.dueResend(1_000), { fromSeq: 11, toSeq: 25, delayMs: 1_000 });
  s.startPass(1_000);
  assert.deepEqual(s.select(rows(11, 25)).map((r) => r.seq), rows(11, 25).map((r) => r.seq));
});
