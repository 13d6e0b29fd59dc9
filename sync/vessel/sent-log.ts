/**
 * What the publisher sent and when, for re-sends that count from the send: a row is re-sent
 * once it went out the re-send delay ago with no ack from shore covering it since (not once the
 * last ack is that old: that re-sent the first changes of every drain after an outage). One
 * entry per burst (a second of sending): the highest seq sent in it and the burst's start; an
 * entry leaves once shore's ack covers its seq. Every clock starts again at a (re)connect and
 * whenever shore's ack moves (it is working through what we sent), so a re-send needs shore
 * silent for the whole delay after the send.
 */

/** One burst of sends. */
export interface Sent {
  epoch: string;
  seq: number;
  at: number;
}

/** The publisher's log of sends. */
export class SentLog {
  #log: Sent[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  /** `seq` of `epoch` went out now. */
  noteSent(epoch: string, seq: number): void {
    const now = this.now();
    const last = this.#log.at(-1);
    if (last && last.epoch === epoch && now - last.at < 1_000) last.seq = Math.max(last.seq, seq);
    else this.#log.push({ epoch, seq, at: now });
  }

  /** Shore could not ack (the link was down) or is still acking: every send's clock restarts now. */
  restartClocks(): void {
    const now = this.now();
    for (const entry of this.#log) entry.at = now;
  }

  /** Shore acknowledged `epoch` up to `seq`: those sends need no re-send. */
  acked(epoch: string, seq: number): void {
    this.#log = this.#log.filter((e) => e.epoch !== epoch || e.seq > seq);
  }

  /** Everything is being re-sent anyway. */
  clear(): void {
    this.#log = [];
  }

  /** Takes the sends at least `delayMs` old out of the log and returns them. */
  takeExpired(delayMs: number): Sent[] {
    const now = this.now();
    const expired = this.#log.filter((e) => now - e.at >= delayMs);
    if (expired.length) this.#log = this.#log.filter((e) => now - e.at < delayMs);
    return expired;
  }
}
