/**
 * Records whose JSON is hard to get right, for the tests that compare envelope text built
 * in PostgreSQL, spliced by the publisher and serialised by JavaScript.
 */
import type { RecordStore } from "../../db/vessel/records.ts";

/**
 * Creates a work order with every kind of escape (quote, backslash, control characters,
 * non-ASCII, U+2028, `</script>`) and a 5,000-character description, then an alert: two
 * change rows.
 */
export async function createAwkwardRecords(store: RecordStore): Promise<void> {
  await store.create("work_orders", {
    title: 'quote " backslash \\ newline \n tab \t é 🚢 \u2028',
    equipmentId: "</script>",
    priority: 5,
    description: "x".repeat(5_000),
  });
  await store.create("alerts", { equipmentId: "e", severity: "critical", message: "m" });
}
