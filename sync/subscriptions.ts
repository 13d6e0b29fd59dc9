/**
 * The filters an MQTT session holds, and their SUBSCRIBEs: every filter is sent again at every
 * connect (sync/session.ts), a filter the broker refuses is asked for again, backing off, and a
 * filter can be renewed (UNSUBSCRIBE, then SUBSCRIBE).
 *
 * A refusal need not be final: nats-server refuses a QoS 1 SUBSCRIBE (SUBACK 0x80) when it cannot
 * create the subscription's JetStream consumer within its 4 s (a loaded or electing cluster), and
 * a vessel deaf to its ack would re-send for ever.
 */
import type { MqttClient } from "mqtt";
import type { Logger } from "../core/log.ts";
import { backoffDelay, type BackoffOptions, DEFAULT_BACKOFF, shouldLogAttempt } from "./backoff.ts";

/** Options for {@linkcode Subscriptions}. */
export interface SubscriptionsOptions {
  client: MqttClient;
  log: Logger;
  /** The highest QoS the broker takes (from its CONNACK, or 1 under MQTT 3.1.1). */
  maxQos: () => 1 | 2;
  /** Whether the session is connected now. */
  connected: () => boolean;
  backoff?: BackoffOptions;
  random?: () => number;
}

/** A session's subscriptions. */
export class Subscriptions {
  #o: SubscriptionsOptions;
  #filters = new Map<string, 0 | 1 | 2>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0; // refusals in a row, drives the delay of asking again
  #stopped = false;

  constructor(options: SubscriptionsOptions) {
    this.#o = options;
  }

  /** The filters held, in the order they were added. */
  get filters(): string[] {
    return [...this.#filters.keys()];
  }

  /** Adds `filter` (kept across reconnects) and sends its SUBSCRIBE when connected. */
  async add(filter: string, qos: 0 | 1 | 2): Promise<void> {
    this.#filters.set(filter, qos);
    if (this.#o.connected()) await this.send([filter]);
  }

  /** SUBSCRIBEs to every filter held (at a connect). */
  sendAll(): Promise<void> {
    return this.send(this.filters);
  }

  /** UNSUBSCRIBE and SUBSCRIBE `filter` again, when held and connected. */
  async renew(filter: string): Promise<void> {
    if (!this.#filters.has(filter) || !this.#o.connected()) return;
    await this.#o.client.unsubscribeAsync(filter);
    await this.send([filter]);
  }

  /** Stops asking again. */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** One SUBSCRIBE for `filters`; what the broker refuses is asked for again later. */
  async send(filters: string[]): Promise<void> {
    if (filters.length === 0) return;
    const { client, log } = this.#o;
    const map: Record<string, { qos: 0 | 1 | 2 }> = {};
    for (const f of filters) {
      map[f] = { qos: Math.min(this.#filters.get(f) ?? 1, this.#o.maxQos()) as 0 | 1 | 2 };
    }
    let granted: { topic: string; qos: number }[];
    try {
      granted = await client.subscribeAsync(map);
    } catch (err) {
      // mqtt.js rejects a SUBACK holding a failure code; its packet says which filter failed.
      const codes = (err as { packet?: { granted?: (number | object)[] } }).packet?.granted;
      if (!codes) throw err;
      granted = filters.map((topic, i) => ({ topic, qos: Number(codes[i] ?? 0x80) }));
    }
    const refused = granted.filter((g) => g.qos > 2);
    if (refused.length === 0) {
      this.#attempt = 0;
      return;
    }
    this.#attempt++;
    if (shouldLogAttempt(this.#attempt)) {
      for (const g of refused) {
        log.warn("Subscription refused by broker, asking again", {
          filter: g.topic,
          code: g.qos,
          attempt: this.#attempt,
        });
      }
    }
    if (this.#timer !== undefined || this.#stopped) return;
    const delayMs = backoffDelay(this.#attempt, this.#o.backoff ?? DEFAULT_BACKOFF, this.#o.random);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#o.connected() || this.#stopped) return;
      this.send(refused.map((g) => g.topic).filter((f) => this.#filters.has(f)))
        .catch((err) => log.warn("Resubscribe failed", { error: err }));
    }, delayMs);
  }
}
