/**
 * The shore's side of a drain, alone: `BENCH_INGEST_N` changes (default 20,000; equipment creates
 * as bench/common.ts fills them) in frames of `BENCH_INGEST_FRAME` changes (default 250),
 * classified as sync/shore/ingest.ts receives them (inflate, decode, every envelope and record
 * checked) and ingested in batches of up to 1,000 (as sync/shore/batches.ts cuts them), one
 * after the other on one connection. Prints the CPU per change of this process (classify and
 * ingest apart) and of the shore's PostgreSQL backend: no broker, no vessel and no timers, so
 * much less noise than the drain bench for comparing two versions of the shore's code.
 */
import process from "node:process";
import type { BenchRow } from "./types.ts";
import { freshDatabase } from "../tests/support/pg.ts";
import { cutFrames } from "../sync/frame.ts";
import { classify } from "../sync/shore/classify.ts";
import { ingest } from "../db/shore/inbox.ts";
import { deriveMessageId } from "../sync/message-id.ts";
import type { Envelope } from "../sync/protocol.ts";
import { cpuSeconds } from "./common.ts";

const ownCpu = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

function envelopes(vesselId: string, epoch: string, n: number): Envelope[] {
  const at = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => ({
    type: "data_change",
    entity: "equipment",
    operation: "create",
    data: {
      id: crypto.randomUUID(),
      version: 1,
      createdAt: at,
      updatedAt: at,
      name: `ballast pump ${i + 1}`,
      type: "pump",
      location: `engine room, deck 2, frame ${(i + 1) % 90}`,
      status: "running",
      runningHours: (i + 1) % 20_000,
    },
    timestamp: at,
    messageId: deriveMessageId(vesselId, epoch, i + 1),
    vesselId,
    epoch,
    seq: i + 1,
  }));
}

/** Runs the shore ingest bench. */
export async function run(): Promise<BenchRow[]> {
  const n = Number(Deno.env.get("BENCH_INGEST_N") ?? 20_000);
  const perFrame = Number(Deno.env.get("BENCH_INGEST_FRAME") ?? 250);
  const vesselId = "bench-ingest";
  const epoch = crypto.randomUUID();
  const all = envelopes(vesselId, epoch, n);
  const frames = [];
  for (let i = 0; i < n; i += perFrame) frames.push(...cutFrames(all.slice(i, i + perFrame)));

  await using db = await freshDatabase({ max: 1 });
  const backend = async () =>
    (await db.sql<{ pid: number }[]>`select pg_backend_pid() as pid`)[0]!.pid;
  const pid = await backend();
  const db0 = cpuSeconds(pid);
  const t0 = performance.now();
  let classifyCpu = 0;
  let ingestCpu = 0;
  let batch: Envelope[] = [];
  let applied = 0;
  const write = async () => {
    const c = ownCpu();
    applied += (await ingest(db.sql, vesselId, epoch, batch)).applied;
    ingestCpu += ownCpu() - c;
    batch = [];
  };
  for (const frame of frames) {
    const c = ownCpu();
    const m = classify(`vessel/${vesselId}/sync/frames`, frame.payload);
    classifyCpu += ownCpu() - c;
    if (m.kind !== "frame") throw new Error(`Frame classified as ${m.kind}`);
    if (batch.length + m.envelopes.length > 1_000) await write();
    batch.push(...m.envelopes);
  }
  if (batch.length > 0) await write();
  const seconds = (performance.now() - t0) / 1000;
  const dbCpu = cpuSeconds(pid) - db0;
  if (await backend() !== pid) throw new Error("The connection was replaced: its CPU is lost");
  if (applied !== n) throw new Error(`${applied} of ${n} applied`);
  const us = (s: number) => (s / n * 1e6).toFixed(1);
  const load = Deno.loadavg().map((l) => l.toFixed(1)).join(" ");
  console.error(
    `shore-ingest: ${n} changes in frames of ${perFrame}, ${seconds.toFixed(2)} s; CPU per ` +
      `change: classify ${us(classifyCpu)} µs + ingest (process) ${us(ingestCpu)} µs + ` +
      `PostgreSQL ${us(dbCpu)} µs; load ${load}`,
  );
  return [{
    figure: `shore CPU per change ingesting ${n} changes in frames (µs, process + PostgreSQL)`,
    value: Number(((classifyCpu + ingestCpu + dbCpu) / n * 1e6).toFixed(1)),
    baseline: null,
    ratio: null,
    goal: "",
    holds: null,
  }];
}

if (import.meta.main) {
  for (const row of await run()) console.log(JSON.stringify(row));
}
