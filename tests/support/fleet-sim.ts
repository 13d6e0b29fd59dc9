/**
 * A fleet simulator: many vessels, each a real protocol peer on its own mqtt.js connection,
 * driven by one Deno process (not one gateway per vessel). Each peer has its own client id
 * (`bosun-<id>`), epoch and gapless seq; states its retained online status with epoch and
 * last seq (sync/protocol.ts statusPayload) and leaves a Last Will saying offline; publishes
 * its changes as envelopes on the per-entity topics (records from tests/support/fleet.ts's
 * SimulatedVessel); follows its retained ack (ackSchema) and re-sends from the ack when it
 * stalls for `ackTimeoutMs`; answers the shore's catch-up requests from what is unacknowledged.
 *
 * By default changes travel as the real publisher sends them under `LINK_MODE=frames`
 * (sync/vessel/publisher.ts): contiguous runs of up to 1,024 changes cut by sync/frame.ts's
 * `cutFrames` onto `<root>/frames` at QoS 1, 8 frames in flight, message ids derived from
 * (vessel, epoch, seq); `linkMode: "messages"` sends one envelope per change instead, on the
 * per-entity topics, 256 in flight.
 */
import mqtt from "mqtt";
import {
  ackSchema,
  catchupRequestSchema,
  type Envelope,
  parsePayload,
  qosOf,
  statusPayload,
  topicsOf,
} from "../../sync/protocol.ts";
import { cutFrames, FRAME_CONTENT_TYPE } from "../../sync/frame.ts";
import { deriveMessageId } from "../../sync/message-id.ts";
import { SimulatedVessel, topicOf } from "./fleet.ts";

/** One peer's settings. */
export interface PeerOptions {
  id: string;
  /** Broker URLs: the first is the peer's own node; the rest are tried on reconnect. */
  urls: string[];
  /** 5, or 4 for MQTT 3.1.1 (then every publish is QoS 1, as sync/session.ts does). */
  protocolVersion: 4 | 5;
  username?: string;
  password?: string;
  /** Re-send from the ack when it has not moved for this long while changes are unacked. */
  ackTimeoutMs?: number;
  /** Messages awaiting PUBACK at once (256, as the real publisher; frames: 8 as it has). */
  window?: number;
  /** frames (the default, as LINK_MODE=frames) or one message per change. */
  linkMode?: "frames" | "messages";
  /** Seqs whose first send is skipped (a lost message: the shore must ask for it). */
  skipFirstSend?: (seq: number) => boolean;
}

/** What a peer did, for a bench's or test's account. */
export interface PeerStats {
  made: number;
  sent: number;
  resent: number;
  catchupServed: number;
  acked: number;
}

const utf8 = new TextEncoder();

/** One simulated vessel. */
export class SimPeer {
  readonly vessel: SimulatedVessel;
  readonly client: mqtt.MqttClient;
  readonly stats: PeerStats = { made: 0, sent: 0, resent: 0, catchupServed: 0, acked: 0 };
  /** Unacknowledged changes by seq (acknowledged ones are dropped: memory stays bounded). */
  readonly #log = new Map<number, Envelope>();
  #nextToSend = 1;
  #inFlight = 0;
  #ackMovedAt = performance.now();
  #timer: ReturnType<typeof setInterval>;
  #closed = false;
  #waiters: { seq: number; resolve: () => void }[] = [];
  readonly #o: Required<Omit<PeerOptions, "username" | "password" | "skipFirstSend">> & PeerOptions;

