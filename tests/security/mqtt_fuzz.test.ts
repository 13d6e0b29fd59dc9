/**
 * Property-based fuzzing of the shore's MQTT input (fast-check): random and mutated topics and
 * payloads, each malformed by construction, published at a real shore ingest through a real
 * broker.
 *
 * Properties: nothing is applied (shore_inbox and shore_records stay empty but for one valid
 * sentinel sent last), nothing is fatal (the sentinel is applied after all of them, on the
 * same session), and `bosun_shore_malformed_total` rises by exactly the number sent.
 *
 * `FUZZ_RUNS` (default 1000) sets the number of messages; `FUZZ_SEED` (printed at every run)
 * regenerates the same ones. On a failure the messages the count disagrees about are listed.
 */
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import { startShoreRig } from "../support/shore-rig.ts";
import { ENTITIES, type Entity } from "../../core/entities.ts";
import type { Envelope } from "../../sync/protocol.ts";
import { classify, MAX_PAYLOAD_BYTES } from "../../sync/shore/classify.ts";
import { SimulatedVessel, topicOf, valueOf } from "../support/fleet.ts";
import { waitUntil } from "../support/wait.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 1000);
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));

const VESSEL = "fuzz-v1";
const vessel = new SimulatedVessel(VESSEL);
/** One valid envelope per entity: the material every mutation starts from. */
const BASE: Record<Entity, Envelope> = Object.fromEntries(
  ENTITIES.map((e) => {
    const env = vessel.create(e === "alerts" ? "alerts" : "work_orders");
    if (e !== "alerts" && e !== "work_orders") {
      const now = new Date().toISOString();
      const fields: Record<Entity, Record<string, unknown>> = {
        work_orders: {},
        alerts: {},
        equipment: { name: "Main engine" },
        crew: { name: "A. Sailor", onboard: true },
        maintenance_schedules: { equipmentId: "eq-1", task: "Filter", intervalHours: 250 },
      };
      env.entity = e;
      env.data = {
        id: crypto.randomUUID(),
        version: 1,
        createdAt: now,
        updatedAt: now,
        ...fields[e],
      };
    }
    return [e, env];
  }),
) as Record<Entity, Envelope>;

const ENVELOPE_FIELDS = [
  "type",
  "entity",
  "operation",
  "data",
  "timestamp",
  "messageId",
  "vesselId",
  "epoch",
  "seq",
  "sequence",
  "total",
];

// ---- mutations that make a valid envelope invalid, each on its own --------------------------

type Json = Record<string, unknown>;
const set = (field: string, values: unknown[]) =>
  fc.constantFrom(...values).map((v) => (e: Json) => ({ ...e, [field]: v }));
const setData = (field: string, values: unknown[]) =>
  fc.constantFrom(...values).map((v) => (e: Json) => ({
    ...e,
    data: { ...(e.data as Json), [field]: v },
  }));

const breaking: fc.Arbitrary<(e: Json) => Json> = fc.oneof(
  set("type", ["data-change", "", 1, null, "CATCHUP", ["catchup"]]),
  set("entity", ["cargo", "", "work_orders/#", "+", null, 3, "__proto__"]),
  set("operation", ["upsert", "", null, 0, "DELETE"]),
  set("data", ["x", [], null, 1, true]),
  set("timestamp", ["2024-13-01T00:00:00Z", "", 0, "now", "2024-01-01"]),
  set("messageId", ["x", "", 1, null, "{00000000-0000-0000-0000-000000000000}"]),
  set("vesselId", ["fuzz-v2", "bad.id", "", 1, null, "+", "fuzz-v1/x"]),
  set("epoch", ["x", null, "", 7]),
  set("seq", [0, -1, 1.5, "1", null, 2 ** 53, 1e308, [], {}]),
  set("sequence", [-1, 1.5, "0", null]),
  set("total", [0, -1, 2.5, "1"]),
  setData("id", ["x", "", 1, null]),
  setData("version", [0, -1, 1.5, "1", 2 ** 31, null]),
  setData("createdAt", ["yesterday", "", 0]),
  setData("unknownField", [1, "x", null]),
  setData("__proto__", [{ polluted: true }]),
  fc.constantFrom(...ENVELOPE_FIELDS.slice(0, 9)).map((f) => (e: Json) => {
    const copy = { ...e };
    delete copy[f];
    return copy;
  }),
  fc.tuple(
    fc.string({ minLength: 1, maxLength: 12 }).filter((k) => !ENVELOPE_FIELDS.includes(k)),
    fc.jsonValue(),
  ).map(([k, v]) => (e: Json) => ({ ...e, [k]: v })),
  fc.constantFrom("__proto__", "constructor").map((k) => (e: Json) => ({
    ...e,
    [k]: { polluted: true },
  })),
);

