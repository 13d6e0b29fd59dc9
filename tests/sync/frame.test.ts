import assert from "node:assert/strict";
import { deflateRawSync, inflateRawSync } from "node:zlib";
import { type ChangeRow, type Envelope, envelopeSchema, toEnvelope } from "../../sync/protocol.ts";
import {
  cutFrames,
  decodeFrame,
  encodeFrame,
  FRAME_CONTENT_TYPE,
  FRAME_MAX_BYTES,
  FRAME_MAX_DECODED_BYTES,
  FRAME_VERSION,
} from "../../sync/frame.ts";
import { deriveMessageId } from "../../sync/message-id.ts";
import { realisticChanges } from "../support/realistic.ts";
import { encodeClock } from "../../core/hlc.ts";

const VESSEL = "mv-test_1";
const EPOCH = "3f2b8c1e-5d4a-4b6c-9e8f-0a1b2c3d4e5f";

/** Change rows as the publisher reads them, seqs from `from`. */
function rows(datas: Record<string, unknown>[], from = 1): ChangeRow[] {
  return datas.map((data, i) => ({
    entity: i % 2 ? "alerts" : "work_orders",
    operation: (["create", "update", "delete"] as const)[i % 3]!,
    data,
    changed_at: new Date(Date.UTC(2026, 10, 30, 10, 0, 0, 0) + i * 37),
    message_id: i % 4 === 3 ? crypto.randomUUID() : deriveMessageId(VESSEL, EPOCH, from + i),
    epoch: EPOCH,
    seq: from + i,
  }));
}

function roundTrip(envelopes: Envelope[]) {
  const decoded = decodeFrame(encodeFrame(envelopes), {
    contentType: FRAME_CONTENT_TYPE,
    vesselId: envelopes[0]!.vesselId,
  });
  assert.ok(decoded.ok, decoded.ok ? "" : `${decoded.reason}: ${decoded.detail}`);
  assert.deepStrictEqual(decoded.envelopes, envelopes);
  assert.equal(decoded.fromSeq, envelopes[0]!.seq);
  assert.equal(decoded.toSeq, envelopes.at(-1)!.seq);
  return decoded.envelopes;
}

/** Raw bytes with a v1 header, for frames no encoder would write. */
function forged(body: Uint8Array): Uint8Array {
  const z = deflateRawSync(body);
  return new Uint8Array([0x62, 0x66, FRAME_VERSION, ...z]);
}

Deno.test("a realistic stream round-trips in frames of 1, 10, 100 and 1,000 changes", () => {
  const stream = realisticChanges();
  for (const size of [1, 10, 100, 1_000]) {
    for (let i = 0; i < stream.length; i += size) roundTrip(stream.slice(i, i + size));
  }
  // Older rows with random messageIds carry them explicitly.
  roundTrip(realisticChanges({ randomMessageIds: true, creates: 200, patches: 20, live: 30 }));
});

Deno.test("decoded envelopes equal toEnvelope's, for data_change and catch-up runs", () => {
  const data = [
    { id: crypto.randomUUID(), version: 1, title: "a", createdAt: "2026-11-30T10:00:00.000Z" },
    { id: crypto.randomUUID(), version: 2, message: "b", acknowledged: true },
    { id: crypto.randomUUID(), version: 3, title: "c", createdAt: "2026-11-30T09:00:00.000Z" },
  ];
  const live = rows(data, 41).map((r) => toEnvelope(r, VESSEL));
  for (const e of roundTrip(live)) assert.ok(envelopeSchema.safeParse(e).success);
  const catchup = rows(data, 41).map((r, i) =>
    toEnvelope(r, VESSEL, { type: "catchup", sequence: 7 + i, total: 20 })
  );
  for (const e of roundTrip(catchup)) assert.ok(envelopeSchema.safeParse(e).success);
  assert.equal(live[0]!.sequence, undefined);
  assert.ok(!("sequence" in roundTrip(live)[0]!));
});

