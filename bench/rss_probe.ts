import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { benchEngine, fillChangeLog, nextEvent } from "./common.ts";
const gc = (globalThis as { gc?: () => void }).gc!;
const mem = (label: string) => {
  gc();
  const m = Deno.memoryUsage();
  const f = (b: number) => (b / 1048576).toFixed(1);
  const status = Deno.readTextFileSync("/proc/self/status");
  const anon = /RssAnon:\s+(\d+)/.exec(status)![1];
  const file = /RssFile:\s+(\d+)/.exec(status)![1];
  console.log(
    `${label}: rss ${f(m.rss)} heapTotal ${f(m.heapTotal)} heapUsed ${f(m.heapUsed)} external ${
      f(m.external)
    } anon ${(Number(anon) / 1024).toFixed(1)} file ${(Number(file) / 1024).toFixed(1)}`,
  );
};
await using db = await freshDatabase();
await using broker = await startMosquitto();
const { engine, gate } = benchEngine(db.sql, broker.url, "probe");
const c = nextEvent(engine, (e) => e.type === "connected");
engine.start();
await c;
mem("connected");
for (const n of [20000, 100000, 100000, 100000]) {
  let count = 0;
  const off = engine.onEvent((e) => {
    if (e.type === "published") count++;
  });
  await fillChangeLog(db.sql, n);
  gate.added(n);
  while (count < n) await new Promise((r) => setTimeout(r, 200));
  off();
  await new Promise((r) => setTimeout(r, 1000));
  mem(`after ${n}`);
}
await engine.stop();
