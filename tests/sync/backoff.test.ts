import assert from "node:assert/strict";
import { backoffDelay, shouldLogAttempt } from "../../sync/backoff.ts";
import { createSession } from "../../sync/session.ts";
import { parseConfig } from "../../config.ts";
import { silentLogger } from "../../core/log.ts";
import { freePort } from "../support/ports.ts";
import { waitUntil } from "../support/wait.ts";

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

Deno.test("a session with no broker reconnects on the back-off schedule: delays double to the ceiling, each waited out in full", async () => {
  const port = freePort(); // nothing listens there: every attempt fails at once
  const events: { attempt: number; delayMs: number; at: number }[] = [];
  const session = createSession({
    mqtt: parseConfig({ MQTT_BROKER_URL: `mqtt://127.0.0.1:${port}` }).mqtt,
    clientId: `bosun-t-${crypto.randomUUID().slice(0, 8)}`,
    log: silentLogger,
    backoff: { baseMs: 100, ceilingMs: 400 },
    random: () => 0.5,
  });
  const off = session.onEvent((e) => {
    if (e.type === "reconnecting") {
      events.push({ attempt: e.attempt, delayMs: e.delayMs, at: performance.now() });
    }
  });
  try {
    await waitUntil(() => events.length >= 6, "six reconnect attempts");
  } finally {
    off();
    await session.close();
  }
  const six = events.slice(0, 6);
  assert.deepEqual(six.map((e) => e.attempt), [1, 2, 3, 4, 5, 6]);
  // Half of the cap (random 0.5): caps 100, 200, 400, then the 400 ceiling.
  assert.deepEqual(six.map((e) => e.delayMs), [50, 100, 200, 200, 200, 200]);
  assert.equal(session.reconnectAttempts >= 6, true);
  // The session really waits each delay before the next attempt (a lower bound: timers never
  // fire early; how much later they fire is the machine's business, not asserted).
  for (let i = 1; i < six.length; i++) {
    assert.ok(
      six[i]!.at - six[i - 1]!.at >= six[i - 1]!.delayMs - 1,
      `attempt ${i + 1} came ${six[i]!.at - six[i - 1]!.at} ms after attempt ${i}, before its ${
        six[i - 1]!.delayMs
      } ms delay`,
    );
  }
});
