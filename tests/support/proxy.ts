/**
 * A TCP proxy the test owns, between a client (a gateway) and a server (the broker), that can
 * pass, cut, black-hole and throttle the link, for every open connection at once.
 *
 * - `pass`: bytes go through as they come.
 * - `cut`: every connection is closed and new ones are closed as soon as they are accepted.
 * - `blackhole`: connections are accepted and read, but nothing is forwarded and nothing is
 *   answered. What was read is held, not dropped, and goes through in order once the mode
 *   changes: that is what a real partition does to TCP (segments are retransmitted when the
 *   path returns), so a short partition can end with the connection alive, and a long one ends
 *   when a keepalive on either side gives up. A new connection reaches the server only once
 *   the partition ends.
 * - `throttle`: a bandwidth cap per direction, a one-way latency, and loss. TCP hides loss from
 *   both ends, so a lost segment is emulated as what TCP makes of it: that segment and every
 *   one behind it arrive late by a retransmission (one RTT plus Linux's minimum RTO, 200 ms).
 */

/** Link characteristics for `throttle`. */
export interface Throttle {
  /** Bandwidth per direction, bit/s. */
  bitsPerSecond: number;
  /** Added one-way latency, ms (RTT / 2). */
  latencyMs: number;
  /** Probability that a segment (1,460 bytes) is lost and retransmitted, 0–1. */
  loss: number;
}

/** 600 ms RTT, 432 kbit/s, 2 % loss: a maritime VSAT link. */
export const SATELLITE: Throttle = { bitsPerSecond: 432_000, latencyMs: 300, loss: 0.02 };

/** What the proxy does to traffic. */
export type ProxyMode =
  | { kind: "pass" }
  | { kind: "cut" }
  | { kind: "blackhole" }
  | { kind: "throttle"; throttle: Throttle };

/** Options for {@linkcode startProxy}. */
export interface ProxyOptions {
  /** Where connections go. */
  target: { hostname?: string; port: number };
  /** Port to listen on (0 or unset: a free one). */
  port?: number;
  /** Random source for loss (a seeded PRNG in the chaos suite). */
  random?: () => number;
}

