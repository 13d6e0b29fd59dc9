import assert from "node:assert/strict";
import { startProxy } from "./proxy.ts";
import { startProxyProcess } from "./proxy-process.ts";
import { waitUntil } from "./wait.ts";

/** An echo server on a free port. */
function echoServer() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const serving = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          await conn.readable.pipeTo(conn.writable);
        } catch {
          // closed
        }
        conns.delete(conn);
      })();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      await serving;
    },
  };
}

async function readExactly(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let off = 0;
  while (off < n) {
    const got = await conn.read(out.subarray(off));
    if (got === null) throw new Error(`EOF after ${off} of ${n} bytes`);
    off += got;
  }
  return out;
}

/** Resolves with the connection's next read: null at EOF or reset. */
async function nextRead(conn: Deno.Conn): Promise<number | null> {
  try {
    return await conn.read(new Uint8Array(16));
  } catch {
    return null;
  }
}

Deno.test("proxy passes bytes through intact in both directions", async () => {
  await using echo = echoServer();
  await using proxy = startProxy({ target: { port: echo.port } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  const payload = crypto.getRandomValues(new Uint8Array(60_000));
  const big = new Uint8Array(600_000);
  for (let i = 0; i < 10; i++) big.set(payload, i * payload.length);
  const writing = (async () => {
    let off = 0;
    while (off < big.length) off += await conn.write(big.subarray(off));
  })();
  const back = await readExactly(conn, big.length);
  await writing;
  assert.deepEqual(back, big);
  conn.close();
});

Deno.test("proxy cut closes open connections and refuses new ones until passed again", async () => {
  await using echo = echoServer();
  await using proxy = startProxy({ target: { port: echo.port } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  await conn.write(new Uint8Array([1, 2, 3]));
  assert.deepEqual(await readExactly(conn, 3), new Uint8Array([1, 2, 3]));

  proxy.setMode({ kind: "cut" });
  assert.equal(await nextRead(conn), null);
  conn.close();
  const refused = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  assert.equal(await nextRead(refused), null);
  refused.close();

  proxy.setMode({ kind: "pass" });
  const again = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  await again.write(new Uint8Array([4]));
  assert.deepEqual(await readExactly(again, 1), new Uint8Array([4]));
  again.close();
});

Deno.test("proxy blackhole answers nothing, then delivers what it held in order", async () => {
  await using echo = echoServer();
  await using proxy = startProxy({ target: { port: echo.port } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  proxy.setMode({ kind: "blackhole" });
  await conn.write(new Uint8Array([7, 8, 9]));
  const fresh = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  await fresh.write(new Uint8Array([5]));
  const pending = readExactly(conn, 3);
  const outcome = await Promise.race([
    pending.then(() => "answered"),
    new Promise((r) => setTimeout(() => r("silent"), 300)),
  ]);
  assert.equal(outcome, "silent");

  proxy.setMode({ kind: "pass" });
  assert.deepEqual(await pending, new Uint8Array([7, 8, 9]));
  assert.deepEqual(await readExactly(fresh, 1), new Uint8Array([5]));
  conn.close();
  fresh.close();
});

Deno.test("proxy throttle delivers intact but no sooner than its bandwidth allows", async () => {
  await using echo = echoServer();
  await using proxy = startProxy({ target: { port: echo.port } });
  // 16 kB each way at 320 kbit/s takes at least 0.4 s each way: the bound is arithmetic, not a
  // measured speed, since the proxy schedules every segment by the cap before sending it.
  proxy.setMode({
    kind: "throttle",
    throttle: { bitsPerSecond: 320_000, latencyMs: 50, loss: 0.5 },
  });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  const payload = crypto.getRandomValues(new Uint8Array(16_000));
  const started = Date.now();
  await conn.write(payload);
  const back = await readExactly(conn, payload.length);
  const elapsed = Date.now() - started;
  assert.deepEqual(back, payload);
  assert.ok(elapsed >= 800, `16 kB each way at 320 kbit/s arrived after only ${elapsed} ms`);
  conn.close();
});

Deno.test("proxy in a process of its own: modes over its pipe, bytes counted both ways", async () => {
  await using echo = echoServer();
  await using proxy = await startProxyProcess({ target: { port: echo.port } });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  const payload = crypto.getRandomValues(new Uint8Array(20_000));
  await conn.write(payload);
  assert.deepEqual(await readExactly(conn, payload.length), payload);
  // The count follows the write that delivered the bytes: poll, the pipe is another process.
  const counted = async (n: number) => {
    const { up, down } = await proxy.bytes();
    return up === n && down === n;
  };
  await waitUntil(() => counted(20_000), "20,000 bytes counted each way", 10_000);

  await proxy.setMode({ kind: "cut" });
  assert.equal(await nextRead(conn), null);
  conn.close();

  await proxy.setMode({
    kind: "throttle",
    throttle: { bitsPerSecond: 1e6, latencyMs: 5, loss: 0 },
  });
  const again = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
  await again.write(new Uint8Array([4, 2]));
  assert.deepEqual(await readExactly(again, 2), new Uint8Array([4, 2]));
  await waitUntil(() => counted(20_002), "2 more bytes counted each way", 10_000);
  again.close();
});
