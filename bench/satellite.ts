/**
 * A backlog drained over an emulated satellite link (tests/support/proxy.ts: 432 kbit/s each
 * way, 300 ms one way, 1 % loss) between the vessel and the broker, in frames mode, to a shore
 * gateway on the broker's side. The link and the shore are processes of their own
 * (tests/support/proxy-process.ts, and `main.ts` with `ROLE=shore` and its production ack
 * debounce), so the bench's event loop holds the vessel engine alone: the time until every
 * change is acknowledged ashore against the
 * time the link needs to carry the bytes that crossed it; and the apply delay of alerts
 * committed during that drain (record `createdAt` on the vessel to `applied_at` ashore, one
 * PostgreSQL clock).
 *
 *   deno run -A bench/satellite.ts     (BENCH_SAT_N=20000 for a smaller backlog, BENCH_TRACE=1
 *                                       for a line a second of link use and acks;
 *                                       or BENCH_ONLY=satellite deno task bench)
 */
import type { BenchRow } from "./types.ts";
import { percentile } from "./types.ts";
import { fillChangeLog, metricOf } from "./common.ts";
import { freshDatabase } from "../tests/support/pg.ts";
import { startMosquitto } from "../tests/support/mosquitto.ts";
import type { Throttle } from "../tests/support/proxy.ts";
import { startProxyProcess } from "../tests/support/proxy-process.ts";
import { spawnLocalGateway } from "../tests/support/process.ts";
import { startVessel } from "../tests/support/vessel.ts";
import { waitUntil } from "../tests/support/wait.ts";

/** The link: 432 kbit/s each way, 600 ms round trip, 1 % loss. */
const LINK: Throttle = { bitsPerSecond: 432_000, latencyMs: 300, loss: 0.01 };
const ALERT_EVERY_MS = 500;
const TOKEN = "bench-token-0123456789abcdef";

/** Drains the backlog over the link; returns the two rows. */
export async function run(): Promise<BenchRow[]> {
  const n = Number(Deno.env.get("BENCH_SAT_N") ?? 100_000);
  await using vesselDb = await freshDatabase();
  await using shoreDb = await freshDatabase();
  await using broker = await startMosquitto();
  // The link and the shore run in processes of their own (the link at a higher priority where
  // the OS allows it): on this event loop they slowed with the vessel's work, and the figure
  // then measured the machine as much as the link (tests/support/proxy-process.ts).
  await using proxy = await startProxyProcess({ target: { port: broker.port } });
  const shoreDir = await Deno.makeTempDir({ prefix: "bosun-bench-sat-shore-" });
  await using shore = spawnLocalGateway({
    databaseUrl: shoreDb.url,
    dataDir: shoreDir,
    token: TOKEN,
    env: { ROLE: "shore", VESSEL_ID: "shore-bench", MQTT_BROKER_URL: broker.url },
  });
  try {
    await shore.waitForLog(/"msg":"MQTT connected"/);
    await proxy.setMode({ kind: "cut" });
    await using vessel = await startVessel({
      sql: vesselDb.sql,
      brokerUrl: proxy.url(),
      env: { ACK_TIMEOUT_S: "30", LINK_MODE: "frames", OUTBOX_MAX_PENDING: "2000000" },
    });
    // Shore's ack as the vessel applied it, from the engine's events: polling `/health` for it
    // (five times a second) ran the outbox's counts against the database the claims use.
    let ackedSeq = 0;
    vessel.engine.onEvent((e) => {
      if (e.type === "acked") ackedSeq = Math.max(ackedSeq, e.seq);
    });
    await fillChangeLog(vesselDb.sql, n);
    vessel.gate.added(n);
    const { up: up0, down: down0 } = await proxy.bytes();
    const started = performance.now();
    await proxy.setMode({ kind: "throttle", throttle: LINK });

    // Alerts while the backlog drains, until shore has acknowledged 90 % of it.
    let alerts = 0;
    let draining = true;
    const writer = (async () => {
      while (draining) {
        await new Promise((r) => setTimeout(r, ALERT_EVERY_MS));
        if (!draining) break;
        await vessel.records.create("alerts", {
          equipmentId: "engine-1",
          severity: "critical",
          message: `bilge level high ${alerts}`,
          acknowledged: false,
        });
        alerts++;
      }
    })();
    // BENCH_TRACE=1: once a second, what crossed the link and how far shore's ack got.
    let lastUp = up0;
    let lastAck = 0;
    let tracing = false;
    const tracer = Deno.env.get("BENCH_TRACE")
      ? setInterval(async () => {
        if (tracing) return;
        tracing = true;
        const acked = ackedSeq;
        const up = (await proxy.bytes()).up - lastUp;
        console.error(
          `link t=${(performance.now() / 1000).toFixed(1)} up ${up} B (${
            (up * 8 / LINK.bitsPerSecond * 100).toFixed(0)
          } % of the link) acked ${acked} (+${acked - lastAck})`,
        );
        lastUp += up;
        lastAck = acked;
        tracing = false;
      }, 1000)
      : undefined;
    await waitUntil(
      () => ackedSeq >= 0.9 * n,
      "90 % of the backlog acked",
      3_600_000,
      200,
    );
    draining = false;
    await writer;
    await waitUntil(
      () => ackedSeq === n + alerts,
      "everything acked ashore",
      3_600_000,
      50,
    );
    const seconds = (performance.now() - started) / 1000;
    clearInterval(tracer);
    const bytes = await proxy.bytes();
    const up = bytes.up - up0;
    const down = bytes.down - down0;
    // Each direction has its own 432 kbit/s: the busier one sets what the link needs.
    const need = Math.max(up, down) * 8 / LINK.bitsPerSecond;

    const delays = (await shoreDb.sql<{ ms: number }[]>`
      select extract(epoch from applied_at - created_at)::float8 * 1000 as ms
      from shore_records where entity = 'alerts'`).map((r) => r.ms).sort((a, b) => a - b);
    // Every change the shore received twice crossed the link twice: a re-send or a gap request
    // that a slow or lossy link did not need.
    const shorePort = await shore.port();
    const duplicates = await metricOf(shorePort, "bosun_shore_duplicates_total");
    const gapRequests = await metricOf(shorePort, "bosun_shore_catchup_requests_total");
    const p50 = percentile(delays, 0.5);
    const p99 = percentile(delays, 0.99);
    const max = delays.at(-1) ?? NaN;
    console.error(
      `satellite: ${n} changes + ${alerts} alerts acknowledged ashore in ${
        seconds.toFixed(1)
      } s; ` +
        `link bytes up ${up} down ${down} (${(up / n).toFixed(1)} B/change up) need ` +
        `${need.toFixed(1)} s at 432 kbit/s: ratio ${(seconds / need).toFixed(2)}; alert apply ` +
        `delay (${delays.length}) p50 ${p50.toFixed(0)} ms p99 ${p99.toFixed(0)} ms max ` +
        `${
          max.toFixed(0)
        } ms; shore saw ${duplicates} duplicates, sent ${gapRequests} gap requests`,
    );
    return [
      {
        figure: `satellite: ${n} backlog acked ashore (s; baseline link time for its bytes)`,
        value: seconds,
        baseline: need,
        ratio: seconds / need,
        goal: "≤ 1.25×",
        holds: seconds / need <= 1.25,
      },
      {
        figure: `satellite: alert apply delay during the drain, p99 of ${delays.length} (ms)`,
        value: p99,
        baseline: null,
        ratio: null,
        goal: "≤ 2000 ms",
        holds: p99 <= 2_000,
      },
    ];
  } finally {
    await shore.stop();
    await Deno.remove(shoreDir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
