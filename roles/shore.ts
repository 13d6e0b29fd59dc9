/**
 * The shore role: ingests the fleet's changes exactly once and serves what was applied.
 */
import { fleetSummary, lastAckAt, listVessels, vesselProgress } from "../db/shore/fleet.ts";
import { LinkState } from "../sync/link-state.ts";
import { vesselRoutes } from "../routes/vessels.ts";
import { shoreRecordRoutes } from "../routes/shore-records.ts";
import { conflictRoutes } from "../routes/conflicts.ts";
import { createShoreWrites } from "../db/shore/writes.ts";
import { Hlc } from "../core/hlc.ts";
import { createSession } from "../sync/session.ts";
import { createShore } from "../sync/shore/ingest.ts";
import { DOWN_ACK_FILTER, DOWN_CATCHUP_FILTER, FLEET_FILTER } from "../sync/protocol.ts";
import { createDownPublisher } from "../sync/shore/down.ts";
import { startShoreHousekeeping } from "../sync/shore/housekeeping.ts";
import { downHealth, refreshDownMetrics } from "../sync/shore/down-report.ts";
import type { Role, RoleDeps } from "./role.ts";
import { DEFAULT_BACKOFF } from "../sync/backoff.ts";

/** Builds the shore role; the session connects on `start()`. */
export function createShoreRole({ config, sql, log, metrics, tls }: RoleDeps): Role {
  // "bosun.shore-<VESSEL_ID>": no VESSEL_ID holds a dot, so this never equals a vessel's
  // "bosun-<VESSEL_ID>" (a vessel named "shore-a" would clash with "bosun-shore-a").
  const session = config.localMode
    ? createSession({
      mqtt: config.mqtt,
      clientId: `bosun.shore-${config.vesselId}`,
      // In a shared group the group is the durable consumer: a member's session must end
      // with its connection, or the broker keeps queueing its share of the fleet's messages
      // for it while it is down (Mosquitto 2.0 does, measured) instead of handing them to
      // the members that are up. A lone shore keeps a persistent session (7 days).
      sessionExpiryS: config.shoreSharedGroup ? 0 : undefined,
      // One client, next to its broker: after a broker restart every vessel's changes wait
      // for it, so it retries within seconds, not the vessels' minute (a fleet's reconnects
      // need spreading, one shore's do not). Seen with the minute: the shore back 44 s after
      // the broker, the vessel after 4.5 s (bench/outage.ts).
      backoff: { ...DEFAULT_BACKOFF, ceilingMs: 5_000 },
      tls,
      log: log.child({ module: "mqtt" }),
      metrics,
    })
    : undefined;
  const shore = session && createShore({
    sql,
    session,
    log: log.child({ module: "shore" }),
    metrics: metrics.shore,
    sharedGroup: config.shoreSharedGroup,
  });

  // Changes made ashore, to each vessel (sync/shore/down.ts), on the same session.
  const down = session && createDownPublisher({
    sql,
    session,
    log: log.child({ module: "down" }),
    ackTimeoutMs: config.ackTimeoutS * 1000,
    linkMode: config.linkMode,
    metrics: metrics.shore,
  });

  let stopHousekeeping = () => {};
  const link = new LinkState();
  if (session) link.watch(session);

  const writes = createShoreWrites({
    sql,
    hlc: new Hlc({ origin: "shore" }),
    onCommit: () => down?.wake(),
  });
  const api = [
    vesselRoutes({ sql }),
    conflictRoutes({ sql }),
    shoreRecordRoutes({ sql, writes }),
  ];

  return {
    api,
    async report() {
      const downStreams = await downHealth(sql);
      return {
        status: !session ? "disabled" : session.connected ? "connected" : "disconnected",
        disconnectedSince: session ? link.downSince?.toISOString() ?? null : null,
        lastAckAt: await lastAckAt(sql),
        fleet: await fleetSummary(sql),
        // Received from the fleet and not yet written. What the shore publishes (changes
        // made ashore) is in `down`; its unacknowledged ones count here too.
        queuedMessages: shore?.buffered ?? 0,
        unackedMessages: downStreams.unacked,
        oldestUnackedAgeSeconds: downStreams.oldestUnackedAgeSeconds,
        lastPublishedSeq: 0,
        lastAckedSeq: 0,
        reconnectAttempts: session?.reconnectAttempts ?? 0,
        activeSubscriptions: session?.subscriptions.length ?? 0,
        subscriptions: session?.subscriptions ?? [],
        topics: [FLEET_FILTER, DOWN_ACK_FILTER, DOWN_CATCHUP_FILTER],
        qosLevel: 1,
        down: downStreams,
      };
    },
    async fleet() {
      const [vessels, progress] = await Promise.all([listVessels(sql), vesselProgress(sql)]);
      const lag = new Map(progress.map((p) => [p.vesselId, p.lag]));
      return vessels.map((v) => ({ ...v, lag: lag.get(v.vesselId) ?? 0 }));
    },
    async refresh() {
      metrics.mqttConnected.set(session?.connected ? 1 : 0);
      metrics.linkDown.set(session ? link.downSeconds() : 0);
      const progress = await vesselProgress(sql);
      metrics.shore.vesselAppliedSeq.reset();
      metrics.shore.vesselLag.reset();
      for (const p of progress) {
        metrics.shore.vesselAppliedSeq.set({ vessel: p.vesselId }, p.lastSeq);
        metrics.shore.vesselLag.set({ vessel: p.vesselId }, p.lag);
      }
      await refreshDownMetrics(sql, metrics.shore);
    },
    async start() {
      await shore?.start();
      await down?.start();
      // Both directions' rows past CATCHUP_RETENTION_DAYS, hourly.
      stopHousekeeping = startShoreHousekeeping({
        sql,
        log: log.child({ module: "housekeeping" }),
        retentionDays: config.catchupRetentionDays,
      });
    },
    async close() {
      stopHousekeeping();
      await down?.stop();
      await shore?.close();
      await session?.close();
    },
  };
}
