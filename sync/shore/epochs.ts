/**
 * The epoch limit (db/shore/inbox.ts refuses a vessel's new epoch past `maxLiveEpochs`) applied
 * in memory before a transaction: per vessel, the epochs last written without refusal (a few),
 * and until when a vessel at its limit has any other epoch refused here. A vessel inventing an
 * epoch per message would otherwise cost the database one rollback each.
 */

/** How long a vessel found at its epoch limit has other epochs refused without a transaction. */
const LIMITED_MS = 10_000;

/** What the shore knows of each vessel's live epochs, from the writes it made. */
export class EpochAdmission {
  #live = new Map<string, string[]>();
  #limitedUntil = new Map<string, number>();

  constructor(readonly maxLiveEpochs: number) {}

  /** True when an envelope of `epoch` is refused without asking the database. */
  refuses(vesselId: string, epoch: string): boolean {
    if ((this.#limitedUntil.get(vesselId) ?? 0) <= Date.now()) return false;
    return !this.#live.get(vesselId)?.includes(epoch);
  }

  /** Takes what a write of `epoch` met: refused at the epoch limit, or written. */
  written(vesselId: string, epoch: string, epochLimited: boolean): void {
    if (epochLimited) this.#limitedUntil.set(vesselId, Date.now() + LIMITED_MS);
    else {
      const known = (this.#live.get(vesselId) ?? []).filter((x) => x !== epoch);
      this.#live.set(vesselId, [epoch, ...known].slice(0, this.maxLiveEpochs + 1));
    }
  }
}
