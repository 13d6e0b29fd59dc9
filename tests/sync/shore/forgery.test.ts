/**
 * A second message at a held (vessel, epoch, seq) under another messageId is a forgery:
 * counted, logged with both ids, shown per vessel, and never applied over the first.
 */
import assert from "node:assert/strict";
import { startShoreRig } from "../../support/shore-rig.ts";
import { publishAll, SimulatedVessel, valueOf } from "../../support/fleet.ts";
import { waitUntil } from "../../support/wait.ts";
import { createLogger } from "../../../core/log.ts";
import { listVessels } from "../../../db/shore/fleet.ts";
import type { Envelope } from "../../../sync/protocol.ts";

Deno.test("a message at a held seq with another messageId is refused as a forgery, counted, logged and shown", async () => {
  const lines: string[] = [];
  await using rig = await startShoreRig({
    log: createLogger({ level: "debug", write: (line) => lines.push(line) }),
  });
  const { db, shore, pub } = rig;
  const v = new SimulatedVessel("vessel-forged");
  const real = [v.create(), v.create(), v.create()];
  await publishAll(pub, real);
  await waitUntil(async () => await valueOf(shore.metrics.shore.applied) === 3, "3 applied");

  // The forger reuses seqs 2 and 3 (one applied, one waiting is the same check) with records
  // of its own; a plain re-delivery of seq 1 comes with them and stays a duplicate.
  const forged: Envelope[] = [real[1]!, real[2]!].map((e) => ({
    ...e,
    messageId: crypto.randomUUID(),
    data: { ...e.data, title: "forged", version: 99 },
  }));
  await publishAll(pub, [...forged, real[0]!]);
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.forgeries) === 2,
    "both forgeries are counted",
  );
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.duplicates) === 1,
    "the re-delivery is a duplicate",
  );
  const titles = await db.sql<{ title: string }[]>`
    select data->>'title' as title from shore_records order by created_at, id`;
  assert.ok(titles.every((r) => r.title !== "forged"), JSON.stringify(titles));
  const [view] = await listVessels(db.sql);
  assert.equal(view!.forgeries, 2);
  const logged = lines.filter((l) => l.includes("Forged change refused"));
  assert.equal(logged.length, 2);
  for (const f of forged) {
    const line = logged.find((l) => l.includes(f.messageId));
    assert.ok(line, `a log line names ${f.messageId}`);
    assert.ok(line.includes(real[f.seq - 1]!.messageId), "and the id held");
  }
});
