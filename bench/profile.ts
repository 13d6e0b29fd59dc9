/**
 * Where a gateway process spends its CPU while serving HTTP creates: starts a gateway with the
 * V8 inspector, drives creates at 16 concurrent clients, samples with the inspector's CPU
 * profiler and prints self time by package and by function.
 *
 * `deno run --allow-all bench/profile.ts` (BENCH_SECONDS sets the sampling time). Not part of
 * `deno task bench`: it is how the figures of bench/write.ts were explained.
 */
import { freshDatabase } from "../tests/support/pg.ts";
import { freePort } from "../tests/support/ports.ts";
import { spawnGateway } from "../tests/support/process.ts";
import { envNumber } from "./common.ts";
import { HttpConnection, postRequest } from "./http-client.ts";

const TOKEN = "bench-token-0123456789abcdef";
const SECONDS = envNumber("BENCH_SECONDS", 8);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Calls the inspector over its WebSocket, one request at a time. */
async function inspector(port: number) {
  let list: { webSocketDebuggerUrl: string }[] = [];
  for (let i = 0; i < 100 && !list.length; i++) {
    list = await fetch(`http://127.0.0.1:${port}/json/list`).then((r) => r.json()).catch(() => []);
    if (!list.length) await new Promise((r) => setTimeout(r, 100));
  }
  const ws = new WebSocket(list[0]!.webSocketDebuggerUrl);
  await new Promise((r) => ws.onopen = r);
  let next = 1;
  const waiting = new Map<number, (v: unknown) => void>();
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    waiting.get(msg.id)?.(msg.result);
  };
  return {
    call: (method: string, params: unknown = {}) =>
      new Promise<unknown>((resolve) => {
        const id = next++;
        waiting.set(id, resolve);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** The package or area a frame belongs to. */
function areaOf(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  const npm = /registry\.npmjs\.org\/([^/]+(?:\/[^/]+)?)\//.exec(url);
  if (npm) return npm[1]!.startsWith("@") ? npm[1]! : npm[1]!.split("/")[0]!;
  if (url.startsWith("ext:")) return url.split("/").slice(0, 2).join("/");
  if (url.includes("/bosun/") || url.includes("/wt/")) return "bosun:" + url.split("/").pop();
  return url;
}

await using db = await freshDatabase();
const inspectPort = freePort();
const dataDir = await Deno.makeTempDir({ prefix: "bosun-profile-" });
const root = new URL("../", import.meta.url).pathname;
await using gw = spawnGateway({
  command: [Deno.execPath(), "run", `--inspect=127.0.0.1:${inspectPort}`, "-A", `${root}main.ts`],
  env: {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    API_TOKENS: TOKEN,
    MQTT_BROKER_URL: `mqtt://127.0.0.1:${freePort()}`,
    LOCAL_MODE: "false",
  },
});
const port = await gw.port();
const request = postRequest(
  "/api/work_orders",
  TOKEN,
  JSON.stringify({ title: "Inspect bilge pump", equipmentId: "pump-7", priority: 2 }),
);
const drive = async (seconds: number) => {
  const until = performance.now() + seconds * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    const conn = await HttpConnection.open(port);
    while (performance.now() < until) {
      if (await conn.send(request) !== 201) throw new Error("create failed");
      n++;
    }
    conn.close();
  }));
  return n;
};
await drive(2); // warm-up
const cdp = await inspector(inspectPort);
await cdp.call("Profiler.enable");
await cdp.call("Profiler.setSamplingInterval", { interval: 200 });
await cdp.call("Profiler.start");
const n = await drive(SECONDS);
const { profile } = await cdp.call("Profiler.stop") as {
  profile: { nodes: ProfileNode[]; startTime: number; endTime: number };
};
cdp.close();

const sampleUs = 200;
const byArea = new Map<string, number>();
const byFn = new Map<string, number>();
let total = 0;
for (const node of profile.nodes) {
  const hits = node.hitCount ?? 0;
  if (!hits || node.callFrame.functionName === "(idle)") continue;
  total += hits;
  const { functionName, url: u, lineNumber } = node.callFrame;
  const area = areaOf(u, functionName);
  byArea.set(area, (byArea.get(area) ?? 0) + hits);
  const fn = `${functionName || "(anonymous)"} ${area}:${lineNumber + 1}`;
  byFn.set(fn, (byFn.get(fn) ?? 0) + hits);
}
const perCreate = (hits: number) => (hits * sampleUs / n).toFixed(1);
console.log(`${n} creates in ${SECONDS} s; sampled busy CPU ${perCreate(total)} µs per create`);
console.log("\nself time by area (µs per create):");
for (const [k, v] of [...byArea].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
  console.log(`  ${perCreate(v).padStart(7)}  ${k}`);
}
console.log("\nself time by function (µs per create):");
for (const [k, v] of [...byFn].sort((a, b) => b[1] - a[1]).slice(0, 30)) {
  console.log(`  ${perCreate(v).padStart(7)}  ${k}`);
}
await gw.stop();
await Deno.remove(dataDir, { recursive: true });
