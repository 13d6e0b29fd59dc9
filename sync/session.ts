/**
 * The MQTT session: the narrow seam between bosun and mqtt.js, which the vessel publisher and
 * the shore ingest are both written against. Client id, a persistent session (MQTT 5 session
 * expiry, or MQTT 3.1.1's clean: false), TLS and credentials, keepalive, Last Will,
 * reconnect forever with exponential back-off and jitter, subscriptions re-established after
 * a session loss (sync/subscriptions.ts).
 */
import { Buffer } from "node:buffer";
import mqtt, { type MqttClient, UniqueMessageIdProvider } from "mqtt";
import { type Config, redactUrl } from "../config.ts";
import type { Logger } from "../core/log.ts";
import type { TlsFiles } from "./tls.ts";
import { validateFilter, validateTopicName } from "./protocol.ts";
import { backoffDelay, type BackoffOptions, DEFAULT_BACKOFF, shouldLogAttempt } from "./backoff.ts";
import { Subscriptions } from "./subscriptions.ts";

/** Publish options. */
export interface PublishOptions {
  qos: 0 | 1 | 2;
  retain?: boolean;
  /** MQTT 5 content type (a frame's encoding); not sent under MQTT 3.1.1. */
  contentType?: string;
}

/** What an incoming message carried besides topic and payload. */
export interface MessageMeta {
  /** The MQTT 5 content type, when the publisher set one. */
  contentType?: string;
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
  /** The broker's Receive Maximum from the last CONNACK: QoS 1/2 publishes it takes at once. */
  readonly receiveMaximum: number;
  /**
   * Publishes and resolves on PUBACK (QoS 1) / PUBCOMP (QoS 2), rejects when the connection
   * drops first. Must only be called while `connected`: mqtt.js's offline queue is in memory.
   */
  publish(topic: string, payload: string | Uint8Array, options: PublishOptions): Promise<void>;
  /** Adds a subscription, kept across reconnects and session losses. */
  subscribe(filter: string, qos: 0 | 1 | 2): Promise<void>;
  /**
   * UNSUBSCRIBE and SUBSCRIBE `filter` again, for a subscription that stopped delivering: a
   * broker that keeps a subscription's state apart from the connection (NATS: a JetStream
   * consumer) makes it anew.
   */
  renew(filter: string): Promise<void>;
  /** Calls `fn` for every incoming message; returns the unsubscribe. */
  onMessage(fn: (topic: string, payload: Uint8Array, meta: MessageMeta) => void): () => void;
  /** Calls `fn` for every session event; returns the unsubscribe. */
  onEvent(fn: (event: SessionEvent) => void): () => void;
  /** Closes the connection; `offline` payloads etc. are the caller's to publish first. */
  close(): Promise<void>;
}

// Implementation over mqtt.js 5.

/** The Last Will, set at every connect. */
export interface Will {
  topic: string;
  payload: string;
  qos: 0 | 1 | 2;
  retain: boolean;
}

/** Options for {@linkcode createSession}. */
export interface SessionOptions {
  /** Broker URL, credentials, keepalive (the TLS file names are read by `readTlsFiles`). */
  mqtt: Config["mqtt"];
  /** `bosun-<VESSEL_ID>` for a vessel; the same at every start so the session resumes. */
  clientId: string;
  /** PEM contents from `readTlsFiles`, read once at start. */
  tls?: TlsFiles;
  will?: Will;
  log: Logger;
  /** How long the broker keeps the session while we are away (MQTT 5), default 7 days. */
  sessionExpiryS?: number;
  backoff?: BackoffOptions;
  /** Injected for tests; defaults to Math.random. */
  random?: () => number;
  /** The change-log depth, quoted in reconnect log lines. */
  queueDepth?: () => number;
  /**
   * Counts every reconnect attempt (`bosun_reconnect_attempts_total`) and the payload bytes
   * that cross the link (`bosun_link_bytes_total`): this is the one place all of them pass.
   */
  metrics?: {
    reconnectAttempts: { inc(): void };
    linkBytes?: { inc(labels: { direction: "sent" | "received" }, value: number): void };
  };
  /** How long a clean close waits for the DISCONNECT to flush before forcing. */
  closeTimeoutMs?: number;
}

