/**
 * The frame codec chosen by measurement: bytes per change and CPU per change of each candidate
 * encoding × compression over a realistic change stream (tests/support/realistic.ts: 2,000
 * creates written during an outage, 250 patches, 300 live writes), cut into frames of 1, 10,
 * 100 and 1,000 changes. Payload bytes only (no MQTT header). docs/frames.md holds a run.
 *
 *   deno run -A bench/codec.ts
 */
import * as zlib from "node:zlib";
import process from "node:process";
import type { Envelope } from "../sync/protocol.ts";
import { decodeFrame, encodeFrame } from "../sync/frame.ts";
import { encodeBody } from "../sync/frame-body.ts";
import { realisticChanges } from "../tests/support/realistic.ts";

const changes = realisticChanges();
const oldIds = realisticChanges({ randomMessageIds: true });
const SIZES = [1, 10, 100, 1000];
const enc = new TextEncoder();
const PASSES = Number(Deno.args[0] ?? 2);
// CPU time of this process, not wall time: the machine is shared, and a loaded one stretches
// wall time several-fold while the CPU a codec spends stays about what it is.
const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
// BENCH_FAST=1 leaves out the slowest settings (zstd 19, brotli 11).
const FAST = Deno.env.get("BENCH_FAST") === "1";

/** JSON of the envelopes, what they share said once, `data` as it is. */
function slimJson(frame: Envelope[]): Uint8Array {
  const f = frame[0]!;
  return enc.encode(JSON.stringify({
    v: f.vesselId,
    e: f.epoch,
    s: f.seq,
    c: frame.map((x) => [x.entity, x.operation, x.timestamp, x.messageId, x.data]),
  }));
}
const fullJson = (frame: Envelope[]) => enc.encode(JSON.stringify(frame));

type Compress = (b: Uint8Array) => Uint8Array;
const compressors: Record<string, Compress> = {
  "none": (b) => b,
  "deflate-raw 6": (b) => zlib.deflateRawSync(b, { level: 6 }),
  "deflate-raw 9": (b) => zlib.deflateRawSync(b, { level: 9 }),
  "zstd 3": (b) => zlib.zstdCompressSync(b),
  "zstd 19": (b) =>
    zlib.zstdCompressSync(b, { params: { [zlib.constants.ZSTD_c_compressionLevel]: 19 } }),
  "brotli 5": (b) =>
    zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }),
  "brotli 11": (b) => zlib.brotliCompressSync(b),
};

const encodings: Record<string, (f: Envelope[]) => Uint8Array> = {
  "JSON envelopes": fullJson,
  "slim JSON": slimJson,
  "columnar v1": encodeBody,
};

function frames(stream: Envelope[], size: number): Envelope[][] {
  const out: Envelope[][] = [];
  for (let i = 0; i < stream.length; i += size) out.push(stream.slice(i, i + size));
  return out;
}

function measure(stream: Envelope[], size: number, encode: (f: Envelope[]) => Uint8Array) {
  const parts = frames(stream, size);
  // Warm up, then time the better of two passes on this shared machine.
  for (const p of parts.slice(0, 20)) encode(p);
  let best = Infinity;
  let bytes = 0;
  for (let pass = 0; pass < PASSES; pass++) {
    bytes = 0;
    const t = cpuUs();
    for (const p of parts) bytes += encode(p).length;
    best = Math.min(best, cpuUs() - t);
  }
  return { perChange: bytes / stream.length, us: best / stream.length };
}

const oldWay = changes.reduce((n, e) => n + enc.encode(JSON.stringify(e)).length, 0) /
  changes.length;
console.log(`${changes.length} changes; one JSON envelope each: ${oldWay.toFixed(1)} bytes`);
console.log("\nencoding | compression | " + SIZES.map((s) => `${s}/frame B · µs`).join(" | "));
console.log("--- | --- | " + SIZES.map(() => "---").join(" | "));
for (const [name, encode] of Object.entries(encodings)) {
  for (const [zName, z] of Object.entries(compressors)) {
    // Full envelopes only as the reference point: the best of each compressor family.
    if (name !== "columnar v1" && /zstd 19|brotli 11|deflate-raw 6/.test(zName)) continue;
    if (FAST && /zstd 19|brotli 11/.test(zName)) continue;
    const cells = SIZES.map((size) => {
      // The slowest settings allocate megabytes per call: far too slow for small frames.
      if (size < 100 && /zstd 19|brotli 11/.test(zName)) return "—";
      const m = measure(changes, size, (f) => z(encode(f)));
      return `${m.perChange.toFixed(1)} · ${m.us.toFixed(1)}`;
    });
    console.log(`${name} | ${zName} | ${cells.join(" | ")}`);
  }
}

// The codec as shipped (header included), its decode, and older rows' random messageIds.
const row = (label: string, stream: Envelope[], f: (p: Envelope[]) => Uint8Array) =>
  console.log(
    `${label} | ` + SIZES.map((size) => {
      const m = measure(stream, size, f);
      return `${m.perChange.toFixed(1)} · ${m.us.toFixed(1)}`;
    }).join(" | "),
  );
console.log("\nshipped v1 | " + SIZES.map((s) => `${s}/frame B · µs`).join(" | "));
console.log("--- | " + SIZES.map(() => "---").join(" | "));
row("encodeFrame", changes, encodeFrame);
row("encodeFrame, random messageIds", oldIds, encodeFrame);
for (const size of SIZES) {
  const payloads = frames(changes, size).map(encodeFrame);
  let best = Infinity;
  for (let pass = 0; pass < 2; pass++) {
    const t = cpuUs();
    for (const p of payloads) {
      const r = decodeFrame(p);
      if (!r.ok) throw new Error(`Decode failed: ${r.detail}`);
    }
    best = Math.min(best, cpuUs() - t);
  }
  console.log(`decodeFrame, ${size}/frame: ${(best / changes.length).toFixed(1)} µs/change`);
}

// Why no preset dictionary: Deno's node:zlib takes the option and ignores it.
const sample = encodeBody(changes.slice(0, 1));
const withDict = zlib.deflateRawSync(sample, { level: 9, dictionary: sample });
console.log(
  `\ndeflate-raw of a 1-change body: ${zlib.deflateRawSync(sample, { level: 9 }).length} bytes ` +
    `without dictionary, ${withDict.length} with itself as the dictionary`,
);
