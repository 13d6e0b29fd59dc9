/**
 * A TCP proxy on loopback that a test can cut (every connection closed, new ones refused)
 * and restore: a database or broker that becomes unreachable and comes back.
 */

/** A running proxy. */
export interface TcpProxy {
  port: number;
  /** Closes every connection and refuses new ones until {@linkcode restore}. */
  cut(): void;
  restore(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a proxy to `127.0.0.1:targetPort` on a free port. */
export function startTcpProxy(targetPort: number): TcpProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Each pair's pipes stop on its abort signal: closing a Conn whose streams a pipe has
  // locked can fail, which would leave a half-open connection (a black hole, not an outage).
  const pairs = new Set<() => void>();
  let up = true;
  const closeConn = (c: Deno.Conn) => {
    try {
      c.close();
    } catch {
      // already closed
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      if (!up) {
        closeConn(client);
        continue;
      }
      let target: Deno.Conn;
      try {
        target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        closeConn(client);
        continue;
      }
      const abort = new AbortController();
      const { signal } = abort;
      const pipes = Promise.allSettled([
        client.readable.pipeTo(target.writable, { signal }),
        target.readable.pipeTo(client.writable, { signal }),
      ]);
      const end = () => {
        pairs.delete(end);
        abort.abort();
        pipes.then(() => {
          closeConn(client);
          closeConn(target);
        });
      };
      pairs.add(end);
      pipes.then(end);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      up = false;
      for (const end of [...pairs]) end();
    },
    restore() {
      up = true;
    },
    async [Symbol.asyncDispose]() {
      up = false;
      listener.close();
      for (const end of [...pairs]) end();
      await accepting;
    },
  };
}
