import assert from "node:assert/strict";
import { runChaos } from "./run.ts";

// The CI-sized run: a few faults of every family over about a minute and a half, with short
// partitions, then at most a minute to settle. The long runs are `deno task chaos` (with
// --vessel-db embedded, --link-mode and --broker nats by flag: an embedded vessel needs tens of
// seconds per restart on this machine and the NATS cluster its own start, which would take
// either variant past two minutes here).
Deno.test({
  name: "a vessel and a shore lose nothing and apply nothing twice through a short chaos run",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = Math.floor(Math.random() * 2 ** 31);
    const result = await runChaos({
      seed,
      faults: 20,
      minutes: 1.5,
      ci: true,
      settleMinutes: 1,
      log: () => {},
    });
    console.log(`seed=${seed} ${result.line}`);
    assert.ok(result.faults > 0, "no fault was injected");
    assert.ok(result.settled, `seed ${seed}: the vessel never drained (${result.workDir})`);
    assert.equal(result.verdict.lost, 0, `seed ${seed}: ${result.verdict.examples.join("; ")}`);
    assert.equal(result.verdict.doubleApplied, 0, `seed ${seed}`);
    assert.equal(result.verdict.diverged, 0, `seed ${seed}: ${result.verdict.examples.join("; ")}`);
    // What the settled vessel's /health and /metrics say holds against its database (issue 15:
    // a published watermark that stuck made them count acknowledged changes as queued).
    assert.equal(
      result.verdict.reportsUntrue,
      0,
      `seed ${seed}: ${result.verdict.examples.join("; ")}`,
    );
    assert.ok(result.verdict.changes > 0, "the writers wrote nothing");
    await Deno.remove(result.workDir, { recursive: true }).catch(() => {});
  },
});