  constructor(options: PeerOptions) {
    const frames = (options.linkMode ?? "frames") === "frames";
    this.#o = { ackTimeoutMs: 15_000, window: frames ? 8 : 256, linkMode: "frames", ...options };
    this.vessel = new SimulatedVessel(options.id);
    const topics = topicsOf(options.id);
    const servers = options.urls.map((u) => {
      const url = new URL(u);
      return {
        host: url.hostname,
        port: Number(url.port),
        protocol: url.protocol.slice(0, -1) as "mqtt" | "mqtts",
      };
    });
    this.client = mqtt.connect({
      servers,
      clientId: `bosun-${options.id}`,
      protocolVersion: options.protocolVersion,
      clean: false,
      ...(options.protocolVersion === 5 ? { properties: { sessionExpiryInterval: 86_400 } } : {}),
      keepalive: 10,
      reconnectPeriod: 500,
      // As sync/session.ts: SUBSCRIBE is ours. mqtt.js's own bookkeeping would skip a SUBSCRIBE
      // to a filter it thinks is held, and the broker then never hands over the retained ack.
      resubscribe: false,
      connectTimeout: 10_000,
      username: options.username,
      password: options.password,
      will: {
        topic: topics.status,
        payload: utf8.encode(statusPayload(this.#status("offline"))) as never,
        qos: 1,
        retain: true,
      },
    });
    this.client.on("connect", () => {
      // Anything in flight on the old connection is re-sent by mqtt.js or by the ack timeout.
      this.client.publish(topics.status, statusPayload(this.#status("online")), {
        qos: 1,
        retain: true,
      });
      this.#subscribe([topics.ack, topics.catchupRequest]);
      this.#pump();
    });
    this.client.on("message", (topic, payload) => {
      if (topic === topics.ack) this.#onAck(payload);
      else if (topic === topics.catchupRequest) this.#onCatchup(payload);
    });
    this.client.on("error", () => {
      // mqtt.js reconnects by itself; the ack timeout covers what was lost meanwhile.
    });
    this.#timer = setInterval(() => this.#checkAck(), Math.max(200, this.#o.ackTimeoutMs / 4));
  }

  get id(): string {
    return this.#o.id;
  }

  /** The last seq handed out. */
  get seq(): number {
    return this.vessel.seq;
  }

  get acked(): number {
    return this.stats.acked;
  }

  #status(status: "online" | "offline") {
    return {
      status,
      vesselId: this.#o.id,
      version: "fleet-sim",
      ...(status === "online" ? { timestamp: new Date().toISOString() } : {}),
      epoch: this.vessel.epoch,
      lastSeq: this.vessel.seq,
    };
  }

  /** Makes `n` changes (the vessel's commits) and sends them as the window allows. */
  change(n = 1): void {
    for (let i = 0; i < n; i++) {
      const e = this.vessel.mixed();
      if (this.#o.linkMode === "frames") {
        e.messageId = deriveMessageId(this.#o.id, e.epoch, e.seq);
      }
      this.#log.set(e.seq, e);
      this.stats.made++;
    }
    this.#pump();
  }

  #qos(e: Envelope): 1 | 2 {
    return this.#o.protocolVersion === 5 ? qosOf(e.entity) : 1;
  }

  #publishFrames(envelopes: Envelope[]): void {
    const topic = topicsOf(this.#o.id).frames;
    const v5 = this.#o.protocolVersion === 5;
    for (const frame of cutFrames(envelopes)) {
      this.#inFlight++;
      this.client.publish(
        topic,
        frame.payload as never,
        { qos: 1, ...(v5 ? { properties: { contentType: FRAME_CONTENT_TYPE } } : {}) },
        () => {
          this.#inFlight--;
          this.#pump();
        },
      );
    }
  }

  #pump(): void {
    if (this.#o.linkMode === "frames") return this.#pumpFrames();
    while (
      !this.#closed && this.client.connected && this.#inFlight < this.#o.window &&
      this.#nextToSend <= this.vessel.seq
    ) {
      const seq = this.#nextToSend++;
      const e = this.#log.get(seq);
      if (!e) continue; // acknowledged meanwhile
      const first = seq > this.stats.sent;
      if (first) this.stats.sent = seq;
      else this.stats.resent++;
      if (first && this.#o.skipFirstSend?.(seq)) continue;
      this.#inFlight++;
      this.client.publish(topicOf(e), JSON.stringify(e), { qos: this.#qos(e) }, () => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  /** One contiguous run of up to 1,024 unsent changes at a time, as frames. */
  #pumpFrames(): void {
    while (
      !this.#closed && this.client.connected && this.#inFlight < this.#o.window &&
      this.#nextToSend <= this.vessel.seq
    ) {
      const run: Envelope[] = [];
      while (run.length < 1_024 && this.#nextToSend <= this.vessel.seq) {
        const seq = this.#nextToSend++;
        const e = this.#log.get(seq);
        if (!e) continue; // acknowledged meanwhile
        const first = seq > this.stats.sent;
        if (first) this.stats.sent = seq;
        else this.stats.resent++;
        if (first && this.#o.skipFirstSend?.(seq)) break; // lost: the run ends before it
        run.push(e);
      }
      if (run.length) this.#publishFrames(run);
    }
  }

  #onAck(payload: Uint8Array): void {
    const ack = parsePayload(payload, ackSchema);
    if (!ack || ack.epoch !== this.vessel.epoch || ack.seq <= this.stats.acked) return;
    for (let s = this.stats.acked + 1; s <= ack.seq; s++) this.#log.delete(s);
    this.stats.acked = ack.seq;
    this.#ackMovedAt = performance.now();
    if (this.#nextToSend <= ack.seq) this.#nextToSend = ack.seq + 1;
    this.#waiters = this.#waiters.filter((w) => {
      if (w.seq > ack.seq) return true;
      w.resolve();
      return false;
    });
  }

  /**
   * SUBSCRIBEs, and again a second later for any filter the broker refused, as sync/session.ts
   * does: NATS refuses a QoS 1 subscription when it cannot create its JetStream consumer in time,
   * which passes.
   */
  #subscribe(filters: string[]): void {
    if (this.#closed || !this.client.connected) return;
    this.client.subscribe(filters, { qos: 1 }, (err, granted) => {
      const refused = err ? filters : (granted ?? []).filter((g) => g.qos > 2).map((g) => g.topic);
      if (refused.length) setTimeout(() => this.#subscribe(refused), 1_000);
    });
  }

  /** Re-sends from the ack when it has stalled with changes unacknowledged. */
  #checkAck(): void {
    const now = performance.now();
    if (this.stats.acked >= this.stats.sent || now - this.#ackMovedAt < this.#o.ackTimeoutMs) {
      if (this.stats.acked >= this.stats.sent) this.#ackMovedAt = now;
      return;
    }
    this.#ackMovedAt = now;
    this.#nextToSend = this.stats.acked + 1;
    // As the publisher does: SUBSCRIBE again, so the broker hands over the retained ack (a live
    // ack may have been lost with the subscription that carried it).
    this.#subscribe([topicsOf(this.#o.id).ack]);
    this.#pump();
  }

  /** Answers a catch-up request from the unacknowledged log (seq `since` is exclusive). */
  #onCatchup(payload: Uint8Array): void {
    const req = parsePayload(payload, catchupRequestSchema);
    if (!req) return;
    const since = typeof req.since === "number" ? req.since : this.stats.acked;
    const limit = req.limit ?? 1_000;
    const page: Envelope[] = [];
    for (let s = since + 1; s <= this.stats.sent && page.length < limit; s++) {
      const e = this.#log.get(s);
      if (e && (!req.entity || e.entity === req.entity)) page.push(e);
    }
    const out = page.map((e, i): Envelope => ({
      ...e,
      type: "catchup",
      sequence: i,
      total: page.length,
    }));
    if (this.#o.linkMode === "frames") this.#publishFrames(out);
    else for (const e of out) this.client.publish(topicOf(e), JSON.stringify(e), { qos: 1 });
    this.stats.catchupServed += page.length;
  }

  /** Resolves once the shore has acknowledged `seq` (the current last seq by default). */
  acknowledged(seq = this.vessel.seq): Promise<void> {
    if (this.stats.acked >= seq) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ seq, resolve }));
  }

  /** Unacknowledged changes held. */
  get pending(): number {
    return this.#log.size;
  }

  /** Ends the connection cleanly (the Last Will is not sent). */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.client.endAsync(true).catch(() => {});
  }
}