/** A running proxy. */
export interface Proxy {
  port: number;
  url(scheme?: string): string;
  readonly mode: ProxyMode;
  setMode(mode: ProxyMode): void;
  /** Connections currently open. */
  readonly connections: number;
  /** Bytes delivered so far: `up` client → target, `down` target → client (a link's bill). */
  readonly bytes: { up: number; down: number };
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const SEGMENT = 1460;
const HOLD_LIMIT = 8 * 1024 * 1024;
const MIN_RTO_MS = 200;

interface Chunk {
  data: Uint8Array;
  releaseAt: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the proxy in `pass` mode. */
export function startProxy(options: ProxyOptions): Proxy {
  const { target, random = Math.random } = options;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: options.port ?? 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  let mode: ProxyMode = { kind: "pass" };
  // Read through a function: the mode changes while a pipe awaits, which narrowing cannot see.
  const kind = (): ProxyMode["kind"] => mode.kind;
  let closed = false;
  const pairs = new Set<Pair>();
  const bytes = { up: 0, down: 0 };
  // Wakes everything that waits for a mode change.
  let changed = Promise.withResolvers<void>();

  /** One direction of one connection: a queue between a reader and a writer. */
  class Pipe {
    #queue: Chunk[] = [];
    #held = 0;
    #wake = Promise.withResolvers<void>();
    #room = Promise.withResolvers<void>();
    #linkFreeAt = 0;
    #eof = false;

    constructor(readonly pair: Pair, readonly dir: "up" | "down") {}

    /** Reads `src` until EOF, timing each segment as the current mode says. */
    async read(src: Deno.Conn) {
      const buf = new Uint8Array(64 * 1024);
      try {
        while (!this.pair.closed) {
          while (this.#held > HOLD_LIMIT && !this.pair.closed) await this.#room.promise;
          const n = await src.read(buf);
          if (n === null) break;
          this.#push(buf.slice(0, n));
        }
      } catch {
        // reset by the peer or closed by us
      }
      this.#eof = true;
      this.#wake.resolve();
    }

    #push(data: Uint8Array) {
      const now = Date.now();
      if (mode.kind !== "throttle") {
        this.#queue.push({ data, releaseAt: now });
      } else {
        const { bitsPerSecond, latencyMs, loss } = mode.throttle;
        for (let off = 0; off < data.length; off += SEGMENT) {
          const seg = data.subarray(off, off + SEGMENT);
          this.#linkFreeAt = Math.max(this.#linkFreeAt, now) + (seg.length * 8 * 1000) /
              bitsPerSecond;
          let releaseAt = this.#linkFreeAt + latencyMs;
          if (random() < loss) releaseAt += 2 * latencyMs + MIN_RTO_MS;
          // TCP delivers in order: a late segment holds back the ones behind it.
          const last = this.#queue.at(-1);
          if (last && last.releaseAt > releaseAt) releaseAt = last.releaseAt;
          this.#queue.push({ data: seg, releaseAt });
        }
      }
      this.#held += data.length;
      this.#wake.resolve();
    }

    /** Writes the queue to `dst` as chunks fall due; closes the pair at EOF. */
    async write(dst: Deno.Conn) {
      try {
        while (!this.pair.closed) {
          const chunk = this.#queue[0];
          if (!chunk) {
            if (this.#eof) break;
            this.#wake = Promise.withResolvers();
            await this.#wake.promise;
            continue;
          }
          if (kind() === "blackhole") {
            await changed.promise;
            continue;
          }
          const wait = chunk.releaseAt - Date.now();
          if (wait > 0) await Promise.race([sleep(wait), changed.promise]);
          if (this.pair.closed || kind() === "blackhole") continue;
          if (chunk.releaseAt > Date.now()) continue;
          this.#queue.shift();
          this.#held -= chunk.data.length;
          this.#room.resolve();
          this.#room = Promise.withResolvers();
          let off = 0;
          while (off < chunk.data.length) off += await dst.write(chunk.data.subarray(off));
          bytes[this.dir] += off;
        }
      } catch {
        // the destination went away
      }
      this.pair.close();
    }

    /** Lets a blocked reader notice that the pair closed. */
    release() {
      this.#room.resolve();
      this.#wake.resolve();
    }
  }

  /** A client connection and, once the link lets it through, its server connection. */
  class Pair {
    closed = false;
    upstream?: Deno.Conn;
    readonly up = new Pipe(this, "up");
    readonly down = new Pipe(this, "down");

    constructor(readonly client: Deno.Conn) {}

    async run() {
      const reading = this.up.read(this.client);
      // The server sees nothing of a connection made during a partition until it ends.
      while (!this.closed && kind() === "blackhole") await changed.promise;
      if (this.closed || kind() === "cut") return this.close();
      try {
        this.upstream = await Deno.connect({
          hostname: target.hostname ?? "127.0.0.1",
          port: target.port,
        });
      } catch {
        return this.close();
      }
      if (this.closed) return this.close();
      await Promise.all([
        reading,
        this.up.write(this.upstream),
        this.down.read(this.upstream),
        this.down.write(this.client),
      ]);
    }

    close() {
      if (this.closed) return;
      this.closed = true;
      pairs.delete(this);
      for (const conn of [this.client, this.upstream]) {
        try {
          conn?.close();
        } catch {
          // already closed
        }
      }
      this.up.release();
      this.down.release();
    }
  }

  const accepting = (async () => {
    for await (const conn of listener) {
      if (closed || kind() === "cut") {
        conn.close();
        continue;
      }
      const pair = new Pair(conn);
      pairs.add(pair);
      pair.run().catch(() => pair.close());
    }
  })().catch(() => {});

  const close = async () => {
    if (closed) return;
    closed = true;
    listener.close();
    for (const pair of [...pairs]) pair.close();
    changed.resolve();
    await accepting;
  };

  return {
    port,
    url: (scheme = "mqtt") => `${scheme}://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    setMode(next) {
      mode = next;
      if (next.kind === "cut") { for (const pair of [...pairs]) pair.close(); }
      const was = changed;
      changed = Promise.withResolvers();
      was.resolve();
    },
    get connections() {
      return pairs.size;
    },
    bytes,
    close,
    [Symbol.asyncDispose]: close,
  };
}
