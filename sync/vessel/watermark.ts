/**
 * The publisher's published watermark (`vessel_state.published_seq`): every seq of its epoch up
 * to it got its PUBACK. PUBACKs come out of order (QoS 1 and 2, a refused row waits), so the
 * seqs PUBACKed past it are held until the ones below arrive; shore's ack raises it too, since a
 * PUBACK lost to a link reset must not hold it back for ever. Written in batches (one UPDATE
 * per PUBACK would cap the rate at the database's round trips); under ACK_MODE=broker, where a
 * PUBACK is the ack, the acknowledged watermark moves with it (`vessel_state.acked_seq`).
 *
 * Also the seqs the broker last refused (a PUBACK reason code): the pass after a reconnect skips
 * them, since a broker that drops the connection on a refusal (Mosquitto does) would otherwise
 * take down, at every connect, the publishes sent right behind the refused one. Only the
 * backed-off "all" pass tries them again.
 */
import type { Sql } from "../../db/connection.ts";
import type { Logger } from "../../core/log.ts";
import { advancePublished, type OutboxRow } from "../../db/vessel/outbox.ts";

/** Options for {@linkcode Watermark}. */
export interface WatermarkOptions {
  sql: Sql;
  log: Logger;
  /** `broker`: a PUBACK also acknowledges (ACK_MODE=broker): the watermark is the ack. */
  ackMode: "shore" | "broker";
  /**
   * Past this many PUBACKed seqs above a watermark held back (a row the broker keeps refusing),
   * forget them: they are re-sent by the next pass instead of held in memory. Also the most
   * refused seqs remembered.
   */
  maxAbove: number;
  /** ACK_MODE=broker: the watermark's advance acknowledged `released` changes. */
  onReleased: (released: number) => void;
}

/** The published watermark of one publisher. */
export class Watermark {
  /** Every seq of `epoch` up to `seq` got its PUBACK; `above`: PUBACKed seqs past it. */
  mark = { epoch: "", seq: 0, above: new Set<number>() };
  /** Seqs of `mark.epoch` the broker last refused. */
  readonly refused = new Set<number>();
  #saved = { epoch: "", seq: 0 }; // the watermark as last written
  #acked = { epoch: "", seq: 0 }; // shore's latest ack: published at least this far
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | undefined; // the write on its way
  #again = false; // the watermark moved meanwhile: write again after it

  constructor(readonly options: WatermarkOptions) {}

  /** The broker PUBACKed `row`. */
  published(row: OutboxRow): void {
    const { mark } = this;
    this.refused.delete(row.seq);
    if (row.epoch === mark.epoch && row.seq > mark.seq) {
      mark.above.add(row.seq);
      while (mark.above.delete(mark.seq + 1)) mark.seq++;
      if (mark.above.size > this.options.maxAbove) mark.above.clear();
    }
    this.#schedule();
  }

  /** The broker refused these seqs of `epoch` (a PUBACK reason code). */
  refuse(epoch: string, seqs: number[]): void {
    if (epoch !== this.mark.epoch || this.refused.size >= this.options.maxAbove) return;
    for (const seq of seqs) this.refused.add(seq);
  }

  /** Takes the database's watermark: a new epoch starts over, the same one never goes back. */
  seed(epoch: string, dbSeq: number): void {
    // An ack that came before the first pass read the watermark counts too.
    const acked = this.#acked;
    const publishedSeq = acked.epoch === epoch ? Math.max(dbSeq, acked.seq) : dbSeq;
    const { mark } = this;
    if (epoch !== mark.epoch) {
      this.mark = { epoch, seq: publishedSeq, above: new Set() };
      this.refused.clear();
    } else if (publishedSeq > mark.seq) {
      mark.seq = publishedSeq;
      for (const seq of mark.above) if (seq <= publishedSeq) mark.above.delete(seq);
      while (mark.above.delete(mark.seq + 1)) mark.seq++;
    }
    if (publishedSeq > dbSeq) this.#schedule(); // the ack's mark is not in the database yet
  }

  /** Shore acknowledged `epoch` up to `seq`: those were published, whatever PUBACKs were lost. */
  acked(epoch: string, seq: number): void {
    const acked = this.#acked;
    if (epoch !== acked.epoch || seq > acked.seq) this.#acked = { epoch, seq };
    if (epoch === this.mark.epoch && seq > this.mark.seq) {
      this.seed(epoch, seq);
      this.#schedule();
    }
  }

  /**
   * Writes the watermark (under ACK_MODE=broker, the acknowledged one with it) now, or, while a
   * write is on its way, once more after it: one write at a time. (Each PUBACKed row past the
   * batch size started a write of its own while the first was on its way: 7,000 transactions for
   * a drain of 20,000 changes in frames, where 30 claimed them.)
   */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#writing) {
      this.#again = true;
      return this.#writing;
    }
    this.#writing = this.#write().finally(() => {
      this.#writing = undefined;
      if (this.#again) {
        this.#again = false;
        void this.flush();
      }
    });
    return this.#writing;
  }

  async #write(): Promise<void> {
    const { sql, log, ackMode } = this.options;
    const { epoch, seq } = this.mark;
    if (epoch === this.#saved.epoch && seq <= this.#saved.seq) return;
    try {
      const released = await advancePublished(sql, { epoch, seq, acked: ackMode === "broker" });
      if (epoch !== this.#saved.epoch || seq > this.#saved.seq) this.#saved = { epoch, seq };
      if (released) this.options.onReleased(released);
    } catch (err) {
      // The watermark stays lower and the rows unacknowledged: they go out again, a
      // duplicate, not a loss.
      log.warn("Recording published changes failed", { epoch, seq, error: err });
    }
  }

  /** Stops the batching timer and writes what is pending. */
  async stop(): Promise<void> {
    await this.flush();
    while (this.#writing) await this.#writing;
  }

  #schedule() {
    if (this.mark.seq - this.#saved.seq >= 1024) {
      void this.flush();
    } else this.#timer ??= setTimeout(() => void this.flush(), 20);
  }
}