/** A vessel's kind in the mix: its change rate (per second) and backlog at start. */
export interface PeerKind {
  name: "quiet" | "chatty" | "backlog";
  perSecond: number;
  backlog: number;
}

/** A fleet of peers with a driver that makes each kind's changes at its rate. */
export interface Fleet {
  peers: { peer: SimPeer; kind: PeerKind }[];
  /** Resolves once every peer is connected. */
  connected(): Promise<void>;
  /** Hands every peer its backlog and starts the rate driver (one timer, 100 ms ticks). */
  start(): void;
  /** Stops making changes. */
  stopDriving(): void;
  /** Resolves when every peer has `acked === seq` at the moment of the call or later. */
  allAcknowledged(): Promise<void>;
  close(): Promise<void>;
}

/** Builds a fleet: `kinds[i]` for peer `i`; `peerOptions(i)` gives its connection. */
export function createFleet(
  kinds: PeerKind[],
  peerOptions: (i: number) => PeerOptions,
): Fleet {
  const peers = kinds.map((kind, i) => ({ peer: new SimPeer(peerOptions(i)), kind }));
  let timer: ReturnType<typeof setInterval> | undefined;
  const owed = new Map<SimPeer, number>();
  return {
    peers,
    async connected() {
      while (!peers.every(({ peer }) => peer.client.connected)) {
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    start() {
      for (const { peer, kind } of peers) if (kind.backlog) peer.change(kind.backlog);
      // Quiet vessels start at a random phase so the fleet does not tick in step.
      for (const { peer } of peers) owed.set(peer, Math.random());
      timer = setInterval(() => {
        for (const { peer, kind } of peers) {
          const due = owed.get(peer)! + kind.perSecond / 10;
          const whole = Math.floor(due);
          owed.set(peer, due - whole);
          if (whole) peer.change(whole);
        }
      }, 100);
    },
    stopDriving() {
      clearInterval(timer);
    },
    async allAcknowledged() {
      await Promise.all(peers.map(({ peer }) => peer.acknowledged()));
    },
    async close() {
      clearInterval(timer);
      await Promise.all(peers.map(({ peer }) => peer.close()));
    },
  };
}
