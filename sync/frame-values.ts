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

/** Two decimal digits of `s` at `i` (the caller checked they are digits). */
const d2 = (s: string, i: number) => (s.charCodeAt(i) - 48) * 10 + s.charCodeAt(i + 1) - 48;

const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/**
 * The ms of an ISO timestamp `toISOString` writes exactly so, else undefined. Computed from the
 * digits (every record has several: parsing and formatting each back was a tenth of the
 * encoder's time): `toISOString` writes `s` back exactly when each field is in its range.
 */
export function timeOf(s: unknown): number | undefined {
  if (typeof s !== "string" || s.length !== 24) return undefined;
  if (s === lastIso) return lastMs; // lastIso is 24 characters: toISOString wrote it
  if (!TIME_RE.test(s)) return undefined;
  const year = d2(s, 0) * 100 + d2(s, 2);
  if (year < 100) {
    // Date.UTC takes years 0-99 as 1900-1999: the slow way, for these rare ones.
    const ms = Date.parse(s);
    return Number.isNaN(ms) || new Date(ms).toISOString() !== s ? undefined : ms;
  }
  const month = d2(s, 5);
  const day = d2(s, 8);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1) return undefined;
  if (day > DAYS[month - 1]! + (month === 2 && leap ? 1 : 0)) return undefined;
  const hour = d2(s, 11);
  const minute = d2(s, 14);
  const second = d2(s, 17);
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  const ms = Date.UTC(
    year,
    month - 1,
    day,
    hour,
    minute,
    second,
    d2(s, 20) * 10 + s.charCodeAt(22) - 48,
  );
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

/** The value of a lowercase hex digit's char code. */
const hexValue = (c: number) => c <= 57 ? c - 48 : c - 87;

/** How many bytes `Writer.varint` takes for `n`. */
function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    bytes++;
  }
  return bytes;
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
    // At most 3 bytes per UTF-16 unit: write after room for the longest length varint, then
    // put the length down and move the bytes back where it took less (in place, no copy made).
    const most = s.length * 3;
    const room = varintBytes(most);
    this.#room(most + room);
    const start = this.#at + room;
    const { written } = utf8.encodeInto(s, this.#buf.subarray(start, start + most));
    this.varint(written);
    if (this.#at !== start) this.#buf.copyWithin(this.#at, start, start + written);
    this.#at += written;
  }

  /** A lowercase uuid (the caller checked it against UUID_RE) as its 16 bytes. */
  uuid(s: string) {
    this.#room(16);
    for (let j = 0; j < 36; j += 2) {
      if (j === 8 || j === 13 || j === 18 || j === 23) j++;
      this.#buf[this.#at++] = (hexValue(s.charCodeAt(j)) << 4) | hexValue(s.charCodeAt(j + 1));
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
