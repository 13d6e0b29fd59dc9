/**
 * PGlite served on a loopback socket in the PostgreSQL wire protocol, so the embedded database
 * and a real PostgreSQL are reached by one client (`postgres`) and one SQL path.
 *
 * This replaces `@electric-sql/pglite-socket`, whose package declares seven PGlite extensions
 * (age, pgvector, pgtap, …) as peer dependencies: Deno installs peer dependencies, so every
 * first start downloaded them although bosun loads none. What bosun needs of it is this much:
 * frame the client's messages, answer an SSL request with "N", and hand each message to
 * PGlite, one session at a time (PGlite runs one backend; a pool of 1 is what db/connection.ts
 * opens against it).
 */
import type { PGlite } from "@electric-sql/pglite";

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;

/** A running loopback server; `url` is what `postgres()` connects to. */
export interface WireServer {
  url: string;
  stop(): Promise<void>;
}

/** Serves `db` on 127.0.0.1 at a port the OS picks. */
export function serveWire(db: PGlite): WireServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  let current: Deno.Conn | undefined;
  // Connections are served one after the other: a second one (postgres.js reconnecting while
  // the old socket closes) waits in the accept queue instead of being refused.
  const loop = (async () => {
    for await (const conn of listener) {
      current = conn;
      // Each answer is one small write the client waits for: Nagle's algorithm would hold it
      // back for the client's delayed ACK (tens of ms a statement).
      (conn as Deno.TcpConn).setNoDelay(true);
      try {
        await session(db, conn);
      } catch {
        // The client went away mid-message: its session is over either way.
      } finally {
        current = undefined;
        try {
          conn.close();
        } catch {
          // already closed
        }
        // A transaction the client left open would hold PGlite's one backend for good.
        if (!db.closed && db.isInTransaction()) await db.exec("ROLLBACK").catch(() => {});
      }
    }
  })();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      listener.close();
      try {
        current?.close();
      } catch {
        // already closed
      }
      await loop.catch(() => {});
    },
  };
}

/** One client session: read, frame, execute, answer, until the client closes. */
async function session(db: PGlite, conn: Deno.Conn): Promise<void> {
  let buf: Uint8Array = new Uint8Array(0);
  let started = false;
  const chunk = new Uint8Array(64 * 1024);
  while (true) {
    const n = await conn.read(chunk);
    if (n === null) return;
    buf = concat(buf, chunk.subarray(0, n));
    while (true) {
      const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      let size: number;
      if (!started) {
        // Untyped start-up packets: length, then a code (SSL, cancel, or protocol 3.0).
        if (buf.length < 8) break;
        size = view.getInt32(0);
        const code = view.getInt32(4);
        if (buf.length < size) break;
        if (code === SSL_REQUEST) {
          buf = buf.slice(size);
          await writeAll(conn, new TextEncoder().encode("N"));
          continue;
        }
        if (code === CANCEL_REQUEST) return; // not supported by PGlite; the client just waits
        started = true;
      } else {
        if (buf.length < 5) break;
        size = 1 + view.getInt32(1);
        if (buf.length < size) break;
      }
      const message = buf.slice(0, size);
      buf = buf.slice(size);
      const out: Uint8Array[] = [];
      await db.runExclusive(() =>
        db.execProtocolRawStream(message, { onRawData: (d) => out.push(d.slice()) })
      );
      const answer = out.length === 1 ? out[0]! : out.reduce(concat, new Uint8Array(0));
      if (answer.length) await writeAll(conn, answer);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b.slice();
  const c = new Uint8Array(a.length + b.length);
  c.set(a);
  c.set(b, a.length);
  return c;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) off += await conn.write(data.subarray(off));
}
