/**
 * Request bodies: read in one place under bounds ({@linkcode bodyReader}: size, how many at
 * once, how long), then parsed as JSON ({@linkcode readJson}: 415 when not JSON, 400 when its
 * bytes are not UTF-8 or do not parse).
 */
import type { Context, MiddlewareHandler } from "hono";
import { HttpError } from "../core/errors.ts";

/** Bounds for {@linkcode bodyReader}. */
export interface BodyReaderOptions {
  /** Largest body accepted; past it, 413. */
  maxBytes: number;
  /** Bodies read at once; memory held by bodies stays below `slots × maxBytes`. */
  slots?: number;
  /** How long a request waits for a slot before a 503 with `Retry-After`. */
  waitMs?: number;
  /** How long a body may take to arrive once its read starts; past it, 408. */
  timeoutMs?: number;
}

/**
 * Reads every request body whole before the route runs, so that no client holds more than
 * the bounds allow, and leaves it where the route's `c.req.arrayBuffer()` finds it.
 *
 * Measured before (bench/slow-uploads.ts): 1,000 connections each declaring a 1 MiB body and
 * sending 5 bytes took the gateway from 96 MiB to 1,148 MiB RSS and `/health` from 9 ms to
 * 22 s. Deno's `Request.text()` reserves the declared length up front, and nothing bounded
 * how many reads wait at once or for how long. Here the body is read chunk by chunk (memory
 * follows the bytes that came, not the bytes declared), by at most `slots` requests at a time,
 * each given `timeoutMs` to finish. Hono's bodyLimit, which this replaces, had neither bound.
 */
export function bodyReader(options: BodyReaderOptions): MiddlewareHandler {
  const { maxBytes, slots = 32, waitMs = 2_000, timeoutMs = 10_000 } = options;
  const gate = new Slots(slots);
  const tooLarge = () => new HttpError(413, "payload_too_large", `Body exceeds ${maxBytes} bytes`);
  // Requests already read: `/catchup` and `/catchup/*` both match `POST /catchup`, and the
  // second pass would find the stream locked.
  const read = new WeakSet<Request>();
  return async (c, next) => {
    const raw = c.req.raw;
    if (!raw.body || read.has(raw)) return next();
    read.add(raw);
    const declared = raw.headers.get("content-length");
    if (declared !== null && Number(declared) > maxBytes) throw tooLarge();
    if (!await gate.acquire(waitMs)) {
      throw new HttpError(503, "busy", "Too many request bodies arriving at once", [], {
        "Retry-After": "2",
      });
    }
    try {
      const body = await readWithin(raw.body, { maxBytes, timeoutMs, tooLarge });
      // The route's `c.req.arrayBuffer()` answers from Hono's body cache, which holds the
      // promise of each body read (typed as the value). Not `new Request(raw, { body })` as
      // Hono's bodyLimit does: copying the request reads its signal, and Deno then prints a
      // warning about that signal's legacy behaviour on stderr, a line that is not a log record.
      (c.req.bodyCache as Record<string, unknown>).arrayBuffer = Promise.resolve(body);
    } finally {
      gate.release();
    }
    return next();
  };
}

async function readWithin(
  stream: ReadableStream<Uint8Array>,
  { maxBytes, timeoutMs, tooLarge }: {
    maxBytes: number;
    timeoutMs: number;
    tooLarge: () => HttpError;
  },
): Promise<ArrayBuffer> {
  const reader = stream.getReader();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // Ends the pending read; the loop below then answers 408.
    reader.cancel().catch(() => {});
  }, timeoutMs);
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (timedOut) break;
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        reader.cancel().catch(() => {});
        throw tooLarge();
      }
      chunks.push(value);
    }
  } catch (err) {
    if (!timedOut) throw err;
  } finally {
    clearTimeout(timer);
  }
  if (timedOut) {
    throw new HttpError(
      408,
      "request_timeout",
      `Body did not arrive within ${timeoutMs / 1000} s (${size} bytes came)`,
    );
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return body.buffer;
}

/** A counting semaphore whose waits give up after a while. */
class Slots {
  #free: number;
  #waiting: ((granted: boolean) => void)[] = [];
  constructor(count: number) {
    this.#free = count;
  }
  acquire(waitMs: number): Promise<boolean> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => {
      const waiter = (granted: boolean) => {
        clearTimeout(timer);
        resolve(granted);
      };
      const timer = setTimeout(() => {
        this.#waiting.splice(this.#waiting.indexOf(waiter), 1);
        resolve(false);
      }, waitMs);
      this.#waiting.push(waiter);
    });
  }
  release(): void {
    // A freed slot goes straight to the longest waiter.
    const next = this.#waiting.shift();
    if (next) next(true);
    else this.#free++;
  }
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

// `fatal`: a byte that is not UTF-8 refuses the body. The default decoder (and so
// `c.req.text()` / `c.req.json()`) turns it into U+FFFD, and the record was stored with a
// character the client never sent.
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Reads the request body as JSON; the caller validates its shape. */
export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!JSON_TYPE.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "Body must be application/json");
  }
  let text: string;
  try {
    text = decoder.decode(await c.req.arrayBuffer());
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw new HttpError(400, "invalid_encoding", "Body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "invalid_json", `Body is not valid JSON: ${(err as Error).message}`);
  }
}
