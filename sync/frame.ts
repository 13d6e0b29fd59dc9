/**
 * Link frames: one MQTT message carrying a contiguous run of changes
 * `fromSeq..toSeq` of one epoch of one vessel, what they share said once, in a compact
 * columnar binary form, compressed with deflate-raw and a preset dictionary built in here.
 * docs/frames.md holds the measurements behind each choice. This module puts the header on,
 * deflates, and cuts runs into frames; sync/frame-body.ts writes and reads the body below,
 * sync/frame-values.ts its values.
 *
 * Encoding `bosun-frame v1` (the payload after its 3-byte header `b` `f` 0x01):
 *
 *   deflate-raw (level 6: level 9 gave the same bytes ±0.5 % for more CPU) of
 *     vesselId: str · epoch: uuid-or-str · type: u8 (0 data_change, 1 catchup; + 2: sync)
 *     [catchup: sequence of the first change: varint · total: varint]
 *     fromSeq: varint · count: varint
 *     shapes: varint n, then n × shape, the key lists of `data`: varint 0, varint k, k × str
 *             key; or varint i + 1 and a varint bitmask of the keys of KNOWN_SHAPES_V1[i]
 *     kinds: count × u8 (entity index × 3 + operation index)
 *     shapeOf: count × varint
 *     timestamps: count × value (a timestamp relative to the previous change's)
 *     messageIds: varint n, then n × (varint index, uuid-or-str) where not derived
 *     values: per shape, per key, per change of that shape: value (times relative to the
 *             change's own timestamp)
 *     [type + 2: per change, its two-way sync metadata (SYNC_FLAG below)]
 *
 * A value is a tag byte and its payload: null, false, true, a safe integer (varint of its
 * magnitude, the tag holds the sign), a float64, a string, a lowercase uuid (16 bytes), an
 * ISO timestamp that `toISOString` reproduces (varint ms delta), or other JSON (as text).
 * Columns put alike values together, which deflate codes best; uuids as 16 bytes and times
 * as deltas remove the entropy text would add. Seqs are `fromSeq + i`: a frame cannot say
 * a non-contiguous run. The header and the MQTT 5 content type name the encoding, so a shore
 * can refuse what it does not know and say which.
 */
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { Envelope } from "./protocol.ts";
import { decodeBody, encodeBody, type FrameChange, runsOn } from "./frame-body.ts";

export type { FrameChange };

/** The encoding version this build writes and reads. */
export const FRAME_VERSION = 1;

/** The MQTT 5 content type of a v1 frame. */
export const FRAME_CONTENT_TYPE = "application/vnd.bosun.frame;v=1";

/** The first bytes of every frame payload: `b`, `f`, then the version byte. */
export const FRAME_MAGIC = [0x62, 0x66] as const;

/** A frame's compressed payload is at most this large, unless one change alone is larger. */
export const FRAME_MAX_BYTES = 256 * 1024;

/**
 * The most a frame may inflate to: a decompression bomb stops here. Far above what a 256 KiB
 * frame of records holds (records compress about 5:1) and above a lone record of 1 MiB.
 */
export const FRAME_MAX_DECODED_BYTES = 32 * 1024 * 1024;

/** Why a frame was refused. */
export type FrameRefusal = "unknown_encoding" | "corrupt" | "too_large" | "wrong_vessel";

/** What {@linkcode decodeFrame} makes of a payload: every envelope, or none and why. */
export type DecodedFrame =
  | { ok: true; envelopes: Envelope[]; fromSeq: number; toSeq: number }
  | { ok: false; reason: FrameRefusal; detail: string };

/**
 * Encodes envelopes into one frame payload (header and compressed body). They must share
 * vessel, epoch and type and run contiguously by seq (a catch-up run also by `sequence`, with
 * one `total`); anything else is a programming error and throws.
 */
export function encodeFrame(envelopes: readonly FrameChange[]): Uint8Array {
  const body = encodeBody(envelopes);
  const z = deflateRawSync(body, { level: 6 });
  const out = new Uint8Array(3 + z.length);
  out[0] = FRAME_MAGIC[0];
  out[1] = FRAME_MAGIC[1];
  out[2] = FRAME_VERSION;
  out.set(z, 3);
  return out;
}

