/**
 * The uncompressed body of a `bosun-frame v1` (its layout: sync/frame.ts): the columns of a
 * contiguous run of changes, the key lists of their `data` said once, and the frozen v1 tables
 * (entities, operations, known shapes) that make it compact.
 */
import type { Envelope } from "./protocol.ts";

/**
 * A change to put in a frame: an envelope whose messageId may be left out where it is the one
 * `deriveMessageId` gives (the vessel's outbox knows, and need not compute it only for the
 * encoder to find it derived and leave it out of the frame). The decoder always fills it in.
 */
export type FrameChange = Omit<Envelope, "messageId"> & { messageId?: string };
import { deriveMessageId } from "./message-id.ts";
import { Reader, timeOf, Writer } from "./frame-values.ts";

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

/** Whether `b` runs on from `a` in one frame: the next seq of the same epoch, vessel and type. */
export const runsOn = (a: FrameChange, b: FrameChange) =>
  b.seq === a.seq + 1 && b.epoch === a.epoch && b.vesselId === a.vesselId &&
  b.type === a.type && b.total === a.total &&
  (b.sequence === undefined ? a.sequence === undefined : b.sequence === a.sequence! + 1);

/** The uncompressed body of a frame; exported for bench/codec.ts, which compares compressors. */
export function encodeBody(envelopes: readonly FrameChange[]): Uint8Array {
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
    const id = e.messageId;
    if (id !== undefined && id !== deriveMessageId(e.vesselId, e.epoch, e.seq)) explicit.push(i);
  });
  w.varint(explicit.length);
  for (const i of explicit) {
    w.varint(i);
    w.uuidOrStr(envelopes[i]!.messageId!);
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
export function decodeBody(body: Uint8Array): Envelope[] {
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
    const ms = timeOf(t);
    ref = ms ?? ref;
    times.push(ms ?? 0);
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
