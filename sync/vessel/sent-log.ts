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

  /** Whether a send at least `delayMs` old is still waiting for its ack. */
  holdsOlderThan(delayMs: number): boolean {
    const now = this.now();
    return this.#log.some((e) => now - e.at >= delayMs);
  }

  /** Takes the sends at least `delayMs` old out of the log and returns them. */
  takeExpired(delayMs: number): Sent[] {
    const now = this.now();
    const expired = this.#log.filter((e) => now - e.at >= delayMs);
    if (expired.length) this.#log = this.#log.filter((e) => now - e.at < delayMs);
    return expired;
  }
}

/** What {@linkcode ResendClock.due} found. */
export interface Due {
  /** Shore not heard on this connection past the delay: ask for its ack again, send nothing. */
  silent: boolean;
  /** Sends whose time is up: walk the unacknowledged rows up to the newest of them again. */
  expired: Sent[];
}

/**
 * When the publisher sends again, around its {@linkcode SentLog}: a send is due once it went out
 * the re-send delay ago with shore silent since; the delay doubles at every re-send (up to a
 * ceiling) and falls back when shore's ack moves. Until shore's ack has moved on this connection
 * shore may be away (its broker session queues what we send, and at its return it asks for what
 * it lacks: contract §5), so sends wait for the ceiling, and the delay's schedule only asks
 * (`silent`): after an outage whose shore link ends later than ours, nothing goes twice for that.
 */
export class ResendClock {
  readonly #log: SentLog;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #shoreAcks: boolean;
  #delayMs: number;
  #heard: boolean;

  constructor(
    options: { baseMs: number; maxMs: number; shoreAcks: boolean; now?: () => number },
  ) {
    this.#log = new SentLog(options.now);
    this.#baseMs = this.#delayMs = options.baseMs;
    this.#maxMs = options.maxMs;
    this.#shoreAcks = options.shoreAcks;
    this.#heard = !options.shoreAcks;
  }

  /** The delay a re-send waits now. */
  get delayMs(): number {
    return this.#delayMs;
  }

  /** `seq` of `epoch` went out now. */
  noteSent(epoch: string, seq: number): void {
    this.#log.noteSent(epoch, seq);
  }

  /** A (re)connect: shore could not ack while we were away, and has not been heard since. */
  connected(): void {
    this.#log.restartClocks();
    this.#heard = !this.#shoreAcks;
  }

  /**
   * Shore's ack moved: it is working through our stream in seq order, so what it has not acked
   * yet is on its way (queued at the broker or in its ingest), not lost, and the clocks of the
   * sends still outstanding start again. A loss mid-stream stops its ack at the gap (and shore
   * asks for the gap itself).
   */
  progress(): void {
    this.#heard = true;
    this.#delayMs = this.#baseMs;
    this.#log.restartClocks();
  }

  /** ACK_MODE=broker: a PUBACK is the ack. */
  brokerAcked(): void {
    this.#delayMs = this.#baseMs;
  }

  /** Shore acknowledged `epoch` up to `seq`. */
  acked(epoch: string, seq: number): void {
    this.#log.acked(epoch, seq);
  }

  /** Everything is being re-sent anyway. */
  clear(): void {
    this.#log.clear();
  }

  /** What is due now; a `silent` answer backs the delay off as a re-send would. */
  due(): Due {
    const silent = !this.#heard && this.#log.holdsOlderThan(this.#delayMs);
    if (silent) this.backOff();
    return { silent, expired: this.#log.takeExpired(this.#heard ? this.#delayMs : this.#maxMs) };
  }

  /** A re-send went out: the next one waits twice as long. */
  backOff(): void {
    this.#delayMs = Math.min(this.#delayMs * 2, this.#maxMs);
  }
}
