import assert from "node:assert/strict";
import { WaitTimeout, waitUntil, withDeadline } from "./wait.ts";

Deno.test("a wait fails naming what it waited for at its deadline, and refuses a deadline that never comes", async () => {
  await assert.rejects(
    waitUntil(() => false, "a thing that never holds", 50),
    (err: Error) => err instanceof WaitTimeout && err.message.includes("a thing that never holds"),
  );
  await assert.rejects(() => waitUntil(() => true, "at once", Infinity), RangeError);
  await assert.rejects(() => withDeadline(Promise.resolve(1), "at once", NaN), RangeError);
  assert.equal(await withDeadline(Promise.resolve(1), "a settled promise", 1_000), 1);
});
