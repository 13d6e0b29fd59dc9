/**
 * Validation at every edge: configuration, path segments, topic names and filters, envelopes.
 */
import assert from "node:assert/strict";
import { ConfigError, parseConfig } from "../../config.ts";
import { envelopeSchema } from "../../sync/protocol.ts";
import { classify } from "../../sync/shore/classify.ts";
import { validateFilter, validateTopicName } from "../../sync/protocol.ts";
import { buildTestApp, TEST_TOKEN } from "../support/app.ts";
import { freshDatabase } from "../support/pg.ts";

const HOSTILE_IDS = [
  "v/1",
  "v+",
  "#",
  "+",
  "v 1",
  "",
  "x".repeat(65),
  "v\u0000",
  "v\n1",
  "vé",
  "../v1",
  "$SYS",
  "v.1",
];

Deno.test("VESSEL_ID refuses anything that could escape or widen its topic level", () => {
  for (const id of HOSTILE_IDS.filter((id) => id !== "")) {
    assert.throws(() => parseConfig({ VESSEL_ID: id }), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /"VESSEL_ID"/);
      return true;
    }, JSON.stringify(id));
  }
  assert.equal(parseConfig({ VESSEL_ID: "MV_Nordic-7" }).vesselId, "MV_Nordic-7");
});

Deno.test("API_TOKENS refuses tokens a bearer header could never carry", () => {
  for (const token of ["has space in it!!", 'quote"0123456789abc', "comma-less;0123456789"]) {
    assert.throws(() => parseConfig({ API_TOKENS: token }), /"API_TOKENS"/);
  }
  assert.throws(() => parseConfig({ API_TOKENS: "short" }), /at least 16/);
  assert.deepEqual(
    parseConfig({ API_TOKENS: "abc.DEF_123~+/-xyz==, second-token-0123456" })
      .apiTokens,
    ["abc.DEF_123~+/-xyz==", "second-token-0123456"],
  );
});

Deno.test("entity names and ids in paths are checked before any query", async () => {
  await using db = await freshDatabase();
  const app = await buildTestApp({ sql: db.sql });
  const headers = { Authorization: `Bearer ${TEST_TOKEN}`, "Content-Type": "application/json" };
  for (
    const entity of [
      "__proto__",
      "constructor",
      "toString",
      "changes",
      "vessel_state",
      "WORK_ORDERS",
      "work_orders%00",
    ]
  ) {
    const res = await app.request(`/api/${entity}`, { headers });
    assert.equal(res.status, 404, entity);
    assert.equal((await res.json()).error.code, "unknown_entity");
    const post = await app.request(`/api/${entity}`, { method: "POST", headers, body: "{}" });
    assert.equal(post.status, 404, `POST ${entity}`);
  }
  for (
    const id of ["1", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "' or 1=1 --", "%00"]
  ) {
    for (const method of ["GET", "PATCH", "DELETE"]) {
      const res = await app.request(`/api/work_orders/${encodeURIComponent(id)}`, {
        method,
        headers,
        body: method === "PATCH" ? '{"title":"x"}' : undefined,
      });
      assert.equal(res.status, 400, `${method} ${id}`);
      assert.equal((await res.json()).error.code, "invalid_id");
    }
  }
  const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from changes`;
  assert.equal(row?.n, 0);
});

Deno.test("topic names hold no wildcard and filters only whole-level wildcards", () => {
  for (const topic of ["", "a/+/b", "a/#", "a\u0000b", "#", "+"]) {
    assert.throws(() => validateTopicName(topic), JSON.stringify(topic));
  }
  validateTopicName("vessel/v1/sync/work_orders");
  for (const filter of ["", "a/b#", "a/#/b", "a+/b", "a/\u0000", "x".repeat(65_536)]) {
    assert.throws(() => validateFilter(filter), JSON.stringify(filter).slice(0, 40));
  }
  for (const filter of ["vessel/+/sync/#", "#", "+/+", "$share/g/vessel/+/sync/#"]) {
    validateFilter(filter);
  }
});

Deno.test("the shore's envelope schema is strict about every field", () => {
  const good = {
    type: "data_change",
    entity: "work_orders",
    operation: "create",
    data: { id: crypto.randomUUID() },
    timestamp: new Date().toISOString(),
    messageId: crypto.randomUUID(),
    vesselId: "v1",
    epoch: crypto.randomUUID(),
    seq: 1,
  };
  assert.ok(envelopeSchema.safeParse(good).success);
  const bad: Record<string, unknown>[] = [
    { ...good, extra: 1 },
    { ...good, entity: "work_orders/#" },
    { ...good, entity: "+" },
    { ...good, entity: "__proto__" },
    { ...good, vesselId: "v/2" },
    { ...good, vesselId: "+" },
    { ...good, seq: 0 },
    { ...good, seq: 1.5 },
    { ...good, seq: 2 ** 53 },
    { ...good, seq: "1" },
    { ...good, messageId: "x" },
    { ...good, epoch: null },
    { ...good, timestamp: "yesterday" },
    { ...good, data: [] },
    { ...good, type: "catchup", sequence: -1 },
    JSON.parse(`{"__proto__": {"polluted": true}, ${JSON.stringify(good).slice(1)}`),
  ];
  for (const envelope of bad) {
    assert.equal(envelopeSchema.safeParse(envelope).success, false, JSON.stringify(envelope));
  }
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

Deno.test("the shore refuses a record holding a __proto__ key instead of dropping the key", () => {
  const now = new Date().toISOString();
  const data = `{"id":"${crypto.randomUUID()}","version":1,"createdAt":"${now}",` +
    `"updatedAt":"${now}","name":"A. Sailor","__proto__":{"isAdmin":true}}`;
  const envelope = `{"type":"data_change","entity":"crew","operation":"create","data":${data},` +
    `"timestamp":"${now}","messageId":"${crypto.randomUUID()}","vesselId":"v1",` +
    `"epoch":"${crypto.randomUUID()}","seq":1}`;
  const result = classify("vessel/v1/sync/crew", new TextEncoder().encode(envelope));
  assert.equal(result.kind, "malformed");
  assert.equal(result.kind === "malformed" && result.reason, "invalid_record");
  // The same record without the key is applied.
  const clean = envelope.replace(',"__proto__":{"isAdmin":true}', "");
  assert.equal(classify("vessel/v1/sync/crew", new TextEncoder().encode(clean)).kind, "envelope");
});
