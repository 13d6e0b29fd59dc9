import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { createAwkwardRecords } from "../support/awkward.ts";
import { OutboxGate } from "../../db/outbox-gate.ts";
import { createRecordStore } from "../../db/records.ts";
import { claimChanges } from "../../db/outbox.ts";
import { type ChangeRow, envelopeJson, envelopeSchema, toEnvelope } from "../../sync/envelope.ts";

Deno.test("the publisher's spliced envelope text parses to exactly the built envelope", async () => {
  await using db = await freshDatabase();
  const store = createRecordStore({ sql: db.sql, gate: new OutboxGate(100) });
  await createAwkwardRecords(store);
  assert.equal((await claimChanges(db.sql, 10, "vessel-1")).length, 2);
  const rows = await db.sql<(Omit<ChangeRow, "data"> & { dataText: string })[]>`
    select entity, operation, data::text as "dataText", changed_at, message_id,
      epoch::text as epoch, seq from changes order by seq`;
  for (const row of rows) {
    const text = envelopeJson(row, "vessel-1");
    const parsed = JSON.parse(text);
    const { dataText, ...rest } = row;
    const built = toEnvelope({ ...rest, data: JSON.parse(dataText) }, "vessel-1");
    assert.deepEqual(parsed, built);
    assert.deepEqual(Object.keys(parsed), Object.keys(built));
    assert.equal(envelopeSchema.safeParse(parsed).success, true);
  }
});