/** JSON text that keeps an own `__proto__` key (JSON.stringify of a spread would too). */
const encode = (obj: Json) => new TextEncoder().encode(JSON.stringify(obj));

// ---- topics and payloads -------------------------------------------------------------------

interface Message {
  topic: string;
  payload: Uint8Array;
  why: string;
}

const entity = fc.constantFrom(...ENTITIES);
const text = (s: string) => new TextEncoder().encode(s);

/** A payload that no data or catch-up topic accepts. */
const badEnvelopePayload = (e: Entity): fc.Arbitrary<[Uint8Array, string]> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.array(breaking, { minLength: 1, maxLength: 3 }).map((fs) => {
        const obj = fs.reduce((acc, f) => f(acc), { ...BASE[e] } as Json);
        return [encode(obj), "mutated envelope"] as [Uint8Array, string];
      }),
    },
    {
      weight: 2,
      arbitrary: fc.nat().map((n) => {
        const full = JSON.stringify(BASE[e]);
        return [text(full.slice(0, n % full.length)), "truncated"] as [Uint8Array, string];
      }),
    },
    {
      weight: 1,
      arbitrary: fc.uint8Array({ maxLength: 64 }).map((
        b,
      ): [Uint8Array, string] => [b, "random bytes"]),
    },
    {
      weight: 1,
      arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v): [Uint8Array, string] => [
        text(JSON.stringify(v) ?? "null"),
        "random JSON",
      ]),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<[Uint8Array, string]>(
        [new Uint8Array([0xff, 0xfe, 0x7b, 0x7d]), "invalid UTF-8"],
        [text('{"a":' + "[".repeat(50_000) + "]".repeat(50_000) + "}"), "deep nesting"],
        [text(JSON.stringify({ ...BASE[e], type: "x" }) + "garbage"), "trailing garbage"],
        [new Uint8Array(0), "empty"],
      ),
    },
  );

