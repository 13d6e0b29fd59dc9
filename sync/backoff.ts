/**
 * Reconnect back-off arithmetic, pure so tests drive it with an injected random source.
 *
 * Exponential with full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): the
 * delay of attempt n is uniform in [0, min(ceiling, base · 2^(n-1))). Full jitter spreads a
 * fleet that lost its broker at the same moment, so it does not reconnect in lock step.
 */

/** The shape of the back-off. */
export interface BackoffOptions {
  /** The cap of the first attempt's delay. */
  baseMs: number;
  /** No delay ever exceeds this. */
  ceilingMs: number;
}

/** The default: 1 s growing to a ceiling of 60 s. */
export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 1_000, ceilingMs: 60_000 };

/** The delay before attempt `attempt` (from 1), with `random()` in [0, 1). */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const { baseMs, ceilingMs } = options;
  // 2^(attempt-1) overflows to Infinity past ~1024 attempts; min() keeps that harmless.
  const cap = Math.min(ceilingMs, baseMs * 2 ** Math.max(0, attempt - 1));
  const r = Math.min(Math.max(random(), 0), 1 - Number.EPSILON);
  return Math.floor(cap * r);
}

/** Log attempts 1–10, then every 10th up to 100, then every 100th: lines thin out. */
export function shouldLogAttempt(attempt: number): boolean {
  if (attempt <= 10) return true;
  if (attempt <= 100) return attempt % 10 === 0;
  return attempt % 100 === 0;
}
