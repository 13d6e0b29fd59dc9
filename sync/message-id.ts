import { sha256 } from "./sha256.ts";
import { uuidText } from "./frame-values.ts";

/**
 * The messageId a change gets when it is claimed: a UUIDv8 from SHA-256 of vessel, epoch and
 * seq, so that it need not travel (a random one is 16 incompressible bytes per change) and is
 * identical on every re-delivery. `db/vessel/outbox.ts` computes the same in SQL.
 */
export function deriveMessageId(vesselId: string, epoch: string, seq: number): string {
  const h = sha256(`bosun/${vesselId}/${epoch}/${seq}`);
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  return uuidText(h, 0);
}
