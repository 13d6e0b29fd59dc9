import assert from "node:assert/strict";
import { FakeTime } from "../support/fake_time.ts";
import { backoffDelay, shouldLogAttempt } from "../../sync/backoff.ts";

const opts = { baseMs: 1_000, ceilingMs: 60_000 };

Deno.test("back-off cap doubles from the base up to the ceiling", () => {
  const almostOne = () => 1 - Number.EPSILON;
  const caps = [1, 2, 3, 4, 5, 6, 7, 8, 50, 5_000].map((n) => backoffDelay(n, opts, almostOne));
  assert.deepEqual(caps, [
    999,
    1_999,
    3_999,
    7_999,
    15_999,
    31_999,
    59_999,
    59_999,
    59_999,
    59_999,
  ]);
});

Deno.test("back-off is fully jittered between zero and the cap", () => {
  assert.equal(backoffDelay(3, opts, () => 0), 0);
  assert.equal(backoffDelay(3, opts, () => 0.5), 2_000);
  assert.equal(backoffDelay(10, opts, () => 0.25), 15_000);
  // A misbehaving random source never yields a delay outside [0, cap).
  assert.equal(backoffDelay(1, opts, () => 7), 999);
  assert.equal(backoffDelay(1, opts, () => -1), 0);
});

Deno.test("reconnect log lines thin out: 1-10, every 10th to 100, then every 100th", () => {
  const logged = Array.from({ length: 1_000 }, (_, i) => i + 1).filter(shouldLogAttempt);
  assert.deepEqual(logged.slice(0, 10), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.deepEqual(logged.slice(10, 19), [20, 30, 40, 50, 60, 70, 80, 90, 100]);
  assert.deepEqual(logged.slice(19), [200, 300, 400, 500, 600, 700, 800, 900, 1_000]);
});

Deno.test("with fake time, a reconnect schedule waits exactly the computed delays", () => {
  using time = new FakeTime();
  const fired: number[] = [];
  const randoms = [0.5, 0.5, 0.5, 0.9];
  let attempt = 0;
  const schedule = () => {
    attempt++;
    const delay = backoffDelay(attempt, opts, () => randoms[attempt - 1] ?? 0);
    time.setTimeout(() => {
      fired.push(time.now);
      if (attempt < randoms.length) schedule();
    }, delay);
  };
  schedule();
  time.tick(499);
  assert.deepEqual(fired, []);
  time.tick(1);
  assert.deepEqual(fired, [500]);
  time.tick(1_000 + 2_000);
  assert.deepEqual(fired, [500, 1_500, 3_500]);
  time.tick(7_200);
  assert.deepEqual(fired, [500, 1_500, 3_500, 10_700]);
});
