import assert from "node:assert/strict";
import { tokenVerifier } from "../../http/app.ts";

Deno.test("the token check accepts exactly the configured tokens", () => {
  const a = "a".repeat(20);
  const b = "0123456789abcdef0123";
  const verify = tokenVerifier([a, b]);
  assert.equal(verify(a), true);
  assert.equal(verify(b), true);
  for (const wrong of ["", "a", a.slice(0, -1), a + "a", "b".repeat(20), b.toUpperCase(), a + b]) {
    assert.equal(verify(wrong), false, JSON.stringify(wrong));
  }
});

Deno.test("a token that repeats a configured one's prefix is refused", () => {
  // The comparison wraps around the configured token; a repetition must still differ in length.
  const t = "abcdefghabcdefgh";
  assert.equal(tokenVerifier([t])(t + t), false);
  assert.equal(tokenVerifier([t + t])(t), false);
});
