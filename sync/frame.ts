/**
 * Link frames (contract §4): one MQTT message carrying a contiguous run of changes
 * `fromSeq..toSeq` of one epoch of one vessel, what they share said once, in a compact
 * columnar binary form, compressed with deflate-raw and a preset dictionary built in here.
 * docs/frames.md holds the measurements behind each choice.
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
import { createHash } from "node:crypto";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import type { Envelope } from "./protocol.ts";

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

/** The most changes one frame may claim to hold. */
export const FRAME_MAX_CHANGES = 100_000;

// Frozen for v1: a new entity or operation is a new encoding version.
const ENTITIES_V1 = [
  "work_orders",
  "alerts",
  "equipment",
  "crew",
  "maintenance_schedules",
] as const;
const OPERATIONS_V1 = ["create", "update", "delete"] as const;

/**
 * The key lists of the five entities' full records in jsonb order (shorter keys first, then
 * bytewise), as `data` arrives from PostgreSQL. A frame's shape table names one of these and a
 * bitmask of the keys present instead of spelling the keys out: on a one-change frame the keys
 * were a third of the bytes. (A deflate preset dictionary would have done this more generally,
 * but Deno 2.9.6's node:zlib accepts `dictionary` and ignores it: docs/frames.md.) Part of the
 * encoding: changing a list is a new version, so they are frozen here, not read from
 * core/entities.ts.
 */
export const KNOWN_SHAPES_V1: readonly (readonly string[])[] = [
  [
    "id",
    "dueAt",
    "title",
    "status",
    "version",
    "priority",
    "createdAt",
    "updatedAt",
    "assignedTo",
    "description",
    "equipmentId",
  ],
  [
    "id",
    "message",
    "version",
    "severity",
    "createdAt",
    "updatedAt",
    "equipmentId",
    "acknowledged",
    "acknowledgedBy",
  ],
  ["id", "name", "type", "status", "version", "location", "createdAt", "updatedAt", "runningHours"],
  ["id", "name", "rank", "role", "onboard", "version", "createdAt", "updatedAt"],
  [
    "id",
    "task",
    "version",
    "createdAt",
    "nextDueAt",
    "updatedAt",
    "lastDoneAt",
    "equipmentId",
    "intervalHours",
  ],
];

/**
 * Bit 1 of the type byte: after the values, a two-way sync section, per change a tag (0 none,
 * 1 `seen` null, 2 `seen` follows), `clock`: str, [`seen`: str], `fields`: varint n, n × str
 * (core/change.ts's ChangeSync, docs/two-way-sync.md). A decoder from before two-way sync
 * refuses such a frame as corrupt (unknown type), as its strict envelope schema refuses the
 * `sync` member of a message: shores are upgraded before vessels.
 */
const SYNC_FLAG = 2;

/** Why a frame was refused. */
export type FrameRefusal = "unknown_encoding" | "corrupt" | "too_large" | "wrong_vessel";

/** What {@linkcode decodeFrame} makes of a payload: every envelope, or none and why. */
export type DecodedFrame =
  | { ok: true; envelopes: Envelope[]; fromSeq: number; toSeq: number }
  | { ok: false; reason: FrameRefusal; detail: string };

/**
 * The messageId a change gets when it is claimed: a UUIDv8 from SHA-256 of vessel, epoch and
 * seq, so that it need not travel (a random one is 16 incompressible bytes per change) and is
 * identical on every re-delivery. `db/outbox.ts` computes the same in SQL.
 */
