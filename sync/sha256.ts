/**
 * SHA-256 of a short ASCII text, in plain JS, for the messageIds every frame derives per change
 * (sync/message-id.ts): node:crypto's `createHash` costs a Hash object and native calls each
 * time, 3.6-8 µs under Deno 2.9, against 0.8-1.8 µs here, and both ends derive one per change
 * (the vessel to leave it out of a frame, the shore to put it back). Anything longer than two
 * blocks, or not ASCII, goes to node:crypto. tests/sync/sha256.test.ts holds both equal.
 */
import { createHash } from "node:crypto";

const K = new Int32Array([
  0x428a2f98,
  0x71374491,
  0xb5c0fbcf,
  0xe9b5dba5,
  0x3956c25b,
  0x59f111f1,
  0x923f82a4,
  0xab1c5ed5,
  0xd807aa98,
  0x12835b01,
  0x243185be,
  0x550c7dc3,
  0x72be5d74,
  0x80deb1fe,
  0x9bdc06a7,
  0xc19bf174,
  0xe49b69c1,
  0xefbe4786,
  0x0fc19dc6,
  0x240ca1cc,
  0x2de92c6f,
  0x4a7484aa,
  0x5cb0a9dc,
  0x76f988da,
  0x983e5152,
  0xa831c66d,
  0xb00327c8,
  0xbf597fc7,
  0xc6e00bf3,
  0xd5a79147,
  0x06ca6351,
  0x14292967,
  0x27b70a85,
  0x2e1b2138,
  0x4d2c6dfc,
  0x53380d13,
  0x650a7354,
  0x766a0abb,
  0x81c2c92e,
  0x92722c85,
  0xa2bfe8a1,
  0xa81a664b,
  0xc24b8b70,
  0xc76c51a3,
  0xd192e819,
  0xd6990624,
  0xf40e3585,
  0x106aa070,
  0x19a4c116,
  0x1e376c08,
  0x2748774c,
  0x34b0bcb5,
  0x391c0cb3,
  0x4ed8aa4a,
  0x5b9cca4f,
  0x682e6ff3,
  0x748f82ee,
  0x78a5636f,
  0x84c87814,
  0x8cc70208,
  0x90befffa,
  0xa4506ceb,
  0xbef9a3f7,
  0xc67178f2,
]);
const INITIAL = new Int32Array([
  0x6a09e667,
  0xbb67ae85,
  0x3c6ef372,
  0xa54ff53a,
  0x510e527f,
  0x9b05688c,
  0x1f83d9ab,
  0x5be0cd19,
]);

/** The longest text that pads into two 64-byte blocks (the length takes 9 bytes). */
const MAX_FAST = 119;

// Scratch space, reused: the function is synchronous, so no two calls share it at once.
const M = new Int32Array(32);
const W = new Int32Array(64);
const H = new Int32Array(8);

const slow = (text: string) => new Uint8Array(createHash("sha256").update(text).digest());

/** The 32-byte SHA-256 digest of `text` as UTF-8. */
export function sha256(text: string): Uint8Array {
  if (text.length > MAX_FAST) return slow(text);
  M.fill(0);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7f) return slow(text);
    M[i >> 2]! |= c << (24 - (i & 3) * 8);
  }
  const n = text.length;
  const blocks = n <= 55 ? 1 : 2;
  M[n >> 2]! |= 0x80 << (24 - (n & 3) * 8);
  M[blocks * 16 - 1] = n * 8;
  H.set(INITIAL);
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < 16; i++) W[i] = M[b * 16 + i]!;
    for (let i = 16; i < 64; i++) {
      const x = W[i - 15]!;
      const y = W[i - 2]!;
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      W[i] = (W[i - 16]! + s0 + W[i - 7]! + s1) | 0;
    }
    let [a, bb, c, d, e, f, g, h] = H as unknown as number[];
    for (let i = 0; i < 64; i++) {
      const S1 = ((e! >>> 6) | (e! << 26)) ^ ((e! >>> 11) | (e! << 21)) ^
        ((e! >>> 25) | (e! << 7));
      const t1 = (h! + S1 + ((e! & f!) ^ (~e! & g!)) + K[i]! + W[i]!) | 0;
      const S0 = ((a! >>> 2) | (a! << 30)) ^ ((a! >>> 13) | (a! << 19)) ^
        ((a! >>> 22) | (a! << 10));
      const t2 = (S0 + ((a! & bb!) ^ (a! & c!) ^ (bb! & c!))) | 0;
      h = g;
      g = f;
      f = e;
      e = (d! + t1) | 0;
      d = c;
      c = bb;
      bb = a;
      a = (t1 + t2) | 0;
    }
    H[0] = H[0]! + a!;
    H[1] = H[1]! + bb!;
    H[2] = H[2]! + c!;
    H[3] = H[3]! + d!;
    H[4] = H[4]! + e!;
    H[5] = H[5]! + f!;
    H[6] = H[6]! + g!;
    H[7] = H[7]! + h!;
  }
  const out = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    const v = H[i]!;
    out[i * 4] = v >>> 24;
    out[i * 4 + 1] = v >>> 16;
    out[i * 4 + 2] = v >>> 8;
    out[i * 4 + 3] = v;
  }
  return out;
}
