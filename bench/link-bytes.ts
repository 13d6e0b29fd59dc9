/**
 * Bytes on the vessel's link per change, end to end (changes out; acks, status, keepalives back),
 * counted by a TCP proxy between the vessel and the broker (tests/support/proxy.ts), against the
 * old way: one retained JSON envelope per change through the same proxy, QoS 2 alerts, QoS 1
 * the rest. The changes are realistic (tests/support/realistic.ts): a backlog written while the
 * link was down (creates, then patches), then live writes one a second.
 *
 *   deno run -A bench/link-bytes.ts          (or BENCH_ONLY=link deno task bench)
 */
import mqtt from "mqtt";
import type { BenchRow } from "./types.ts";
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import { type Proxy, startProxy } from "../tests/support/proxy.ts";
import { startShore } from "../tests/support/fleet.ts";
import { startVessel, type TestVessel } from "../tests/support/vessel.ts";
import { waitUntil } from "../tests/support/wait.ts";
import { realisticChanges } from "../tests/support/realistic.ts";
import { type Envelope, topicsOf } from "../sync/protocol.ts";

const BACKLOG = { creates: 2_000, patches: 250 };
const LIVE = Number(Deno.env.get("BENCH_LIVE_WRITES") ?? 30);
const SERVER = new Set(["id", "version", "createdAt", "updatedAt"]);

const total = (p: Proxy) => p.bytes.up + p.bytes.down;
const fields = (data: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(data).filter(([k]) => !SERVER.has(k)));

/** Writes one change of the stream through the vessel's record store, as the API would. */
async function write(vessel: TestVessel, e: Envelope) {
  const id = e.data.id as string;
  if (e.operation === "create") await vessel.records.create(e.entity, { id, ...fields(e.data) });
  else if (e.operation === "update") await vessel.records.update(e.entity, id, fields(e.data));
  else await vessel.records.remove(e.entity, id);
}

/** The old way: one retained JSON message per change, QoS 2 alerts, through `proxy`. */
async function oldWay(proxy: Proxy, changes: Envelope[]): Promise<number> {
  const client = await mqtt.connectAsync(proxy.url(), { protocolVersion: 5, clean: true });
  const before = total(proxy);
  const window = 256;
  let next = 0;
  await Promise.all(Array.from({ length: window }, async () => {
    while (next < changes.length) {
      const e = changes[next++]!;
      await client.publishAsync(topicsOf(e.vesselId).data(e.entity), JSON.stringify(e), {
        qos: e.entity === "alerts" ? 2 : 1,
        retain: true,
      });
    }
  }));
  await new Promise((r) => setTimeout(r, 500)); // the last acks through the proxy
  const bytes = total(proxy) - before;
  await client.endAsync();
  return bytes / changes.length;
}

/** Measures frames mode, then the old way; returns the rows. */
export async function run(): Promise<BenchRow[]> {
  const stream = realisticChanges({ ...BACKLOG, live: LIVE });
  const backlog = stream.slice(0, BACKLOG.creates + BACKLOG.patches);
  const live = stream.slice(backlog.length);
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  await using broker = await startMosquitto();
  await using proxy = startProxy({ target: { port: broker.port } });
  const shore = await startShore(broker.url, shoreDb.sql, { ackDebounceMs: 250 });
  let drain: number;
  let trickle: number;
  try {
    proxy.setMode({ kind: "cut" });
    await using vessel = await startVessel({
      sql: vesselDb.sql,
      brokerUrl: proxy.url(),
      env: { ACK_TIMEOUT_S: "60", LINK_MODE: Deno.env.get("BENCH_LINK_MODE") ?? "frames" },
    });
    for (const e of backlog) await write(vessel, e);
    const acked = (n: number) =>
      waitUntil(async () => (await vessel.report()).lastAckedSeq === n, `${n} acked`, 300_000);
    const b0 = total(proxy);
    proxy.setMode({ kind: "pass" });
    await acked(backlog.length);
    drain = (total(proxy) - b0) / backlog.length;

    const t0 = total(proxy);
    for (const e of live) {
      await write(vessel, e);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    await acked(stream.length);
    trickle = (total(proxy) - t0) / live.length;
  } finally {
    await shore.close();
  }
  await using oldProxy = startProxy({ target: { port: broker.port } });
  const old = await oldWay(oldProxy, backlog);
  console.error(
    `link: backlog ${backlog.length} changes ${drain.toFixed(1)} B/change ` +
      `(old way ${old.toFixed(1)}); live ${live.length} at 1/s ${trickle.toFixed(1)} B/change`,
  );
  return [
    {
      figure: "link bytes/change, backlog drain (frames vs one message each)",
      value: drain,
      baseline: old,
      ratio: drain / old,
      goal: "≤ 0.15",
      holds: drain / old <= 0.15,
    },
    {
      figure: "link bytes/change, live trickle 1/s (frames vs one message each)",
      value: trickle,
      baseline: old,
      ratio: trickle / old,
      goal: "≤ 0.6",
      holds: trickle / old <= 0.6,
    },
  ];
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