const SEVEN_DAYS_S = 7 * 24 * 3600;

/**
 * Opens an MQTT 5 persistent session (clean start off, session expiry) that reconnects
 * forever. mqtt.js's own reconnect runs at a fixed period, so it is switched off
 * (`reconnectPeriod: 0`) and each `close` schedules `client.connect()` after an
 * exponential, fully jittered delay. The same client object is reconnected, so mqtt.js keeps
 * its in-flight packet ids (a QoS 2 exchange resumes instead of being mistaken for new).
 *
 * Returns at once: the first connection is attempted in the background, so a broker down at
 * start never delays start-up.
 */
export function createSession(options: SessionOptions): Session {
  return new MqttSession(options);
}

class MqttSession implements Session {
  #client: MqttClient;
  #log: Logger;
  #opts: SessionOptions;
  #connected = false;
  #closed = false;
  #lastError: string | undefined;
  #attempt = 0; // since the last successful connect, drives the delay
  #attemptsTotal = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #subs: Subscriptions;
  #messageFns = new Set<(topic: string, payload: Uint8Array, meta: MessageMeta) => void>();
  #v5: boolean;
  #eventFns = new Set<(event: SessionEvent) => void>();
  #pending = new Set<(err: Error) => void>();
  // mqtt.js does not honour the broker's Receive Maximum for what it sends. Mosquitto
  // advertises max_inflight_messages (20 by default) and leaves QoS 2 publishes past it
  // unanswered, so alerts beyond the 20th hung until a re-send; the test brokers set 0
  // (unlimited) and never showed it. QoS 1/2 publishes past the limit wait here instead.
  #receiveMaximum = 65_535;
  #maxQos: 1 | 2 = 2;
  #protocolWarned = false;
  #inFlight = 0;
  #waiting: (() => void)[] = [];

