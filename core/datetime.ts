/**
 * Date-times as the contract (§3) takes them: ISO 8601 with a zone (`Z` or any offset), seconds
 * and fractional seconds optional; stored and returned in UTC, `2026-12-01T04:30:00.000Z`.
 */
import { z } from "zod";

// Offsets as ISO 8601 writes them: ±hh:mm, ±hhmm or ±hh. Fractions beyond nine digits are
// nanoseconds of nanoseconds: nobody means them, and they would only make a long string longer.
const DATE_TIME =
  /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?(?:(Z)|([+-])(\d\d)(?::?(\d\d))?)$/i;

/** What `Date#toISOString()` writes for the years 0000–9999. */
const CANONICAL = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d\d\dZ$/;

/**
 * `value` in UTC as `Date#toISOString()` writes it, or `undefined` when it is not an ISO 8601
 * date-time with a zone, names a day or time that does not exist (Feb 30, 24:00), or lands
 * outside the years 0001–9999 in UTC (PostgreSQL has no year 0; past 9999 the form changes).
 */
export function toUtc(value: string): string | undefined {
  // Nearly every value is already what this returns (every frame's, every record the API wrote):
  // one parse and one comparison say so, and a day that does not exist never compares equal.
  if (CANONICAL.test(value) && !value.startsWith("0000")) {
    const ms = Date.parse(value);
    if (!Number.isNaN(ms) && new Date(ms).toISOString() === value) return value;
  }
  const m = DATE_TIME.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s = "0", frac = "", z, sign, oh = "0", om = "0"] = m;
  const local = new Date(0);
  local.setUTCFullYear(Number(y), Number(mo) - 1, Number(d));
  local.setUTCHours(Number(h), Number(mi), Number(s), Number(frac.padEnd(3, "0").slice(0, 3)));
  // Date rolls Feb 30 over into March and 24:00 into the next day; the fields must survive.
  if (
    local.getUTCFullYear() !== Number(y) || local.getUTCMonth() !== Number(mo) - 1 ||
    local.getUTCDate() !== Number(d) || local.getUTCHours() !== Number(h) ||
    local.getUTCMinutes() !== Number(mi) || local.getUTCSeconds() !== Number(s)
  ) return undefined;
  if (!z && (Number(oh) > 23 || Number(om) > 59)) return undefined;
  const offsetMs = z ? 0 : (sign === "-" ? -1 : 1) * (Number(oh) * 60 + Number(om)) * 60_000;
  const utc = new Date(local.getTime() - offsetMs);
  const year = utc.getUTCFullYear();
  if (year < 1 || year > 9999) return undefined;
  return utc.toISOString();
}

/** What every date-time field expects, said once for error messages and the OpenAPI document. */
export const DATE_TIME_WANT =
  "an ISO 8601 date-time with a zone (Z or an offset), such as 2026-12-01T10:00Z or " +
  "2026-12-01T10:00:00.000+05:30";

// The last answer of toUtc: the refine and the overwrite above ask it of the same value in turn,
// and a change's timestamp, createdAt and updatedAt are mostly one value (the shore checks each).
let last: { value: string; utc: string | undefined } = { value: "", utc: undefined };
const utcOf = (value: string) => {
  if (value !== last.value) last = { value, utc: toUtc(value) };
  return last.utc;
};

/**
 * A date-time field: refuses a value without a zone or a date alone, and normalises to UTC.
 * `overwrite` (not `transform`) keeps it a string schema, so JSON Schema can describe it.
 */
export const dateTime = () =>
  z.string().refine((v) => utcOf(v) !== undefined).overwrite((v) => utcOf(v) ?? v).meta({
    description: DATE_TIME_WANT[0]!.toUpperCase() + DATE_TIME_WANT.slice(1),
    format: "date-time",
  });
