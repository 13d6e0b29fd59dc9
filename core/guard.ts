/**
 * Keeps the gateway alive through errors thrown where no caller can catch them.
 *
 * postgres.js can throw from inside a socket callback when PostgreSQL goes away mid-write
 * (the chaos suite saw `TypeError` in its `nextWrite` on a socket already gone, and unhandled
 * `ECONNREFUSED`/`ECONNRESET` rejections, on fast and immediate shutdowns). Ending the process
 * for those would turn a database restart into a gateway outage until a supervisor notices;
 * every guarantee lives in the database, and the pool reconnects by itself, so the error is
 * logged with its stack and the process goes on.
 */
import type { Logger } from "./log.ts";

/** Installs the handlers; returns their removal (for tests). */
export function guardProcess(log: Logger): () => void {
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    log.error("Uncaught error, carrying on", { error: e.error, stack: e.error?.stack });
  };
  const onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    const reason = e.reason as Error | undefined;
    log.error("Unhandled rejection, carrying on", { error: reason, stack: reason?.stack });
  };
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}
