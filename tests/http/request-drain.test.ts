import assert from "node:assert/strict";
import { Drain } from "../../http/request-drain.ts";
import { toHttpError } from "../../core/errors.ts";
import { withDeadline } from "../support/wait.ts";

Deno.test("a request still uploading its body when the stop comes is answered in full", async () => {
  const drain = new Drain();
  let entered!: () => void;
  const handlerEntered = new Promise<void>((r) => entered = r);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    drain.wrap(async (req) => {
      entered();
      return new Response(`got ${(await req.text()).length}`);
    }),
  );
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  const enc = new TextEncoder();
  await conn.write(enc.encode(
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nab",
  ));
  await handlerEntered;
  assert.equal(drain.inFlight, 1);

  // As main.ts closes: drain, then shut the listener.
  const closed = drain.drain(10_000).then(() => server.shutdown());
  const refused = await fetch(`http://127.0.0.1:${server.addr.port}/`);
  assert.equal(refused.status, 503);
  assert.equal((await refused.json()).error.code, "shutting_down");

  await conn.write(enc.encode("cd"));
  const answer = await new Response(conn.readable).text();
  assert.match(answer, /^HTTP\/1\.1 200/);
  assert.match(answer, /got 4$/);
  await closed;
  assert.equal(drain.inFlight, 0);
});

Deno.test("draining with nothing in flight does not wait out its timeout, and refuses what comes after", async () => {
  const drain = new Drain();
  let handled = 0;
  const handler = drain.wrap(() => {
    handled++;
    return new Response("ok");
  });
  assert.equal(
    (await handler(new Request("http://x/"), {} as Deno.ServeHandlerInfo<Deno.NetAddr>)).status,
    200,
  );
  // A drain that waited its full 10 minutes here would fail at the 10 s deadline instead.
  await withDeadline(drain.drain(600_000), "an idle drain to return", 10_000);
  const late = await handler(new Request("http://x/"), {} as Deno.ServeHandlerInfo<Deno.NetAddr>);
  assert.equal(late.status, 503);
  assert.equal((await late.json()).error.code, "shutting_down");
  assert.equal(handled, 1, "the request after the drain never reached the handler");
});

Deno.test("a request body cut off mid-read maps to 400, not 500", () => {
  for (const err of [new Deno.errors.BadResource("gone"), new Deno.errors.UnexpectedEof("eof")]) {
    const mapped = toHttpError(err);
    assert.equal(mapped?.status, 400);
    assert.equal(mapped?.code, "body_unreadable");
  }
});
