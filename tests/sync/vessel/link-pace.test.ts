import assert from "node:assert/strict";
import { LinkPace } from "../../../sync/vessel/link-pace.ts";

Deno.test("the claim budget starts at the floor, grows with measured PUBACKs and forgets a faster past", () => {
  let now = 0;
  const pace = new LinkPace({ horizonMs: 1_000, floorBytes: 16_384, now: () => now });
  assert.equal(pace.rate, 16_384, "nothing measured: the floor");
  assert.equal(pace.rowBudget(), Math.floor(16_384 / 200));

  // Two publishes back to back, 8 KiB each, PUBACKed 100 and 200 ms later: 16 KiB in 200 ms.
  const a = pace.sent(8_192, 100);
  const b = pace.sent(8_192, 100);
  now = 100;
  pace.acked(a);
  now = 200;
  pace.acked(b);
  assert.equal(pace.rate, 16_384 * 1_000 / 200, "delivered: 8 KiB in 100 ms, 16 KiB in 200 ms");
  assert.ok(pace.rowBudget() > Math.floor(16_384 / 200), "the budget grew");

  // Seconds later, a slower link: the old, higher samples are gone.
  now = 20_000;
  const c = pace.sent(30_000, 100);
  now = 21_000;
  pace.acked(c);
  assert.equal(pace.rate, 30_000);

  // Below the floor the floor holds.
  now = 40_000;
  const d = pace.sent(100, 1);
  now = 41_000;
  pace.acked(d);
  assert.equal(pace.rate, 16_384);
});
