/**
 * The fault schedule of a run: faults drawn from the seeded PRNG, up to `concurrency` at a
 * time on disjoint parts of the system (a partition of the shore's link while the vessel's
 * database restarts, say), until N faults or the deadline.
 */
import {
  type Component,
  COMPONENTS,
  FAULT_KINDS,
  type FaultKind,
  heal,
  inject,
  type World,
} from "./faults.ts";

/** Options for {@linkcode runSchedule}. */
export interface ScheduleOptions {
  world: World;
  kinds: readonly FaultKind[];
  faults: number;
  deadline: number;
  concurrency: number;
  /**
   * Called as each fault ends (after healing), in the order they end; the schedule goes on
   * meanwhile and waits for every call before it resolves.
   */
  onEnd: (kind: FaultKind, seconds: number, index: number) => Promise<void>;
  log: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the schedule; resolves with the count of each kind once every fault has ended. */
export async function runSchedule(options: ScheduleOptions): Promise<Record<FaultKind, number>> {
  const { world: w, kinds, concurrency, onEnd, log } = options;
  const byKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
  const busy = new Set<Component>();
  const running = new Set<Promise<void>>();
  let started = 0;
  let ended = 0;
  const ending: Promise<void>[] = [];

  const launch = (kind: FaultKind) => {
    const parts = COMPONENTS[kind];
    for (const p of parts) busy.add(p);
    started++;
    const t0 = Date.now();
    const job = (async () => {
      try {
        await inject(w, kind);
      } catch (err) {
        // A fault script that fails is the harness's problem, not bosun's: heal and go on.
        log(`fault ${kind} failed to run: ${err}; healing ${parts.join(", ")}`);
        await heal(w, parts);
      }
      for (const p of parts) busy.delete(p);
      byKind[kind]++;
      // The fault's slot is free from here: `onEnd` may wait a long time (an embedded vessel's
      // recovery mark waits until it answers /health again, tens of seconds after a kill), and
      // holding the slot meanwhile left the schedule idle behind it (seed 5002: 13 faults in 4
      // minutes, most of it waiting).
      const index = ++ended;
      ending.push(
        onEnd(kind, (Date.now() - t0) / 1000, index)
          .catch((err) => log(`fault ${index} ${kind}: recording its end failed: ${err}`)),
      );
    })();
    running.add(job);
    job.finally(() => running.delete(job));
  };

  while (started < options.faults && Date.now() < options.deadline) {
    if (running.size < concurrency) {
      // A few draws for a kind whose parts are free; none free: wait for a fault to end.
      let kind: FaultKind | undefined;
      for (let i = 0; i < 10 && !kind; i++) {
        const k = w.rng.pick(kinds);
        if (COMPONENTS[k].every((p) => !busy.has(p))) kind = k;
      }
      if (kind) {
        launch(kind);
        await sleep(w.rng.int(500, 2_000));
        continue;
      }
    }
    await Promise.race(running);
  }
  await Promise.all(running);
  await Promise.all(ending);
  return byKind;
}