/**
 * Decodes a frame payload into the envelopes it carries, deep-equal to what `toEnvelope` in
 * sync/protocol.ts built on the vessel. Never throws, and never returns part of a frame.
 * `contentType`: the MQTT 5 content type when the message had one (under MQTT 3.1.1 the
 * header bytes alone name the encoding). `vesselId`: the vessel its topic names.
 */
export function decodeFrame(
  payload: Uint8Array,
  options: { contentType?: string; vesselId?: string } = {},
): DecodedFrame {
  const { contentType, vesselId } = options;
  if (contentType !== undefined && contentType !== FRAME_CONTENT_TYPE) {
    return refuse("unknown_encoding", `content type "${clip(contentType)}"`);
  }
  if (payload.length < 3 || payload[0] !== FRAME_MAGIC[0] || payload[1] !== FRAME_MAGIC[1]) {
    const head = Array.from(payload.subarray(0, 3), (b) => b.toString(16).padStart(2, "0"));
    return refuse("unknown_encoding", `no frame header (first bytes ${head.join(" ") || "none"})`);
  }
  if (payload[2] !== FRAME_VERSION) {
    return refuse("unknown_encoding", `frame version ${payload[2]}`);
  }
  let body: Uint8Array;
  try {
    body = inflateRawSync(payload.subarray(3), {
      maxOutputLength: FRAME_MAX_DECODED_BYTES,
    });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === "ERR_BUFFER_TOO_LARGE") {
      return refuse("too_large", `inflates past ${FRAME_MAX_DECODED_BYTES} bytes`);
    }
    return refuse("corrupt", `deflate: ${clip(String((err as Error).message ?? err))}`);
  }
  let envelopes: Envelope[];
  try {
    envelopes = decodeBody(body);
  } catch (err) {
    return refuse("corrupt", clip(err instanceof Error ? err.message : String(err)));
  }
  const first = envelopes[0]!;
  if (vesselId !== undefined && first.vesselId !== vesselId) {
    return refuse("wrong_vessel", `frame of "${clip(first.vesselId)}" on "${vesselId}"'s topic`);
  }
  return { ok: true, envelopes, fromSeq: first.seq, toSeq: envelopes.at(-1)!.seq };
}

/** One frame cut by {@linkcode cutFrames}. */
export interface CutFrame {
  payload: Uint8Array;
  fromSeq: number;
  toSeq: number;
  count: number;
}

/**
 * Cuts envelopes (in seq order) into frames of at most `maxBytes` compressed payload each, a
 * new frame also wherever seq, epoch or type does not run on. A change too large alone travels
 * alone. Sizes are measured, not guessed: a frame over the cap is re-cut smaller.
 */
export function cutFrames(
  envelopes: readonly FrameChange[],
  options: { maxBytes?: number } = {},
): CutFrame[] {
  const { maxBytes = FRAME_MAX_BYTES } = options;
  const frames: CutFrame[] = [];
  const runs = contiguousRuns(envelopes);
  for (const run of runs) {
    let start = 0;
    let n = run.length;
    while (start < run.length) {
      n = Math.min(n, run.length - start);
      const part = run.slice(start, start + n);
      const payload = encodeFrame(part);
      if (payload.length > maxBytes && n > 1) {
        // Shrink in proportion, with a margin, and at least by one.
        n = Math.max(1, Math.min(n - 1, Math.floor(n * maxBytes / payload.length * 0.95)));
        continue;
      }
      frames.push({ payload, fromSeq: part[0]!.seq, toSeq: part.at(-1)!.seq, count: n });
      start += n;
      // The next part may be as large as the rest: compressibility changes along a run.
      n = run.length - start;
    }
  }
  return frames;
}

function contiguousRuns(envelopes: readonly FrameChange[]): FrameChange[][] {
  const runs: FrameChange[][] = [];
  let run: FrameChange[] = [];
  for (const e of envelopes) {
    const prev = run.at(-1);
    if (prev && !runsOn(prev, e)) {
      runs.push(run);
      run = [];
    }
    run.push(e);
  }
  if (run.length) runs.push(run);
  return runs;
}

const clip = (s: string) => (s.length > 120 ? `${s.slice(0, 120)}…` : s);

const refuse = (reason: FrameRefusal, detail: string): DecodedFrame => ({
  ok: false,
  reason,
  detail,
});
