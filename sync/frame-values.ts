/**
 * The values of a frame body, byte by byte: a tag byte and its payload (null, false, true, a
 * safe integer as a varint of its magnitude with the sign in the tag, a float64, a string, a
 * lowercase uuid in 16 bytes, an ISO timestamp `toISOString` reproduces as a varint ms delta,
 * or other JSON as text), and the {@linkcode Writer} and {@linkcode Reader} that put them down
 * and read them back.
 */

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

// The last time converted either way. A frame's times repeat (a created record's createdAt and
// updatedAt are its change's timestamp, and a backlog's changes share milliseconds), and each
// conversion costs a Date and its ISO text: the repeats are answered from here.
let lastMs = NaN;
let lastIso = "";

/** The ms of an ISO timestamp `toISOString` writes exactly so, else undefined. */
export function timeOf(s: unknown): number | undefined {
  if (typeof s !== "string" || s.length !== 24) return undefined;
  if (s === lastIso) return lastMs; // lastIso is 24 characters: toISOString wrote it
  if (!TIME_RE.test(s)) return undefined;
  const ms = Date.parse(s);
  if (Number.isNaN(ms) || new Date(ms).toISOString() !== s) return undefined;
  [lastMs, lastIso] = [ms, s];
  return ms;
}

/** `toISOString` of `ms`; throws where no Date can hold it. */
function isoOf(ms: number): string {
  if (ms === lastMs) return lastIso;
  const date = new Date(ms);
  if (Number.isNaN(date.getTime())) throw new Error("Timestamp out of range");
  const iso = date.toISOString();
  // Only the 24-character form may stand for timeOf's answer (years 0000-9999).
  if (iso.length === 24) [lastMs, lastIso] = [ms, iso];
  return iso;
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

export function uuidText(b: Uint8Array, at: number): string {
  let s = "";
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += "-";
    s += HEX[b[at + i]!];
  }
  return s;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Writes a frame body into a growing buffer. */
export class Writer {
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

/** Reads a frame body; throws where it ends early or holds what v1 does not. */
export class Reader {
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
    const s = this.#ascii(n) ?? utf8Strict.decode(this.#buf.subarray(this.#at, this.#at + n));
    this.#at += n;
    return s;
  }

  /**
   * The next `n` bytes as text when they are all ASCII (always valid UTF-8), else undefined.
   * Most strings of a frame are short ASCII (ids, names, keys), and a TextDecoder call costs
   * more than decoding them here.
   */
  #ascii(n: number): string | undefined {
    if (n > 64) return undefined;
    const buf = this.#buf;
    let s = "";
    for (let i = this.#at; i < this.#at + n; i++) {
      const b = buf[i]!;
      if (b > 0x7f) return undefined;
      s += String.fromCharCode(b);
    }
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
        return isoOf(tag === T_TIME_AFTER ? ref + d : ref - d);
      }
      case T_JSON:
        return JSON.parse(this.str());
      default:
        throw new Error(`Unknown value tag ${tag}`);
    }
  }
}