export function deriveMessageId(vesselId: string, epoch: string, seq: number): string {
  const h = createHash("sha256").update(`bosun/${vesselId}/${epoch}/${seq}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return uuidText(h, 0);
}

/**
 * Encodes envelopes into one frame payload (header and compressed body). They must share
 * vessel, epoch and type and run contiguously by seq (a catch-up run also by `sequence`, with
 * one `total`); anything else is a programming error and throws.
 */
export function encodeFrame(envelopes: readonly Envelope[]): Uint8Array {
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
 * sync/envelope.ts built on the vessel. Never throws, and never returns part of a frame.
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
  envelopes: readonly Envelope[],
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

function contiguousRuns(envelopes: readonly Envelope[]): Envelope[][] {
  const runs: Envelope[][] = [];
  let run: Envelope[] = [];
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

const runsOn = (a: Envelope, b: Envelope) =>
  b.seq === a.seq + 1 && b.epoch === a.epoch && b.vesselId === a.vesselId &&
  b.type === a.type && b.total === a.total &&
  (b.sequence === undefined ? a.sequence === undefined : b.sequence === a.sequence! + 1);

// ---- the body ----

const T_NULL = 0;
const T_FALSE = 1;
const T_TRUE = 2;
const T_UINT = 3;
const T_NEGINT = 4;
const T_FLOAT = 5;
const T_STRING = 6;
const T_UUID = 7;
const T_TIME_AFTER = 8;
const T_TIME_BEFORE = 9;
const T_JSON = 10;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TIME_RE = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** The uncompressed body of a frame; exported for bench/codec.ts, which compares compressors. */
export function encodeBody(envelopes: readonly Envelope[]): Uint8Array {
  const first = envelopes[0];
  if (!first) throw new Error("A frame holds at least one change");
  for (let i = 1; i < envelopes.length; i++) {
    if (!runsOn(envelopes[i - 1]!, envelopes[i]!)) {
      throw new Error(`Changes ${envelopes[i - 1]!.seq} and ${envelopes[i]!.seq} do not run on`);
    }
  }
  const w = new Writer();
  w.str(first.vesselId);
  w.uuidOrStr(first.epoch);
  // Bit 1 of the type byte: a two-way sync section follows the values (see SYNC_FLAG).
  const withSync = envelopes.some((e) => e.sync !== undefined) ? SYNC_FLAG : 0;
  if (first.type === "catchup") {
    if (first.sequence === undefined || first.total === undefined) {
      throw new Error("A catch-up change carries sequence and total");
    }
    w.u8(1 | withSync);
    w.varint(first.sequence);
    w.varint(first.total);
  } else {
    w.u8(0 | withSync);
  }
  w.varint(first.seq);
  w.varint(envelopes.length);

  const shapeIds = new Map<string, number>();
  const shapes: string[][] = [];
  const shapeOf = envelopes.map((e) => {
    const keys = Object.keys(e.data);
    const sig = keys.join("\u0000");
    let id = shapeIds.get(sig);
    if (id === undefined) {
      id = shapes.length;
      shapeIds.set(sig, id);
      shapes.push(keys);
    }
    return id;
  });
  w.varint(shapes.length);
  for (const keys of shapes) writeShape(w, keys);
  for (const e of envelopes) {
    const entity = ENTITIES_V1.indexOf(e.entity);
    const op = OPERATIONS_V1.indexOf(e.operation);
    if (entity < 0 || op < 0) throw new Error(`No v1 code for ${e.entity} ${e.operation}`);
    w.u8(entity * 3 + op);
  }
  for (const s of shapeOf) w.varint(s);
  const times = envelopes.map((e) => timeOf(e.timestamp));
  let ref = 0;
  envelopes.forEach((e, i) => {
    w.value(e.timestamp, ref);
    ref = times[i] ?? ref;
  });
  const explicit: number[] = [];
  envelopes.forEach((e, i) => {
    if (e.messageId !== deriveMessageId(e.vesselId, e.epoch, e.seq)) explicit.push(i);
  });
  w.varint(explicit.length);
  for (const i of explicit) {
    w.varint(i);
    w.uuidOrStr(envelopes[i]!.messageId);
  }
  shapes.forEach((keys, s) => {
    for (const k of keys) {
      envelopes.forEach((e, i) => {
        if (shapeOf[i] === s) w.value(e.data[k], times[i] ?? 0);
      });
    }
  });
  if (withSync) {
    for (const e of envelopes) {
      if (!e.sync) {
        w.u8(0);
        continue;
      }
      w.u8(e.sync.seen === null ? 1 : 2);
      w.str(e.sync.clock);
      if (e.sync.seen !== null) w.str(e.sync.seen);
      w.varint(e.sync.fields.length);
      for (const f of e.sync.fields) w.str(f);
    }
  }
  return w.done();
}

/** Reads a body back; throws on anything malformed (decodeFrame turns that into a refusal). */
function decodeBody(body: Uint8Array): Envelope[] {
  const r = new Reader(body);
  const vesselId = r.str();
  const epoch = r.uuidOrStr();
  const typeByte = r.u8();
  const withSync = (typeByte & SYNC_FLAG) !== 0;
  const typeCode = typeByte & ~SYNC_FLAG;
  if (typeCode > 1) throw new Error(`Unknown frame type ${typeByte}`);
  const catchup = typeCode === 1;
  const sequence = catchup ? r.varint() : 0;
  const total = catchup ? r.varint() : 0;
  const fromSeq = r.varint();
  const count = r.varint();
  if (fromSeq < 1) throw new Error("fromSeq must be at least 1");
  if (count < 1 || count > FRAME_MAX_CHANGES) throw new Error(`Change count ${count}`);
  if (!Number.isSafeInteger(fromSeq + count - 1)) throw new Error("Seq beyond safe integers");
  if (catchup && sequence + count > total) throw new Error("Catch-up run past its total");

  const nShapes = r.varint();
  if (nShapes < 1 || nShapes > count) throw new Error(`Shape count ${nShapes}`);
  const shapes: string[][] = [];
  for (let s = 0; s < nShapes; s++) shapes.push(readShape(r));
  const kinds: number[] = [];
  for (let i = 0; i < count; i++) {
    const kind = r.u8();
    if (kind >= ENTITIES_V1.length * 3) throw new Error(`Unknown change kind ${kind}`);
    kinds.push(kind);
  }
  const shapeOf: number[] = [];
  for (let i = 0; i < count; i++) {
    const s = r.varint();
    if (s >= nShapes) throw new Error(`Unknown shape ${s}`);
    shapeOf.push(s);
  }
  const timestamps: string[] = [];
  const times: number[] = [];
  let ref = 0;
  for (let i = 0; i < count; i++) {
    const t = r.value(ref);
    if (typeof t !== "string") throw new Error("A change's timestamp must be a string");
    timestamps.push(t);
    ref = timeOf(t) ?? ref;
    times.push(timeOf(t) ?? 0);
  }
  const messageIds = new Map<number, string>();
  const nExplicit = r.varint();
  if (nExplicit > count) throw new Error("More messageIds than changes");
  for (let n = 0; n < nExplicit; n++) {
    const i = r.varint();
    if (i >= count || messageIds.has(i)) throw new Error(`messageId index ${i}`);
    messageIds.set(i, r.uuidOrStr());
  }
  const data: Record<string, unknown>[] = Array.from({ length: count }, () => ({}));
  shapes.forEach((keys, s) => {
    for (const k of keys) {
      for (let i = 0; i < count; i++) {
        if (shapeOf[i] !== s) continue;
        const v = r.value(times[i]!);
        // An own "__proto__" key (valid JSON) must stay a key, not become the prototype.
        if (k === "__proto__") {
          Object.defineProperty(data[i], k, {
            value: v,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        } else data[i]![k] = v;
      }
    }
  });
  const syncs: (Envelope["sync"])[] = [];
  if (withSync) {
    for (let i = 0; i < count; i++) {
      const tag = r.u8();
      if (tag > 2) throw new Error(`Unknown sync tag ${tag}`);
      if (tag === 0) {
        syncs.push(undefined);
        continue;
      }
      const clock = r.str();
      const seen = tag === 2 ? r.str() : null;
      const n = r.varint();
      if (n > 100) throw new Error(`${n} sync fields`);
      const fields: string[] = [];
      for (let f = 0; f < n; f++) fields.push(r.str());
      syncs.push({ clock, seen, fields });
    }
  }
  if (r.left() !== 0) throw new Error(`${r.left()} bytes after the last change`);

  return kinds.map((kind, i) => {
    const seq = fromSeq + i;
    const envelope: Envelope = {
      type: catchup ? "catchup" : "data_change",
      entity: ENTITIES_V1[Math.floor(kind / 3)]!,
      operation: OPERATIONS_V1[kind % 3]!,
      data: data[i]!,
      timestamp: timestamps[i]!,
      messageId: messageIds.get(i) ?? deriveMessageId(vesselId, epoch, seq),
      vesselId,
      epoch,
      seq,
    };
    const sync = syncs[i];
    if (sync) envelope.sync = sync;
    if (catchup) {
      envelope.sequence = sequence + i;
      envelope.total = total;
    }
    return envelope;
  });
}

/** A key list: a known one and the keys present where it fits, else spelled out. */
function writeShape(w: Writer, keys: string[]) {
  for (let i = 0; i < KNOWN_SHAPES_V1.length; i++) {
    const known = KNOWN_SHAPES_V1[i]!;
    let mask = 0;
    let at = 0;
    for (let b = 0; b < known.length && at < keys.length; b++) {
      if (known[b] === keys[at]) {
        mask += 2 ** b;
        at++;
      }
    }
    if (at === keys.length) {
      w.varint(i + 1);
      w.varint(mask);
      return;
    }
  }
  w.varint(0);
  w.varint(keys.length);
  for (const k of keys) w.str(k);
}

function readShape(r: Reader): string[] {
  const known = r.varint();
  if (known > 0) {
    const list = KNOWN_SHAPES_V1[known - 1];
    if (!list) throw new Error(`Unknown known shape ${known - 1}`);
    const mask = r.varint();
    if (mask >= 2 ** list.length) throw new Error("Shape mask past its key list");
    return list.filter((_, b) => Math.floor(mask / 2 ** b) % 2 === 1);
  }
  const n = r.varint();
  if (n > r.left()) throw new Error("Shape longer than the frame");
  const keys: string[] = [];
  for (let k = 0; k < n; k++) keys.push(r.str());
  if (new Set(keys).size !== keys.length) throw new Error("Shape repeats a key");
  return keys;
}

/** The ms of an ISO timestamp `toISOString` writes exactly so, else undefined. */
function timeOf(s: unknown): number | undefined {
  if (typeof s !== "string" || s.length !== 24 || !TIME_RE.test(s)) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) || new Date(ms).toISOString() !== s ? undefined : ms;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

function uuidText(b: Uint8Array, at: number): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += HEX[b[at + i]!];
  }
  return s;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

class Writer {
  #buf = new Uint8Array(4096);
  #view = new DataView(this.#buf.buffer);
  #at = 0;

  #room(n: number) {
    if (this.#at + n <= this.#buf.length) return;
    const next = new Uint8Array(Math.max(this.#buf.length * 2, this.#at + n));
    next.set(this.#buf.subarray(0, this.#at));
    this.#buf = next;
    this.#view = new DataView(next.buffer);
  }

  u8(b: number) {
    this.#room(1);
    this.#buf[this.#at++] = b;
  }

  /** A non-negative safe integer, 7 bits a byte. */
  varint(n: number) {
    this.#room(8);
    while (n >= 0x80) {
      this.#buf[this.#at++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.#buf[this.#at++] = n;
  }

  str(s: string) {
    // At most 3 bytes per UTF-16 unit; write, then go back for the length.
    this.#room(s.length * 3 + 8);
    const scratch = this.#buf.subarray(this.#at + 8);
    const { written } = utf8.encodeInto(s, scratch);
    const bytes = this.#buf.slice(this.#at + 8, this.#at + 8 + written);
    this.varint(written);
    this.#buf.set(bytes, this.#at);
    this.#at += written;
  }

  uuid(s: string) {
    this.#room(16);
    for (let i = 0, j = 0; i < 16; i++, j += 2) {
      if (j === 8 || j === 13 || j === 18 || j === 23) j++;
      this.#buf[this.#at++] = parseInt(s.slice(j, j + 2), 16);
    }
  }

  uuidOrStr(s: string) {
    if (UUID_RE.test(s)) {
      this.u8(T_UUID);
      this.uuid(s);
    } else {
      this.u8(T_STRING);
      this.str(s);
    }
  }

  /** A JSON value; timestamps relative to `ref` ms. */
  value(v: unknown, ref: number) {
    if (v === null || v === undefined) return this.u8(T_NULL);
    if (v === false) return this.u8(T_FALSE);
    if (v === true) return this.u8(T_TRUE);
    if (typeof v === "number") {
      if (Number.isSafeInteger(v) && !Object.is(v, -0)) {
        this.u8(v >= 0 ? T_UINT : T_NEGINT);
        return this.varint(Math.abs(v));
      }
      this.u8(T_FLOAT);
      this.#room(8);
      this.#view.setFloat64(this.#at, v);
      this.#at += 8;
      return;
    }
    if (typeof v === "string") {
      const ms = timeOf(v);
      if (ms !== undefined) {
        this.u8(ms >= ref ? T_TIME_AFTER : T_TIME_BEFORE);
        return this.varint(Math.abs(ms - ref));
      }
      if (v.length === 36 && UUID_RE.test(v)) {
        this.u8(T_UUID);
        return this.uuid(v);
      }
      this.u8(T_STRING);
      return this.str(v);
    }
    this.u8(T_JSON);
    this.str(JSON.stringify(v));
  }

  done(): Uint8Array {
    return this.#buf.slice(0, this.#at);
  }
}

class Reader {
  #buf: Uint8Array;
  #view: DataView;
  #at = 0;

  constructor(buf: Uint8Array) {
    this.#buf = buf;
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  left() {
    return this.#buf.length - this.#at;
  }

  #need(n: number) {
    if (this.#at + n > this.#buf.length) throw new Error("Frame body ends early");
  }

  u8(): number {
    this.#need(1);
    return this.#buf[this.#at++]!;
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (;;) {
      const b = this.u8();
      n += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 49) throw new Error("Varint beyond safe integers");
    }
    if (!Number.isSafeInteger(n)) throw new Error("Varint beyond safe integers");
    return n;
  }

  str(): string {
    const n = this.varint();
    this.#need(n);
    const s = utf8Strict.decode(this.#buf.subarray(this.#at, this.#at + n));
    this.#at += n;
    return s;
  }

  uuidOrStr(): string {
    const tag = this.u8();
    if (tag === T_UUID) return this.#uuid();
    if (tag === T_STRING) return this.str();
    throw new Error(`Tag ${tag} where a uuid or string belongs`);
  }

  #uuid(): string {
    this.#need(16);
    const s = uuidText(this.#buf, this.#at);
    this.#at += 16;
    return s;
  }

  value(ref: number): unknown {
    const tag = this.u8();
    switch (tag) {
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_UINT:
        return this.varint();
      case T_NEGINT:
        return -this.varint();
      case T_FLOAT: {
        this.#need(8);
        const v = this.#view.getFloat64(this.#at);
        this.#at += 8;
        if (!Number.isFinite(v)) throw new Error("A number must be finite");
        return v;
      }
      case T_STRING:
        return this.str();
      case T_UUID:
        return this.#uuid();
      case T_TIME_AFTER:
      case T_TIME_BEFORE: {
        const d = this.varint();
        const ms = tag === T_TIME_AFTER ? ref + d : ref - d;
        const date = new Date(ms);
        if (Number.isNaN(date.getTime())) throw new Error("Timestamp out of range");
        return date.toISOString();
      }
      case T_JSON:
        return JSON.parse(this.str());
      default:
        throw new Error(`Unknown value tag ${tag}`);
    }
  }
}

const clip = (s: string) => (s.length > 120 ? `${s.slice(0, 120)}…` : s);

const refuse = (reason: FrameRefusal, detail: string): DecodedFrame => ({
  ok: false,
  reason,
  detail,
});