  constructor(opts: SessionOptions) {
    this.#opts = opts;
    this.#log = opts.log;
    const { mqtt: m, tls = {}, will } = opts;
    const v5 = m.protocolVersion === 5;
    this.#v5 = v5;
    // MQTT 3.1.1 has no QoS negotiation: the brokers bosun meets there (NATS) refuse QoS 2, so
    // nothing above 1 is sent. The end-to-end ack, not the broker's QoS, is the guarantee.
    this.#maxQos = v5 ? 2 : 1;
    this.#client = mqtt.connect(m.url, {
      clientId: opts.clientId,
      protocolVersion: m.protocolVersion,
      // A persistent session either way: MQTT 5's session expiry, or 3.1.1's clean: false
      // (which the broker keeps until it decides otherwise).
      clean: false,
      properties: v5 ? { sessionExpiryInterval: opts.sessionExpiryS ?? SEVEN_DAYS_S } : undefined,
      keepalive: m.keepaliveS,
      username: m.username,
      password: m.password,
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      will: will && {
        topic: will.topic,
        payload: new TextEncoder().encode(will.payload) as never,
        qos: will.qos,
        retain: will.retain,
      },
      reconnectPeriod: 0,
      connectTimeout: 30_000,
      // Never let mqtt.js hold messages in memory while offline: the change log is the queue.
      queueQoSZero: false,
      // Resubscription is ours (mqtt.js only tracks it when its own reconnect is on).
      resubscribe: false,
      // The default provider counts ids round and hands out one still in use; this one never
      // reuses an id before its exchange ends, so a QoS 2 id the broker holds awaiting PUBREL
      // is never given to a new message (which the broker would drop as a duplicate).
      messageIdProvider: new UniqueMessageIdProvider(),
      // MQTT 5 topic aliases where the broker offers them (its CONNACK's Topic Alias Maximum):
      // a topic's name then travels once per connection, not in every publish. mqtt.js keeps
      // the table per connection and restores the name of a stored publish it sends again.
      autoAssignTopicAlias: v5,
    });
    this.#subs = new Subscriptions({
      client: this.#client,
      log: this.#log,
      maxQos: () => this.#maxQos,
      connected: () => this.#connected,
      backoff: opts.backoff,
      random: opts.random,
    });
    this.#client.on("connect", (connack) => {
      this.#receiveMaximum = connack.properties?.receiveMaximum ?? 65_535;
      // An MQTT 5 broker without QoS 2 says so in its CONNACK ("Maximum QoS").
      if (v5) this.#maxQos = connack.properties?.maximumQoS === 1 ? 1 : 2;
      // What mqtt.js still holds (QoS 2 kept across a drop) occupies the broker's window too.
      this.#inFlight = Object.keys(this.#client.outgoing).length;
      this.#onConnect(connack.sessionPresent);
      this.#release(0);
    });
    this.#client.on("close", () => this.#onClose());
    this.#client.on("error", (err) => {
      // Told on the (thinned) reconnect line, so an operator sees why the broker refuses us
      // (bad password, unknown CA) without a line per attempt. mqtt.js errors hold no secrets.
      this.#lastError = err.message;
      this.#log.debug("MQTT error", { error: err });
      const code = (err as { code?: unknown }).code;
      // 3.1.1's return code 1 and MQTT 5's 0x84: the broker does not speak our version.
      if (v5 && (code === 1 || code === 0x84) && !this.#protocolWarned) {
        this.#protocolWarned = true;
        this.#log.warn(
          'The broker refuses MQTT 5 ("Unacceptable protocol version"): set MQTT_PROTOCOL=3.1.1',
          { broker: redactUrl(m.url) },
        );
      }
    });
    this.#client.on("message", (topic, payload, packet) => {
      this.#opts.metrics?.linkBytes?.inc({ direction: "received" }, payload.length);
      const contentType = packet.properties?.contentType;
      const meta: MessageMeta = contentType === undefined ? {} : { contentType };
      for (const fn of this.#messageFns) {
        try {
          fn(topic, payload, meta);
        } catch (err) {
          this.#log.error("Message handler failed", { topic, error: err });
        }
      }
    });
  }

  get connected(): boolean {
    return this.#connected;
  }

  get reconnectAttempts(): number {
    return this.#attemptsTotal;
  }

  get subscriptions(): readonly string[] {
    return this.#subs.filters;
  }

  get receiveMaximum(): number {
    return this.#receiveMaximum;
  }

  // One QoS 1/2 publish completed (n = 1), or the window was reset (n = 0): start waiters.
  #release(n: number): void {
    this.#inFlight = Math.max(0, this.#inFlight - n);
    while (this.#inFlight < this.#receiveMaximum && this.#waiting.length) this.#waiting.shift()!();
  }

  publish(topic: string, payload: string | Uint8Array, options: PublishOptions): Promise<void> {
    try {
      validateTopicName(topic);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.#connected) return Promise.reject(new Error("Not connected"));
    const body = typeof payload === "string"
      ? payload
      : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    return new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => {
        this.#pending.delete(fail);
        reject(err);
      };
      this.#pending.add(fail);
      const qos = Math.min(options.qos, this.#maxQos) as 0 | 1 | 2;
      const counted = qos > 0;
      const go = () => {
        if (!this.#pending.has(fail) || !this.#connected) return; // rejected while waiting
        if (counted) this.#inFlight++;
        this.#opts.metrics?.linkBytes?.inc({ direction: "sent" }, Buffer.byteLength(body));
        const properties = options.contentType && this.#v5
          ? { contentType: options.contentType }
          : undefined;
        this.#client.publish(
          topic,
          body,
          { qos, retain: options.retain ?? false, properties },
          (err) => {
            if (counted) this.#release(1);
            if (!this.#pending.delete(fail)) return; // already rejected by a drop
            if (err) reject(err);
            else resolve();
          },
        );
      };
      if (counted && this.#inFlight >= this.#receiveMaximum) this.#waiting.push(go);
      else go();
    });
  }

  async subscribe(filter: string, qos: 0 | 1 | 2): Promise<void> {
    validateFilter(filter);
    await this.#subs.add(filter, qos);
  }

  renew(filter: string): Promise<void> {
    return this.#subs.renew(filter);
  }

  onMessage(fn: (topic: string, payload: Uint8Array, meta: MessageMeta) => void): () => void {
    this.#messageFns.add(fn);
    return () => this.#messageFns.delete(fn);
  }

  onEvent(fn: (event: SessionEvent) => void): () => void {
    this.#eventFns.add(fn);
    return () => this.#eventFns.delete(fn);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#subs.stop();
    const client = this.#client;
    if (!this.#connected) {
      await client.endAsync(true);
      return;
    }
    // A clean DISCONNECT (reason 0) tells the broker not to publish the Will. Bounded: a
    // dead link must not hold up shutdown.
    let t: ReturnType<typeof setTimeout> | undefined;
    const forced = new Promise<void>((resolve) => {
      t = setTimeout(
        () => client.end(true, {}, () => resolve()),
        this.#opts.closeTimeoutMs ?? 2_000,
      );
    });
    await Promise.race([client.endAsync(false, { reasonCode: 0 }), forced]);
    clearTimeout(t);
    this.#rejectPending("Session closed");
  }

  #emit(event: SessionEvent): void {
    for (const fn of this.#eventFns) {
      try {
        fn(event);
      } catch (err) {
        this.#log.error("Session event handler failed", { event: event.type, error: err });
      }
    }
  }

  #onConnect(sessionPresent: boolean): void {
    this.#connected = true;
    const attempts = this.#attempt;
    this.#attempt = 0;
    this.#lastError = undefined;
    this.#log.info("MQTT connected", { sessionPresent, afterAttempts: attempts });
    // Every connect re-sends every SUBSCRIBE: after a session loss the broker has none, and a
    // filter added while offline was never sent. Retained messages come again; the ack is
    // idempotent, so that is harmless and recovers an ack lost in a crash.
    this.#subs.sendAll().catch((err) => {
      this.#log.warn("Resubscribe failed", { error: err });
    });
    this.#emit({ type: "connected", sessionPresent });
  }

  #rejectPending(reason: string): void {
    const err = new Error(reason);
    for (const fail of [...this.#pending]) fail(err);
    this.#waiting = []; // each was rejected above
  }

  /**
   * mqtt.js keeps in-flight QoS 1/2 publishes in its in-memory store and, on a resumed
   * session, replays them one per round trip before it reports "connect": with a full window
   * on a 600 ms satellite link the session stayed "disconnected" for minutes, publishing
   * nothing new. Those publishes were just rejected to the caller, who re-sends what matters
   * (the publisher, from the database), so the QoS 1 ones are forgotten. QoS 2 ones (alerts,
   * few) stay: the broker may hold their packet id awaiting PUBREL, and a new message reusing
   * that id would be taken for a duplicate and dropped.
   */
  #forgetRejectedPublishes(): void {
    const client = this.#client;
    for (const id of Object.keys(client.outgoing)) {
      const messageId = Number(id);
      client.outgoingStore.get({ messageId }, (err, packet) => {
        if (!err && packet?.cmd === "publish" && packet.qos === 1) {
          client.removeOutgoingMessage(messageId);
        }
      });
    }
  }

  #onClose(): void {
    if (this.#connected) {
      this.#connected = false;
      this.#log.warn("MQTT disconnected");
      this.#emit({ type: "disconnected", reason: "connection closed" });
    }
    // mqtt.js keeps a persistent session's in-flight callbacks across reconnects; the
    // publisher wants to know now, and re-sends from the change log itself.
    this.#rejectPending("Connection closed");
    this.#forgetRejectedPublishes();
    if (this.#closed || this.#timer !== undefined) return;
    this.#attempt++;
    this.#attemptsTotal++;
    this.#opts.metrics?.reconnectAttempts.inc();
    const delayMs = backoffDelay(
      this.#attempt,
      this.#opts.backoff ?? DEFAULT_BACKOFF,
      this.#opts.random,
    );
    if (shouldLogAttempt(this.#attempt)) {
      this.#log.info("MQTT reconnecting", {
        attempt: this.#attempt,
        delayMs,
        queueDepth: this.#opts.queueDepth?.(),
        lastError: this.#lastError,
      });
    }
    this.#emit({ type: "reconnecting", attempt: this.#attempt, delayMs });
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) this.#client.connect();
    }, delayMs);
  }
}
