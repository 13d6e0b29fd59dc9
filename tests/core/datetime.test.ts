import assert from "node:assert/strict";
import { toUtc } from "../../core/datetime.ts";
import { recordSchemas } from "../../core/entities.ts";

Deno.test("date-times with any zone, seconds optional, come out in UTC", () => {
  const cases: [string, string][] = [
    ["2026-12-01T10:00Z", "2026-12-01T10:00:00.000Z"],
    ["2026-12-01T10:00:00+05:30", "2026-12-01T04:30:00.000Z"],
    ["2026-12-01T10:00:00.123456Z", "2026-12-01T10:00:00.123Z"],
    ["2026-12-01T10:00:00.5-02:00", "2026-12-01T12:00:00.500Z"],
    ["2026-12-01T01:00+0200", "2026-11-30T23:00:00.000Z"],
    ["2026-12-01T10:00:00-03", "2026-12-01T13:00:00.000Z"],
    ["2024-02-29T23:59:59.999z", "2024-02-29T23:59:59.999Z"],
    ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"],
  ];
  for (const [given, utc] of cases) assert.equal(toUtc(given), utc, given);
});

Deno.test("date-times without a zone, dates alone and days that do not exist are refused", () => {
  for (
    const bad of [
      "2026-12-01T10:00:00",
      "2026-12-01",
      "2026-12-01T10Z",
      "2026-02-30T10:00Z",
      "2025-02-29T10:00Z",
      "2026-12-01T24:00Z",
      "2026-12-01T10:60Z",
      "2026-12-01T10:00:60Z",
      "2026-12-01T10:00+24:00",
      "2026-12-01 10:00Z",
      "0000-06-01T00:00Z",
      "9999-12-31T23:00-02:00",
      "2026-12-01T10:00:00.1234567890Z",
      "soon",
      "",
    ]
  ) {
    assert.equal(toUtc(bad), undefined, bad);
  }
});

Deno.test("the shore takes records the vessel normalised, and normalises older ones", () => {
  const record = {
    id: crypto.randomUUID(),
    version: 1,
    createdAt: "2026-12-01T04:30:00.000Z",
    updatedAt: "2026-12-01T04:30:00.000Z",
    title: "t",
    equipmentId: "e",
    dueAt: "2026-12-01T04:30:00.000Z",
  };
  assert.deepEqual(recordSchemas.work_orders.parse(record), record);
  const old = { ...record, dueAt: "2026-12-01T10:00:00+05:30" };
  assert.equal(recordSchemas.work_orders.parse(old).dueAt, "2026-12-01T04:30:00.000Z");
  assert.equal(
    recordSchemas.work_orders.safeParse({ ...record, dueAt: "2026-12-01" }).success,
    false,
  );
});

Deno.test("values already in toISOString form come back unchanged, or refused as in any other form", () => {
  for (
    const bad of [
      "2026-02-30T10:00:00.000Z",
      "2025-02-29T10:00:00.000Z",
      "2026-12-01T24:00:00.000Z",
      "2026-12-01T10:60:00.000Z",
      "2026-12-01T10:00:60.000Z",
      "2026-13-01T10:00:00.000Z",
      "0000-06-01T00:00:00.000Z",
    ]
  ) {
    assert.equal(toUtc(bad), undefined, bad);
  }
  // The same instants written with an offset take the general way: both ways agree.
  const first = Date.parse("0000-01-01T00:00:00.000Z");
  const last = Date.parse("9999-12-31T23:59:59.999Z");
  for (let i = 0; i < 2_000; i++) {
    const iso = new Date(first + Math.floor(Math.random() * (last - first))).toISOString();
    assert.equal(toUtc(iso), iso.startsWith("0000") ? undefined : iso, iso);
    assert.equal(toUtc(iso.replace("Z", "+00:00")), toUtc(iso), iso);
  }
});