Deno.test("awkward values survive exactly: escapes, unicode, numbers, nulls, shapes", () => {
  const awkward = [
    {
      id: "ABCDEF00-0000-4000-8000-000000000000", // upper case: not folded
      title: 'quote " backslash \\ newline \n tab \t é 🚢 \u2028 </script>',
      description: "x".repeat(5_000),
      big: 12345678901234567890,
      max: Number.MAX_SAFE_INTEGER,
      negative: -Number.MAX_SAFE_INTEGER,
      float: 0.1 + 0.2,
      tiny: 5e-324,
      negZero: -0,
      nothing: null,
      empty: "",
      nested: { a: [1, "two", null, { b: true }], "__proto__": 1 },
      "": "empty key",
      notQuiteTime: "2026-11-30T10:00:00Z",
      offsetTime: "2026-11-30T10:00:00.000+02:00",
      oldTime: "1970-01-01T00:00:00.000Z",
      farTime: "9999-12-31T23:59:59.999Z",
      uuidLike: "00000000-0000-0000-0000-000000000000",
      shortUnicode: "é",
      ascii64: "a".repeat(64),
      ascii65: "a".repeat(65),
      asciiThenUnicode: "a".repeat(40) + "ü",
    },
    {},
    { id: crypto.randomUUID(), deleted: true, version: 9 },
  ];
  const parsed = JSON.parse(JSON.stringify(awkward)) as Record<string, unknown>[];
  parsed[0]!.negZero = -0; // JSON.stringify writes -0 as 0
  // An own "__proto__" key, as JSON.parse of a peer's record makes it (a literal cannot).
  Object.assign(parsed[0]!, JSON.parse('{"__proto__": "own key"}'));
  const envelopes = rows(parsed).map((r) => toEnvelope(r, VESSEL));
  const back = roundTrip(envelopes);
  assert.ok(Object.is(back[0]!.data.negZero, -0));
  assert.equal(Object.getPrototypeOf(back[0]!.data), Object.prototype);
  assert.ok(Object.hasOwn(back[0]!.data, "__proto__"));
  assert.equal(JSON.stringify(back), JSON.stringify(envelopes));
});

Deno.test("messageId is derived from vessel, epoch and seq: stable, distinct, a valid uuid", () => {
  const a = deriveMessageId(VESSEL, EPOCH, 1);
  assert.equal(a, deriveMessageId(VESSEL, EPOCH, 1));
  assert.notEqual(a, deriveMessageId(VESSEL, EPOCH, 2));
  assert.notEqual(a, deriveMessageId("other", EPOCH, 1));
  assert.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(envelopeSchema.shape.messageId.safeParse(a).success);
});

Deno.test("the encoder refuses runs that are not one contiguous run", () => {
  const [a, b, c] = rows([{}, {}, {}]).map((r) => toEnvelope(r, VESSEL));
  assert.throws(() => encodeFrame([a!, c!]), /do not run on/);
  assert.throws(() => encodeFrame([a!, { ...b!, epoch: crypto.randomUUID() }]), /do not run on/);
  assert.throws(() => encodeFrame([a!, { ...b!, vesselId: "x" }]), /do not run on/);
  assert.throws(() => encodeFrame([]), /at least one/);
});

Deno.test("cutFrames cuts at the cap (exactly at it is allowed) and at breaks in the run", () => {
  const stream = realisticChanges({ creates: 300, patches: 0, live: 0 });
  const size = encodeFrame(stream.slice(0, 120)).length;
  const exact = cutFrames(stream.slice(0, 120), { maxBytes: size });
  assert.deepStrictEqual(exact.map((f) => [f.payload.length, f.count]), [[size, 120]]);
  const under = cutFrames(stream.slice(0, 200), { maxBytes: size - 1 });
  assert.ok(under.length > 1 && under.every((f) => f.payload.length < size));
  // Every change once, in order, whatever the cut.
  const seqs = under.flatMap((f) => {
    const d = decodeFrame(f.payload);
    assert.ok(d.ok);
    return d.envelopes.map((e) => e.seq);
  });
  assert.deepStrictEqual(seqs, stream.slice(0, 200).map((e) => e.seq));
  // A break in seq starts a new frame.
  const gap = [...stream.slice(0, 5), ...stream.slice(6, 10)];
  assert.deepStrictEqual(cutFrames(gap).map((f) => [f.fromSeq, f.toSeq]), [[1, 5], [7, 10]]);
  // Defaults to the contract's 256 KiB.
  assert.equal(FRAME_MAX_BYTES, 256 * 1024);
  assert.equal(cutFrames(stream).length, 1);
});

Deno.test("a change larger than the cap travels alone, and still decodes", () => {
  const random = Array.from(
    { length: 400_000 },
    (_, i) => String.fromCharCode(0x4e00 + ((i * 7919 + (i >> 3) * 104729) % 20_000)),
  ).join("");
  const envelopes = rows([{ a: 1 }, { description: random }, { b: 2 }]).map((r) =>
    toEnvelope(r, VESSEL)
  );
  const frames = cutFrames(envelopes);
  assert.deepStrictEqual(frames.map((f) => [f.fromSeq, f.toSeq]), [[1, 1], [2, 2], [3, 3]]);
  assert.ok(frames[1]!.payload.length > FRAME_MAX_BYTES);
  const d = decodeFrame(frames[1]!.payload);
  assert.ok(d.ok);
  assert.equal(d.envelopes[0]!.data.description, random);
});

