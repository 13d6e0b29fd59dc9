/**
 * The vessel role: the records API over the change log, and the sync engine that forwards
 * every change to shore (unless `LOCAL_MODE=false`).
 */
import { OutboxGate } from "../core/outbox-gate.ts";
import { isDatabaseUnavailable } from "../core/errors.ts";
import { countPending, outboxHealth, outboxStats } from "../db/vessel/outbox.ts";
import { downInboxFigures } from "../db/vessel/down-inbox.ts";
import { countConflicts } from "../db/conflicts.ts";
import { createRecordStore } from "../db/vessel/records.ts";
import { recordRoutes } from "../routes/records.ts";
import { conflictRoutes } from "../routes/conflicts.ts";
import { Hlc } from "../core/hlc.ts";
import { catchupRoutes } from "../routes/catchup.ts";
import { ENTITIES } from "../core/entities.ts";
import { topicsOf } from "../sync/protocol.ts";
import { createVesselEngine, type VesselEngineOptions } from "../sync/vessel/engine.ts";
import { LinkState } from "../sync/link-state.ts";
import type { Role, RoleDeps } from "./role.ts";

/** Options for {@linkcode createVesselRole}: tests pass engine overrides. */
export interface VesselRoleOptions extends RoleDeps {
  engine?: Partial<Omit<VesselEngineOptions, "sql" | "config" | "gate" | "metrics" | "log">>;
}

/** The vessel role and what tests reach into. */
export interface VesselRole extends Role {
  gate: OutboxGate;
  engine?: ReturnType<typeof createVesselEngine>;
}

/** Builds the vessel role; the outbox bound is seeded from the database. */
export async function createVesselRole(options: VesselRoleOptions): Promise<VesselRole> {
  const { config, sql, log, metrics, tls } = options;
  const gate = new OutboxGate(config.outboxMaxPending);
  try {
    gate.reset(await countPending(sql));
  } catch (err) {
    // Gone again since it was opened: writes answer 503 until it is back, and the engine
    // re-seeds the bound from the database every minute.
    if (!isDatabaseUnavailable(err)) throw err;
    log.warn("Outbox bound not seeded: database unreachable", { error: err });
  }
  // The vessel's clock for two-way sync: every write on board takes its stamp from it.
  const hlc = new Hlc({ origin: "vessel" });
  const records = createRecordStore({ sql, gate, hlc });
  // Started after the port is bound, without waiting for the broker: an unreachable broker
  // never delays start-up or refuses writes.
  const engine = config.localMode
    ? createVesselEngine({ sql, config, gate, metrics, log, tls, hlc, ...options.engine })
    : undefined;
  const topics = topicsOf(config.vesselId);
  const session = () => engine?.started ? engine.session : undefined;
  const link = new LinkState();

  /** The shore's stream to this vessel, as `/health` shows it (`down`). */
  async function downReport() {
    const [f, conflicts] = await Promise.all([downInboxFigures(sql), countConflicts(sql)]);
    return {
      epoch: f.epoch,
      lastAppliedSeq: f.lastSeq,
      applied: f.applied,
      waiting: f.waiting,
      lastReceivedAt: f.lastReceivedAt,
      dropped: engine?.down?.dropped ?? 0,
      conflicts,
    };
  }

  return {
    gate,
    engine,
    api: [conflictRoutes({ sql }), recordRoutes({ records })],
    catchup: engine && catchupRoutes({ catchup: engine.catchup }),
    async report() {
      const s = session();
      return {
        status: !engine ? "disabled" : s?.connected ? "connected" : "disconnected",
        disconnectedSince: engine ? link.downSince?.toISOString() ?? null : null,
        ...outboxHealth(await outboxStats(sql)),
        reconnectAttempts: s?.reconnectAttempts ?? 0,
        activeSubscriptions: s?.connected ? s.subscriptions.length : 0,
        topics: !engine
          ? []
          : config.linkMode === "frames"
          ? [topics.frames, topics.status]
          : [...ENTITIES.map((e) => topics.data(e)), topics.status],
        qosLevel: 1,
        down: await downReport(),
      };
    },
    async refresh() {
      metrics.mqttConnected.set(session()?.connected ? 1 : 0);
      const s = await outboxStats(sql);
      metrics.queueDepth.set(s.queued);
      metrics.unacked.set(s.unacked);
      metrics.lastAckedSeq.set(s.lastAckedSeq);
      metrics.oldestUnackedAge.set(s.oldestUnackedAgeSeconds ?? 0);
      metrics.linkDown.set(engine ? link.downSeconds() : 0);
      const down = await downInboxFigures(sql);
      metrics.down.appliedSeq.set(down.lastSeq);
      metrics.down.waiting.set(down.waiting);
    },
    start() {
      engine?.start();
      if (engine) link.watch(engine.session);
      return Promise.resolve();
    },
    async close() {
      await engine?.stop();
    },
  };
}
