/**
 * `deno task bench`: runs every bench module, prints one table and writes bench/results.json.
 *
 * Figures from this machine are noisy (2 cores, shared with other work): read the ratios.
 * `BENCH_ONLY=write,drain` runs a subset; `BENCH_PG_URL` names a PostgreSQL server to use instead
 * of a private one started here.
 */
import type { BenchModule, BenchRow } from "./types.ts";
import { createPgServer } from "../tests/support/pgserver.ts";

/** Every bench, in order. Add a module here; it exports `run(): Promise<BenchRow[]>`. */
const BENCHES: [string, () => Promise<BenchModule>][] = [
  ["drain", () => import("./drain.ts")],
  ["shore-ingest", () => import("./shore-ingest.ts")],
  ["write", () => import("./write.ts")],
  ["latency", () => import("./latency.ts")],
  ["catchup", () => import("./catchup.ts")],
  ["outage", () => import("./outage.ts")],
  ["fleet", () => import("./fleet.ts")],
  ["fleet200", () => import("./fleet200.ts")],
  ["isolation", () => import("./isolation.ts")],
  ["first-start", () => import("./first-start.ts")],
  ["link", () => import("./link-bytes.ts")],
  ["satellite", () => import("./satellite.ts")],
  ["slow-uploads", () => import("./slow-uploads.ts")],
  ["two-way", () => import("./two-way.ts")],
];

const fmt = (n: number | null, digits = 2) =>
  n === null || Number.isNaN(n) ? "" : Number.isInteger(n) ? String(n) : n.toFixed(digits);

const only = Deno.env.get("BENCH_ONLY")?.split(",");

// A PostgreSQL server of the bench's own (fsync on, as the machine's), unless one is named:
// the machine's server is shared with test runs that use up its connections and its CPU in
// bursts ("too many clients" failed publisher updates in a run on it).
await using server = Deno.env.get("BENCH_PG_URL")
  ? undefined
  : await createPgServer({ fsync: true });
Deno.env.set("TEST_PG_URL", Deno.env.get("BENCH_PG_URL") ?? server!.url);
const started = performance.now();
const rows: (BenchRow & { bench: string; seconds: number })[] = [];
for (const [name, load] of BENCHES) {
  if (only && !only.includes(name)) continue;
  console.error(`bench: running ${name}`);
  const t = performance.now();
  const out = await (await load()).run();
  const seconds = Math.round((performance.now() - t) / 100) / 10;
  console.error(`bench: ${name} took ${seconds} s`);
  for (const row of out) rows.push({ bench: name, seconds, ...row });
}

const table = [
  ["figure", "value", "baseline", "ratio", "goal", "holds"],
  ...rows.map((r) => [
    r.figure,
    fmt(r.value),
    fmt(r.baseline),
    fmt(r.ratio),
    r.goal,
    r.holds === null ? "" : r.holds ? "yes" : "NO",
  ]),
];
const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
for (const row of table) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
const total = Math.round((performance.now() - started) / 1000);
const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
console.log(`\n${rows.length} rows in ${total} s; load average at the end ${load}`);

await Deno.writeTextFile(
  new URL("./results.json", import.meta.url),
  JSON.stringify({ at: new Date().toISOString(), seconds: total, loadavg: load, rows }, null, 2) +
    "\n",
);
