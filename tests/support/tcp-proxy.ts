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
  const conns = new Set<Deno.Conn>();
  let up = true;
  const close = (c: Deno.Conn) => {
    conns.delete(c);
    try {
      c.close();
    } catch {
      // already closed
    }
  };
  const accepting = (async () => {
    for await (const client of listener) {
      if (!up) {
        close(client);
        continue;
      }
      let target: Deno.Conn;
      try {
        target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      } catch {
        close(client);
        continue;
      }
      conns.add(client);
      conns.add(target);
      const end = () => {
        close(client);
        close(target);
      };
      client.readable.pipeTo(target.writable).catch(() => {}).finally(end);
      target.readable.pipeTo(client.writable).catch(() => {}).finally(end);
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut() {
      up = false;
      for (const c of [...conns]) close(c);
    },
    restore() {
      up = true;
    },
    async [Symbol.asyncDispose]() {
      up = false;
      listener.close();
      for (const c of [...conns]) close(c);
      await accepting;
    },
  };
}