const message: fc.Arbitrary<Message> = fc.oneof(
  // The vessel's own data and catch-up topics, with a broken payload.
  {
    weight: 40,
    arbitrary: fc.tuple(entity, fc.boolean()).chain(([e, catchup]) =>
      badEnvelopePayload(e).map(([payload, why]) => ({
        topic: `vessel/${VESSEL}/sync/${catchup ? "catchup/" : ""}${e}`,
        payload,
        why,
      }))
    ),
  },
  // A valid envelope on the wrong topic.
  {
    weight: 10,
    arbitrary: fc.tuple(
      entity,
      fc.oneof(
        fc.constantFrom(
          "vessel/bad.id/sync/work_orders",
          `vessel/${"x".repeat(65)}/sync/alerts`,
          "vessel/é/sync/crew",
          "vessel//sync/work_orders",
          `vessel/${VESSEL}/sync/`,
          `vessel/${VESSEL}/sync/system`,
          `vessel/${VESSEL}/sync/work_orders/extra`,
          `vessel/${VESSEL}/sync/catchup/request/x`,
          `vessel/${VESSEL}/sync/catchup`,
          `vessel/${VESSEL}/sync/catchup/cargo`,
          `vessel/${VESSEL}/sync/system/status/x`,
          "vessel/fuzz-v2/sync/work_orders",
        ),
        fc.stringMatching(/^[a-z_]{1,20}$/)
          .filter((w) => !["ack", "conflicts", "catchup", ...ENTITIES].includes(w))
          .map((w) => `vessel/${VESSEL}/sync/${w}`),
      ),
    ).map(([e, topic]) => ({ topic, payload: encode(BASE[e] as unknown as Json), why: "topic" })),
  },
  // The status topic with anything but {"status": "online"|"offline"}.
  {
    weight: 5,
    arbitrary: fc.oneof(
      fc.constantFrom(
        '{"status":"sinking"}',
        '{"status":null}',
        "{}",
        "online",
        '{"status":"online"',
        "[]",
        '{"status":"online","timestamp":"noon"}',
      ),
      fc.string({ minLength: 1, maxLength: 40 }).filter((s) => !s.includes('"status"')),
    ).map((s) => ({
      topic: `vessel/${VESSEL}/sync/system/status`,
      payload: text(s),
      why: "status",
    })),
  },
  // Over the size cap.
  {
    weight: 1,
    arbitrary: fc.constant(null).map(() => ({
      topic: `vessel/${VESSEL}/sync/work_orders`,
      payload: text(JSON.stringify({ ...BASE.work_orders, pad: "x".repeat(MAX_PAYLOAD_BYTES) })),
      why: "oversized",
    })),
  },
);

Deno.test(`shore drops ${RUNS} fuzzed MQTT messages, applies none, counts every one`, async () => {
  console.log(`mqtt fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);
  const messages = fc.sample(message, { seed: SEED, numRuns: RUNS });
  await using rig = await startShoreRig();
  const { db, shore, pub } = rig;
  const malformed = async () =>
    (await shore.metrics.shore.malformed.get()).values.reduce((n, v) => n + v.value, 0);
  // In slices, at QoS 1 on one connection: the shore receives them in this order.
  for (let i = 0; i < messages.length; i += 200) {
    await Promise.all(
      messages.slice(i, i + 200).map((m) =>
        pub.publishAsync(m.topic, m.payload as unknown as string, { qos: 1 })
      ),
    );
  }
  const sentinel = new SimulatedVessel("fuzz-sentinel").create();
  await pub.publishAsync(topicOf(sentinel), JSON.stringify(sentinel), { qos: 1 });
  await waitUntil(
    async () => await valueOf(shore.metrics.shore.applied) >= 1,
    "the sentinel is applied",
  );

  const counted = await malformed();
  if (counted !== messages.length) {
    const notMalformed = messages.filter((m) => classify(m.topic, m.payload).kind !== "malformed")
      .slice(0, 5).map((m) => `${m.why} ${m.topic} ${new TextDecoder().decode(m.payload)}`);
    assert.fail(
      `sent ${messages.length}, counted ${counted} (FUZZ_SEED=${SEED}); ` +
        `first not malformed:\n${notMalformed.join("\n")}`,
    );
  }
  assert.equal(await valueOf(shore.metrics.shore.applied), 1, "a fuzzed message was applied");
  const [inbox] = await db.sql<{ n: number }[]>`select count(*)::int as n from shore_inbox`;
  const [records] = await db.sql<{ n: number }[]>`
    select count(*)::int as n from shore_records where vessel_id <> 'fuzz-sentinel'`;
  assert.equal(records?.n, 0, "a fuzzed record reached shore_records");
  assert.ok((inbox?.n ?? 0) <= 1, "a fuzzed message reached shore_inbox");
  assert.ok(shore.session.connected, "the shore lost its session");
  assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype polluted");

  const byReason = (await shore.metrics.shore.malformed.get()).values
    .map((v) => `${v.labels.reason}:${v.value}`).sort().join(" ");
  console.log(
    `mqtt fuzz: ${messages.length} sent, ${counted} counted malformed, 0 applied, ` +
      `0 failures; ${byReason}`,
  );
});
