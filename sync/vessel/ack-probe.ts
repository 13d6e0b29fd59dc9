/**
 * At start, the vessel checks whether its broker lets it publish its own ack topic. If it
 * can, so can anyone with its rights (and anyone at all on a broker without an ACL): a forged
 * ack makes the vessel release changes no shore received. The shipped ACL forbids it.
 *
 * The probe is safe: it is published without the retain flag, so the retained ack (the
 * shore's) stays as it is; the shore ignores the ack topic, and the vessel's own ack handler
 * skips the probe (sync/vessel/engine.ts). Under MQTT 5 a refused publish is answered "not
 * authorised"; under MQTT 3.1.1 a refused publish is dropped silently and cannot be told apart
 * from one that was taken, so the engine probes under MQTT 5 only.
 */
import type { Session } from "../session.ts";
import type { Logger } from "../../core/log.ts";

/** The probe's payload; never a valid ack. */
export const ACK_PROBE = '{"probe":"bosun start-up check: may this account publish its ack?"}';

const probeBytes = new TextEncoder().encode(ACK_PROBE);

/** True for the probe's own payload coming back on the ack subscription. */
export function isAckProbe(payload: Uint8Array): boolean {
  return payload.length === probeBytes.length && payload.every((b, i) => b === probeBytes[i]);
}

/** Publishes the probe; warns in one line when the broker accepted it. */
export async function probeAckTopic(
  session: Session,
  ackTopic: string,
  log: Logger,
): Promise<"writable" | "refused" | "unknown"> {
  try {
    await session.publish(ackTopic, ACK_PROBE, { qos: 1, retain: false });
  } catch (err) {
    if (/not authori[sz]ed/i.test(String(err))) return "refused";
    return "unknown";
  }
  log.warn(
    "The broker lets this vessel publish its own ack topic: anyone with these rights can forge " +
      "the shore's ack and make this vessel release unsent changes; install the shipped ACL " +
      '(README "Security")',
    { topic: ackTopic },
  );
  return "writable";
}
