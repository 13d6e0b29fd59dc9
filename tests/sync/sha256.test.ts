import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256 } from "../../sync/sha256.ts";

const reference = (text: string) => new Uint8Array(createHash("sha256").update(text).digest());

Deno.test("sha256 equals node:crypto's at every length up to two blocks and past them", () => {
  for (let n = 0; n <= 200; n++) {
    const text = Array.from({ length: n }, (_, i) => String.fromCharCode(32 + (i * 7 + n) % 95))
      .join("");
    assert.deepEqual(sha256(text), reference(text), `length ${n}`);
  }
});

Deno.test("sha256 equals node:crypto's on messageId texts, non-ASCII and control characters", () => {
  const texts = [
    "",
    "\u0000",
    "\u007f",
    "é",
    "bosun/vessel-é/x/1",
    "😀".repeat(10),
    ...Array.from({ length: 500 }, (_, i) => `bosun/vessel-${i}/${crypto.randomUUID()}/${i + 1}`),
    `bosun/${"v".repeat(64)}/${crypto.randomUUID()}/${Number.MAX_SAFE_INTEGER}`,
  ];
  for (const text of texts) assert.deepEqual(sha256(text), reference(text), text);
});
