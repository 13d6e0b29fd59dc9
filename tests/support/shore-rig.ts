/**
 * The set-up most shore tests share: a fresh database, a broker of the test's own, a shore
 * ingest on both and a raw publisher, torn down together in reverse order.
 */
import type mqtt from "mqtt";
import { freshDatabase, type TestDatabase } from "./pg.ts";
import { type Mosquitto, startMosquitto } from "./mosquitto.ts";
import { rawClient, startShore, type TestShore } from "./fleet.ts";

/** What {@linkcode startShoreRig} started. */
export interface ShoreRig {
  db: TestDatabase;
  broker: Mosquitto;
  shore: TestShore;
  /** A raw MQTT 5 client for hand-made publishes. */
  pub: mqtt.MqttClient;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts the rig; `options` go to {@linkcode startShore}. */
export async function startShoreRig(
  options: Parameters<typeof startShore>[2] = {},
): Promise<ShoreRig> {
  const stack = new AsyncDisposableStack();
  try {
    const db = stack.use(await freshDatabase());
    const broker = stack.use(await startMosquitto());
    const shore = await startShore(broker.url, db.sql, options);
    stack.defer(() => shore.close());
    const pub = await rawClient(broker.url);
    stack.defer(async () => void await pub.endAsync());
    const rest = stack.move();
    return { db, broker, shore, pub, [Symbol.asyncDispose]: () => rest.disposeAsync() };
  } catch (err) {
    await stack.disposeAsync();
    throw err;
  }
}
