/**
 * The errors bosun models, mapped to HTTP in one place ({@linkcode toHttpError}).
 *
 * Anything not recognised here is a bug: it is logged with its cause and answered 500.
 */
import { z } from "zod";

/**
 * A start-up that waiting cannot fix (`DATA_DIR` held by another process, an unknown
 * database, refused credentials): main.ts prints its message as one line and exits 1.
 */
export class StartupError extends Error {
  override name = "StartupError";
}

/** An error with an HTTP status and a snake_case code, as the contract's error JSON. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: 400 | 401 | 404 | 405 | 408 | 409 | 412 | 413 | 415 | 500 | 503,
    readonly code: string,
    message: string,
    readonly details: unknown[] = [],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** The outbox holds `OUTBOX_MAX_PENDING` unacknowledged changes: writes wait. */
export class OutboxFullError extends HttpError {
  constructor(readonly pending: number, readonly limit: number) {
    super(
      503,
      "outbox_full",
      `Outbox holds ${pending} unacknowledged changes, the limit is ${limit}`,
      [],
      { "Retry-After": "30" },
    );
  }
}

/** The error JSON of the README's "HTTP API". */
export interface ErrorBody {
  error: { code: string; message: string; details: unknown[] };
}

const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "CONNECTION_CLOSED",
  "CONNECTION_ENDED",
  "CONNECTION_DESTROYED",
  "CONNECT_TIMEOUT",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "08000",
  "08003",
  "08006",
  "08001",
  "08004",
]);

/** True when `err` means the database cannot be reached right now (not a bad query). */
export function isDatabaseUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && CONNECTION_CODES.has(code)) return true;
  // SQLSTATE classes that mean "this server cannot serve us now", whatever the exact code:
  // 08 connection exception, 53 insufficient resources (too many connections, disk full),
  // 57P operator intervention (shutdown, restart, dropped database), 3D000 the database is
  // gone, 28 the login is refused. None of them is the request's fault or a bug.
  if (typeof code === "string" && /^(08|53|57P|28|3D000$)/.test(code)) return true;
  return /connect|connection|closed|terminat/i.test(err.message) &&
    !(err as { severity?: unknown }).severity;
}

/**
 * True when the server answered and refused us for good: the database does not exist
 * (3D000) or the login is refused (class 28: no such role, wrong password, no pg_hba entry).
 * At start-up these are fatal, since waiting cannot fix them; a running gateway still answers
 * them 503 ({@linkcode isDatabaseUnavailable}), as a database dropped under it may come back.
 */
export function isPermanentDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^(3D000|28[0-9A-Z]{3})$/.test(code);
}

/**
 * Maps any thrown value to an HttpError, or `undefined` when it is a bug (a 500).
 * zod errors become 400, PostgreSQL unique violations 409, lost connections 503.
 */
export function toHttpError(err: unknown): HttpError | undefined {
  if (err instanceof HttpError) return err;
  if (err instanceof z.ZodError) {
    // An unknown key is reported where it is, one detail each, so a client can point at it.
    const details = err.issues.flatMap((i) =>
      i.code === "unrecognized_keys"
        ? i.keys.map((k) => ({ path: [...i.path, k].join("."), message: i.message }))
        : [{ path: i.path.join("."), message: i.message }]
    );
    const n = err.issues.length - 1;
    const more = n > 0 ? `; ${n} more in details` : "";
    return new HttpError(
      400,
      "validation_failed",
      `${err.issues[0]?.message ?? "Request failed validation"}${more}`,
      details,
    );
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "23505") return new HttpError(409, "conflict", "A record with this id exists");
  if (typeof code === "string" && /^22[0-9A-Z]{3}$/.test(code)) {
    // SQLSTATE class 22, data exception (a date out of range from a tampered cursor, a bad
    // encoding, a number out of range, ...): input the validators let through but PostgreSQL
    // refuses. Every code of the class is the input's fault, never a bug.
    return new HttpError(400, "invalid_value", "A value was refused by the database");
  }
  if (isDatabaseUnavailable(err)) {
    return new HttpError(503, "database_unavailable", "The database is unreachable", [], {
      "Retry-After": "5",
    });
  }
  if (
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.UnexpectedEof ||
    err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.Interrupted
  ) {
    // The request body stopped arriving (client gone, or the server stopping mid-upload).
    return new HttpError(400, "body_unreadable", "The request body could not be read");
  }
  return undefined;
}

/** The contract's error JSON for an HttpError. */
export function errorBody(err: HttpError): ErrorBody {
  return { error: { code: err.code, message: err.message, details: err.details } };
}

/** No record `id` of `entity` (or it was deleted). */
export class NotFoundError extends HttpError {
  constructor(entity: string, id: string) {
    super(404, "not_found", `No ${entity} record with id "${id}"`);
  }
}

/** The broker is not connected, or a re-publish to it failed. */
export class BrokerUnavailableError extends HttpError {
  constructor(message: string) {
    super(503, "broker_unavailable", message, [], { "Retry-After": "30" });
  }
}

/** The sync engine was not started (`LOCAL_MODE=false`, or still starting). */
export class SyncNotStartedError extends HttpError {
  constructor() {
    super(503, "sync_not_started", "The sync engine is not running", [], { "Retry-After": "5" });
  }
}

/** `If-Match` names a version the record is no longer at. */
export class VersionMismatchError extends HttpError {
  constructor(id: string, current: number, expected: number) {
    super(412, "version_mismatch", `Record "${id}" is at version ${current}, not ${expected}`, [
      { currentVersion: current },
    ]);
  }
}

/** A list cursor that no list of ours produced. */
export class InvalidCursorError extends HttpError {
  constructor(cursor: string) {
    super(400, "invalid_cursor", `Cursor "${cursor.slice(0, 100)}" is not valid`);
  }
}
