/**
 * Shore's acks as the vessel takes them: each applied to the outbox (db/vessel/outbox.ts) one at
 * a time, in arrival order, so a late ack never undoes a newer one. An ack past this database's
 * last seq means the database was restored: the outbox starts a new epoch and the publisher
 * re-sends everything under it.
 */
import type { Sql } from "../../db/connection.ts";
import type { OutboxGate } from "../../core/outbox-gate.ts";
import type { Logger } from "../../core/log.ts";
import { applyAck } from "../../db/vessel/outbox.ts";
import { ackSchema, parsePayload } from "../protocol.ts";
import type { Publisher } from "./publisher.ts";
import type { EngineEvent } from "./engine.ts";

/** Options for {@linkcode createAckReceiver}. */
export interface AckReceiverOptions {
  sql: Sql;
  gate: OutboxGate;
  publisher: Publisher;
  log: Logger;
  emit: (e: EngineEvent) => void;
  /** Called once a new epoch is started, to announce it (the vessel's presence). */
  onNewEpoch: () => void;
}

/** Takes the payloads of the ack topic. */
export interface AckReceiver {
  receive(payload: Uint8Array): void;
  /** Resolves once every ack received so far is applied. */
  settled(): Promise<void>;
}

/** Builds the receiver; a malformed ack is dropped and reported, never thrown. */
export function createAckReceiver(options: AckReceiverOptions): AckReceiver {
  const { sql, gate, publisher, log, emit, onNewEpoch } = options;
  let ackChain = Promise.resolve();
  return {
    receive(payload) {
      const parsed = parsePayload(payload, ackSchema);
      if (!parsed) {
        log.warn("Malformed ack dropped", { bytes: payload.length });
        emit({ type: "error", where: "ack", error: "malformed ack" });
        return;
      }
      ackChain = ackChain.then(async () => {
        const outcome = await applyAck(sql, parsed);
        if (outcome.kind === "ignored") return;
        gate.released(outcome.released);
        if (outcome.kind === "new_epoch") {
          log.warn("Shore holds changes past our last seq: database restored, new epoch", {
            previous: parsed.epoch,
            epoch: outcome.epoch,
            shoreSeq: parsed.seq,
          });
          publisher.ackProgress();
          publisher.resendAll(); // drops rows buffered under the old epoch
          emit({ type: "new_epoch", previous: parsed.epoch, ...outcome });
          onNewEpoch();
          return;
        }
        publisher.acked(parsed.epoch, parsed.seq);
        // Progress is what the database had not held acknowledged: a retained ack handed over
        // again (at every SUBSCRIBE, after a restart too) is no word from shore.
        if (outcome.released > 0) publisher.ackProgress();
        emit({ type: "acked", ...parsed, released: outcome.released });
      }).catch((err) => {
        log.warn("Applying an ack failed", { error: err });
        emit({ type: "error", where: "ack", error: err });
      });
    },
    settled: () => ackChain,
  };
}
