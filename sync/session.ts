/**
 * The MQTT session: the narrow seam between bosun and mqtt.js.
 *
 * THE INTERFACE BELOW IS FIXED (the shore and the vessel publisher are both written against
 * it). `createSession` is implemented in this file by the sync-engine work: client id, MQTT 5
 * persistent session, TLS and credentials, keepalive, Last Will, reconnect forever with
 * exponential back-off and jitter, subscriptions re-established after a session loss.
 */

/** Publish options. */
export interface PublishOptions {
  qos: 0 | 1 | 2;
  retain?: boolean;
}

/** Session events, typed, for health, metrics and the publisher. */
export type SessionEvent =
  | { type: "connected"; sessionPresent: boolean }
  | { type: "disconnected"; reason: string }
  | { type: "reconnecting"; attempt: number; delayMs: number };

/** A connected-or-not MQTT session that never gives up reconnecting. */
export interface Session {
  readonly connected: boolean;
  /** Reconnect attempts since start. */
  readonly reconnectAttempts: number;
  /** Filters currently subscribed (re-subscribed after every session loss). */
  readonly subscriptions: readonly string[];
  /**
   * Publishes and resolves on PUBACK (QoS 1) / PUBCOMP (QoS 2), rejects when the connection
   * drops first. Must only be called while `connected`: mqtt.js's offline queue is in memory.
   */
  publish(topic: string, payload: string | Uint8Array, options: PublishOptions): Promise<void>;
  /** Adds a subscription, kept across reconnects and session losses. */
  subscribe(filter: string, qos: 0 | 1 | 2): Promise<void>;
  /** Calls `fn` for every incoming message; returns the unsubscribe. */
  onMessage(fn: (topic: string, payload: Uint8Array) => void): () => void;
  /** Calls `fn` for every session event; returns the unsubscribe. */
  onEvent(fn: (event: SessionEvent) => void): () => void;
  /** Closes the connection; `offline` payloads etc. are the caller's to publish first. */
  close(): Promise<void>;
}
