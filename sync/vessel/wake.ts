/**
 * The publisher loop's two wake-up signals: "work" (a commit, a connect, a pass requested) and
 * "slot" (the buffer ran low). The loop sleeps on one of them, or on either; a signal raised
 * while the loop is busy is remembered, so no wake-up is ever lost.
 */

/** Which signal a sleep waits for: "slot" wakes on either. */
export type WakeOn = "work" | "slot";

/** Wake-up signals for one loop. */
export class WakeSignals {
  #pending = { work: false, slot: false };
  #wakeUp: (() => void) | undefined;
  #wakeOn: WakeOn = "work";

  /** Raises `kind`: wakes the loop if it sleeps on it, else it is remembered. */
  signal(kind: WakeOn): void {
    this.#pending[kind] = true;
    if (this.#wakeUp && (kind === "work" || this.#wakeOn === "slot")) this.#wakeUp();
  }

  /** Resolves after `ms`, or at once on a signal it waits for (one raised meanwhile too). */
  sleep(ms: number, on: WakeOn): Promise<void> {
    const pending = this.#pending;
    const ready = on === "work" ? pending.work : pending.work || pending.slot;
    pending.work = pending.slot = false;
    if (ready) return Promise.resolve();
    this.#wakeOn = on;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.#wakeUp = undefined;
        pending.work = pending.slot = false;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.#wakeUp = done;
    });
  }
}
