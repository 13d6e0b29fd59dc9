import assert from "node:assert/strict";
import { reconnectDelayS } from "../../db/connection.ts";

// Found by the chaos suite: after a PostgreSQL restart under the vessel, writes hung for up
// to 20 s (postgres.js's default reconnect back-off, shared by the pool) instead of getting a
// 503 while the database was down and going through as soon as it was back.
Deno.test("the pool's reconnect back-off never exceeds one second however long the outage", () => {
  const delays = Array.from({ length: 40 }, (_, retries) => reconnectDelayS(retries));
  assert.ok(delays.every((d) => d > 0 && d <= 1));
  assert.equal(delays.at(-1), 1);
  assert.ok(delays[0]! < delays[4]!, "the delay grows while attempts keep failing");
});
