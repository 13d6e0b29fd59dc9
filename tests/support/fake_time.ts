/**
 * A minimal fake clock (JSR's @std/testing is unreachable here): timers run only when the
 * test advances time with `tick`, in due order.
 */
export class FakeTime {
  now = 0;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #nextId = 1;

  /** Schedules `fn` at `now + ms`; returns an id for {@linkcode clearTimeout}. */
  setTimeout(fn: () => void, ms: number): number {
    const id = this.#nextId++;
    this.#timers.push({ at: this.now + Math.max(0, ms), fn, id });
    return id;
  }

  clearTimeout(id: number): void {
    this.#timers = this.#timers.filter((t) => t.id !== id);
  }

  /** Advances the clock by `ms`, running every timer that falls due, in order. */
  tick(ms: number): void {
    const end = this.now + ms;
    while (true) {
      this.#timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.#timers[0];
      if (!next || next.at > end) break;
      this.#timers.shift();
      this.now = next.at;
      next.fn();
    }
    this.now = end;
  }

  [Symbol.dispose](): void {
    this.#timers = [];
  }
}
