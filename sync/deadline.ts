/**
 * A deadline for database calls whose connection may go silent.
 *
 * A connection that went silent (a partition, or a socket whose close was never reported)
 * never answers: a batch, a gap check or a presence write awaiting it would wait forever and
 * hold everything queued behind it. Giving up and retrying is safe for the shore: should the
 * first attempt commit after all, the inbox turns the retry into duplicates.
 */

/** A call that did not answer before its deadline. */
export class DeadlineError extends Error {
  override name = "DeadlineError";
}

/** Rejects with {@linkcode DeadlineError} when `p` has not settled after `ms`. */
export function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineError(`No answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
