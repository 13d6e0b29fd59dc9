/**
 * `deno task bench`: runs every bench module, prints one table and writes bench/results.json.
 *
 * Figures from this machine are noisy (2 cores, shared with other work): read the ratios.
 */
import type { BenchModule, BenchRow } from "./types.ts";

/** Every bench, in order. Add a module here; it exports `run(): Promise<BenchRow[]>`. */
const BENCHES: [string, () => Promise<BenchModule>][] = [
  ["write", () => import("./write.ts")],
  ["drain", () => import("./drain.ts")],
  ["fleet", () => import("./fleet.ts")],
];

const fmt = (n: number | null, digits = 2) =>
  n === null || Number.isNaN(n) ? "" : Number.isInteger(n) ? String(n) : n.toFixed(digits);

const rows: (BenchRow & { bench: string })[] = [];
for (const [name, load] of BENCHES) {
  console.error(`bench: running ${name}`);
  for (const row of await (await load()).run()) rows.push({ bench: name, ...row });
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

await Deno.writeTextFile(
  new URL("./results.json", import.meta.url),
  JSON.stringify({ at: new Date().toISOString(), rows }, null, 2) + "\n",
);
