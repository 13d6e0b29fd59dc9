import assert from "node:assert/strict";
import { Reader, timeOf, Writer } from "../../sync/frame-values.ts";

/** What timeOf was defined as: parse, and keep only what toISOString writes back exactly. */
function timeOfByRoundTrip(s: string): number | undefined {
  if (s.length !== 24 || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(s)) return undefined;
  const ms = Date.parse(s);
  return Number.isNaN(ms) || new Date(ms).toISOString() !== s ? undefined : ms;
}

Deno.test("timeOf computed from the digits agrees with parsing and formatting back", () => {
  const fixed = [
    "2026-11-30T16:30:00.123Z",
    "1970-01-01T00:00:00.000Z",
    "0000-01-01T00:00:00.000Z",
    "0099-12-31T23:59:59.999Z",
    "0100-01-01T00:00:00.000Z",
    "9999-12-31T23:59:59.999Z",
    "2024-02-29T12:00:00.000Z",
    "2023-02-29T12:00:00.000Z",
    "1900-02-29T12:00:00.000Z",
    "2000-02-29T12:00:00.000Z",
    "2026-04-31T00:00:00.000Z",
    "2026-13-01T00:00:00.000Z",
    "2026-00-10T00:00:00.000Z",
    "2026-01-00T00:00:00.000Z",
    "2026-01-01T24:00:00.000Z",
    "2026-01-01T23:60:00.000Z",
    "2026-01-01T23:59:60.000Z",
    "2026-01-01T23:59:59.000+",
    "2026-01-01 23:59:59.000Z",
  ];
  for (const s of fixed) assert.equal(timeOf(s), timeOfByRoundTrip(s), s);
  // Random digits in every position, most of them out of range somewhere.
  const digits = (n: number, max: number) =>
    String(Math.floor(Math.random() * max)).padStart(n, "0");
  for (let i = 0; i < 20_000; i++) {
    const s = `${digits(4, 10_000)}-${digits(2, 14)}-${digits(2, 33)}T${digits(2, 25)}:` +
      `${digits(2, 61)}:${digits(2, 61)}.${digits(3, 1000)}Z`;
    assert.equal(timeOf(s), timeOfByRoundTrip(s), s);
  }
  assert.equal(timeOf(42), undefined);
});

Deno.test("Writer.str writes any string's UTF-8 after its length, whatever the length's size", () => {
  const strings = [
    "",
    "a",
    "x".repeat(42),
    "x".repeat(43),
    "x".repeat(127),
    "x".repeat(128),
    "é".repeat(70),
    "€".repeat(5_000),
    "🚢 ballast pump, deck 2".repeat(30),
    "x".repeat(20_000),
  ];
  const w = new Writer();
  for (const s of strings) {
    w.str(s);
    w.u8(0xee); // nothing may be left between two values
  }
  const r = new Reader(w.done());
  for (const s of strings) {
    assert.equal(r.str(), s);
    assert.equal(r.u8(), 0xee);
  }
  assert.equal(r.left(), 0);
});
