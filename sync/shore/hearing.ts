/**
 * Does the shore's fleet subscription still deliver? A broker can keep a subscription's state
 * apart from the connection and lose it while the connection stays up: nats-server with
 * `consumer_replicas: 1` keeps each subscription's position in a JetStream consumer on one node,
 * which dies with that node and is never replaced for a resumed session; the shore then hears
 * nothing from any vessel while connected to a healthy node (docs/scaling.md).
 *
 * Silence alone proves nothing (a quiet fleet), so after `quietMs` without a message the shore
 * publishes a probe on a topic its own subscription covers (an ack topic: every shore may write
 * acks, vessels and the shore ignore a payload that is no ack). If nothing at all, the probe
 * included, arrives for another `quietMs` after its PUBACK, the subscription is renewed:
 * UNSUBSCRIBE and SUBSCRIBE, which makes the broker build it anew and hand over the retained
 * statuses (the shore then asks each vessel for what it lacks, as at a connect).
 */
import type { Session } from "../session.ts";
import type { Logger } from "../../core/log.ts";
import { topicsOf } from "../protocol.ts";

/** The probe's topic: an ack topic no vessel has (its id is outside a gateway's client ids). */
export const HEARING_PROBE_TOPIC = topicsOf("bosun-shore-hearing-probe").ack;

const PROBE = '{"probe":"bosun shore: does the fleet subscription deliver?"}';

/** Options for {@linkcode watchHearing}. */
export interface HearingOptions {
  session: Session;
  /** The fleet filter to renew when deaf. */
  filter: string;
  log: Logger;
  /** Silence before a probe, and after the probe before renewing. */
  quietMs: number;
}

/** A running watch: `heard()` on every message received. */
export interface Hearing {
  heard(): void;
  stop(): void;
}

/** Starts watching; every check runs on one timer of `quietMs / 2`. */
export function watchHearing(options: HearingOptions): Hearing {
  const { session, filter, log, quietMs } = options;
  let lastHeard = performance.now();
  let probedAt: number | undefined; // PUBACK of the outstanding probe
  let busy = false;

  const check = async () => {
    const now = performance.now();
    if (!session.connected || now - lastHeard < quietMs) {
      if (!session.connected) lastHeard = now; // nothing can be heard while away
      probedAt = undefined;
      return;
    }
    if (probedAt === undefined) {
      await session.publish(HEARING_PROBE_TOPIC, PROBE, { qos: 1 });
      probedAt = performance.now();
      return;
    }
    if (lastHeard > probedAt || now - probedAt < quietMs) return;
    log.warn(
      "The fleet subscription delivers nothing, not even the shore's own probe: renewing it",
      {
        filter,
        silentS: Math.round((now - lastHeard) / 1000),
      },
    );
    probedAt = undefined;
    lastHeard = performance.now();
    await session.renew(filter);
  };
  const timer = setInterval(() => {
    if (busy) return;
    busy = true;
    check().catch((err) => log.debug("Hearing check failed", { error: err })).finally(() => {
      busy = false;
    });
  }, Math.max(50, quietMs / 2));

  return {
    heard() {
      lastHeard = performance.now();
    },
    stop() {
      clearInterval(timer);
    },
  };
}