Deno.test("unknown encodings are refused and named", () => {
  const frame = encodeFrame(rows([{ a: 1 }]).map((r) => toEnvelope(r, VESSEL)));
  const v2 = frame.slice();
  v2[2] = 2;
  const r1 = decodeFrame(v2);
  assert.deepStrictEqual(r1, { ok: false, reason: "unknown_encoding", detail: "frame version 2" });
  const r2 = decodeFrame(frame, { contentType: "application/vnd.bosun.frame;v=2" });
  assert.equal(r2.ok, false);
  assert.ok(!r2.ok && r2.reason === "unknown_encoding" && r2.detail.includes("v=2"));
  const r3 = decodeFrame(new TextEncoder().encode('{"type":"data_change"}'));
  assert.ok(!r3.ok && r3.reason === "unknown_encoding" && r3.detail.includes("7b 22 74"));
  assert.ok(!decodeFrame(new Uint8Array()).ok);
});

Deno.test("corrupt, truncated and forged frames are refused whole, never thrown", () => {
  const envelopes = realisticChanges({ creates: 50, patches: 0, live: 0 });
  const frame = encodeFrame(envelopes);
  for (let cut = 0; cut < frame.length; cut += 7) {
    const r = decodeFrame(frame.subarray(0, cut));
    assert.equal(r.ok, false, `truncated at ${cut}`);
  }
  let refused = 0;
  for (let i = 3; i < frame.length; i += 11) {
    const bad = frame.slice();
    bad[i] = bad[i]! ^ 0x5a;
    const r = decodeFrame(bad);
    // A flipped bit may still inflate to a well-formed body; it is then a whole frame.
    if (r.ok) assert.equal(r.envelopes.length, envelopes.length);
    else refused++;
  }
  assert.ok(refused > 0);
  // Well-compressed bodies that do not parse.
  const enc = new TextEncoder();
  const badUtf8 = new Uint8Array([2, 0xc3, 0x28]); // the vessel id: a lead byte, no follower
  for (
    const body of [new Uint8Array([0]), enc.encode("garbage"), new Uint8Array(100), badUtf8]
  ) {
    const r = decodeFrame(forged(body));
    assert.ok(!r.ok && r.reason === "corrupt", JSON.stringify(r));
  }
  // Trailing bytes after a valid body.
  const body = new Uint8Array([...inflated(frame), 0]);
  const r = decodeFrame(forged(body));
  assert.ok(!r.ok && r.reason === "corrupt" && r.detail.includes("after the last change"));
});

Deno.test("a decompression bomb stops at the cap", () => {
  const bomb = forged(new Uint8Array(FRAME_MAX_DECODED_BYTES + 1024));
  assert.ok(bomb.length < 64 * 1024);
  const r = decodeFrame(bomb);
  assert.ok(!r.ok && r.reason === "too_large", JSON.stringify(r));
});

Deno.test("a frame on another vessel's topic is refused", () => {
  const frame = encodeFrame(rows([{ a: 1 }]).map((r) => toEnvelope(r, VESSEL)));
  const r = decodeFrame(frame, { vesselId: "mv-other" });
  assert.ok(!r.ok && r.reason === "wrong_vessel");
  assert.ok(decodeFrame(frame, { vesselId: VESSEL }).ok);
});

function inflated(frame: Uint8Array): Uint8Array {
  return inflateRawSync(frame.subarray(3));
}

Deno.test("two-way sync metadata survives a frame, with or without seen, mixed with none", () => {
  const clock = (wall: number, counter: number) => encodeClock({ wall, counter, origin: "shore" });
  const envelopes = rows([{ id: "a", title: "x" }, { id: "b" }, { id: "c", title: "y" }])
    .map((r) => toEnvelope(r, VESSEL));
  envelopes[0]!.sync = { clock: clock(1_000, 0), seen: null, fields: ["title"] };
  envelopes[2]!.sync = { clock: clock(2_000, 0), seen: clock(1_500, 0), fields: [] };
  const decoded = roundTrip(envelopes);
  assert.equal(decoded[1]!.sync, undefined);
  for (const e of decoded) assert.ok(envelopeSchema.safeParse(e).success);
});
