/**
 * The one way a test waits. `Deno.test` has no timeout of its own, so every wait carries a
 * deadline and, when it expires, fails saying what it waited for: no test can hang the suite.
 */

/** How long a wait lasts unless the caller says otherwise. */
export const DEFAULT_DEADLINE_MS = 60_000;

/** Thrown when a wait's deadline passes; the message names what was waited for. */
export class WaitTimeout extends Error {
  override name = "WaitTimeout";
}

/** Polls `check` (every `pollMs`) until it holds; throws {@linkcode WaitTimeout} naming `what`. */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  deadlineMs = DEFAULT_DEADLINE_MS,
  pollMs = 25,
): Promise<void> {
  finite(deadlineMs, what);
  const deadline = Date.now() + deadlineMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new WaitTimeout(`Timed out after ${deadlineMs} ms waiting until ${what}`);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Settles as `promise` does, or throws {@linkcode WaitTimeout} naming `what` at the deadline. */
export function withDeadline<T>(
  promise: Promise<T>,
  what: string,
  deadlineMs = DEFAULT_DEADLINE_MS,
): Promise<T> {
  try {
    finite(deadlineMs, what);
  } catch (err) {
    return Promise.reject(err);
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new WaitTimeout(`Timed out after ${deadlineMs} ms waiting for ${what}`)),
      deadlineMs,
    );
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

/** A deadline that is no number of milliseconds (Infinity, NaN) would hang the suite: refused. */
function finite(deadlineMs: number, what: string) {
  if (!Number.isFinite(deadlineMs) || deadlineMs < 0) {
    throw new RangeError(`A wait for ${what} needs a finite deadline, not ${deadlineMs} ms`);
  }
}
