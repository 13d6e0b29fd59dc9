/**
 * `deno run -A tests/chaos/tally.ts results.jsonl…`: adds up the runs recorded with
 * `deno task chaos -- … --record FILE` and prints the RESULTS.md tables (Markdown).
 */
import { FAULT_KINDS, type FaultKind } from "./faults.ts";

interface Entry {
  /** Harness version; runs before 2 had Mosquitto unable to write its persistence file. */
  harness?: number;
  at: string;
  command: string;
  seed: number;
  profile: string;
  ok: boolean;
  line: string;
  byKind: Record<FaultKind, number>;
  /** Harness 5 on: the commit the gateways ran and the 1-minute load average over the run. */
  commit?: string;
  load?: { start: number; mean: number; max: number; end: number };
}

const entries: Entry[] = [];
for (const file of Deno.args) {
  for (const text of (await Deno.readTextFile(file)).split("\n")) {
    if (text.trim()) entries.push(JSON.parse(text));
  }
}
entries.sort((a, b) => a.at.localeCompare(b.at));
const totals = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
let satellite = 0;
// Runs before harness 2 restarted Mosquitto "with persistence" that could not write its file:
// those restarts were in fact without persistence and are counted as such, apart.
let persistentButClean = 0;
// Only passing runs count toward the totals: a failed run is a bug to fix, then to re-run.
for (const e of entries.filter((e) => e.ok)) {
  for (const k of FAULT_KINDS) totals[k] += e.byKind[k] ?? 0;
  if ((e.harness ?? 1) < 2) {
    persistentButClean += e.byKind.kill_broker_persistent ?? 0;
    totals.kill_broker_persistent -= e.byKind.kill_broker_persistent ?? 0;
  }
  if (e.profile === "satellite") satellite += Object.values(e.byKind).reduce((s, n) => s + n, 0);
}
const all = Object.values(totals).reduce((s, n) => s + n, 0) + persistentButClean;
const out: string[] = [];
out.push(
  "| finished (UTC) | commit | load 1-min mean (max) | command | verdict |",
  "| --- | --- | --- | --- | --- |",
);
for (const e of entries) {
  const load = e.load ? `${e.load.mean.toFixed(1)} (${e.load.max.toFixed(1)})` : "—";
  out.push(
    `| ${e.at.slice(0, 19)} | ${e.commit ?? "—"} | ${load} | \`${e.command}\` | \`${e.line}\`${
      e.ok ? "" : " **FAILED**"
    } |`,
  );
}
out.push("", "| fault | injected |", "| --- | --- |");
for (const k of FAULT_KINDS) out.push(`| ${k} | ${totals[k]} |`);
out.push(
  `| kill_broker_persistent, early runs (file unwritable: in fact without persistence) | ${persistentButClean} |`,
);
out.push(`| **total** | **${all}** (of which under the satellite profile: ${satellite}) |`);
out.push("", `Runs: ${entries.length}, passing: ${entries.filter((e) => e.ok).length}.`);
console.log(out.join("\n"));
