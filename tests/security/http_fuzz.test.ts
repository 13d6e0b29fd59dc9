/**
 * Property-based fuzzing of the records API (fast-check): random and mutated requests through
 * `app.request()` on a real PostgreSQL database.
 *
 * Properties, per request: never a 5xx; every 2xx write (POST, PATCH, DELETE) added exactly
 * one change row, for that record; every other answer added none; every error is the
 * contract's JSON. After the run, the app still serves a plain write.
 *
 * `FUZZ_RUNS` (default 1000) sets the number of requests, `FUZZ_SEED` (printed at every run)
 * replays one, and `FUZZ_PATH` (printed by fast-check on failure) narrows to the failing case.
 */
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.11.0";
import { ENTITIES, type Entity } from "../../core/entities.ts";
import { encodeCursor } from "../../db/paging.ts";
import { buildTestApp, TEST_TOKEN } from "../support/app.ts";
import { freshDatabase } from "../support/pg.ts";

const RUNS = Number(Deno.env.get("FUZZ_RUNS") ?? 1000);
const SEED = Number(Deno.env.get("FUZZ_SEED") ?? Math.floor(Math.random() * 2 ** 31));
const PATH = Deno.env.get("FUZZ_PATH");

/** A valid create body per entity, the starting point of every mutation. */
const VALID: Record<Entity, Record<string, unknown>> = {
  work_orders: { title: "Fix bilge pump", equipmentId: "eq-1", priority: 2, status: "open" },
  alerts: { equipmentId: "eq-1", severity: "warning", message: "Oil pressure low" },
  equipment: { name: "Main engine", runningHours: 100, location: "Engine room" },
  crew: { name: "A. Sailor", rank: "AB", onboard: true },
  maintenance_schedules: { equipmentId: "eq-1", task: "Change filter", intervalHours: 250 },
};

const FIELDS = [...new Set(Object.values(VALID).flatMap((r) => Object.keys(r)))].concat(
  ["description", "assignedTo", "dueAt", "acknowledged", "acknowledgedBy", "type", "role"],
  ["lastDoneAt", "nextDueAt", "id", "version", "createdAt", "updatedAt", "deleted_at"],
);
const PROTO_KEYS = ["__proto__", "constructor", "prototype", "toString", "hasOwnProperty"];

// ---- values --------------------------------------------------------------------------------

const oddChar = fc.oneof(
  fc.constantFrom("\u0000", "\ud800", "\udbff", "\udc00", "\udfff", "\u202e", "\ufeff", "\\"),
  fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
);
const hostileString = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: oddChar, maxLength: 30 }),
  fc.constantFrom(
    "",
    " ",
    "a\u0000b",
    "\ud83d",
    "x\udc00y",
    "'; drop table changes; --",
    "x".repeat(201),
    "x".repeat(10_001),
    "2024-02-30T00:00:00Z",
    "9999-12-31T23:59:59.999+14:00",
    "-271821-04-20T00:00:00.000Z",
    "open",
    "critical",
    crypto.randomUUID(),
  ),
);
const hostileNumber = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.constantFrom(-1, 0, 1, 5, 6, -0, 1.5, 2 ** 31, 2 ** 53, 2 ** 64, 1e308, -1e308, 5e-324),
);
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  hostileNumber,
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.oneof(hostileString, hostileNumber), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(hostileString, hostileNumber), {
    maxKeys: 3,
  }),
);

// ---- bodies --------------------------------------------------------------------------------

type Mutation =
  | { kind: "set"; field: string; value: unknown }
  | { kind: "drop"; field: string }
  | { kind: "proto"; key: string; value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("set" as const),
    field: fc.oneof(fc.constantFrom(...FIELDS), fc.string({ maxLength: 12 })),
    value: hostileValue,
  }),
  fc.record({ kind: fc.constant("drop" as const), field: fc.constantFrom(...FIELDS) }),
  fc.record({
    kind: fc.constant("proto" as const),
    key: fc.constantFrom(...PROTO_KEYS),
    value: fc.oneof(hostileValue, fc.constant({ polluted: true, isAdmin: true })),
  }),
);

/** JSON text of `base` with the mutations applied; prototype keys are spliced in as text. */
function mutatedJson(base: Record<string, unknown>, mutations: Mutation[]): string {
  const obj: Record<string, unknown> = { ...base };
  const protos: string[] = [];
  for (const m of mutations) {
    if (m.kind === "set") obj[m.field] = m.value;
    else if (m.kind === "drop") delete obj[m.field];
    else protos.push(`${JSON.stringify(m.key)}:${JSON.stringify(m.value) ?? "null"}`);
  }
  const text = JSON.stringify(obj);
  if (protos.length === 0) return text;
  return text === "{}" ? `{${protos.join(",")}}` : `{${protos.join(",")},${text.slice(1)}`;
}

type BodySpec =
  | { kind: "record"; mutations: Mutation[]; truncateAt?: number }
  | { kind: "json"; value: unknown }
  | { kind: "text"; text: string }
  | { kind: "deep"; depth: number }
  | { kind: "none" };

const bodySpec: fc.Arbitrary<BodySpec> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("record" as const),
      mutations: fc.oneof(
        { weight: 4, arbitrary: fc.constant<Mutation[]>([]) },
        { weight: 3, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }) },
      ),
      truncateAt: fc.option(fc.nat(200), { nil: undefined, freq: 8 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("json" as const), value: fc.jsonValue() }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("text" as const), text: hostileString }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("deep" as const),
      depth: fc.integer({ min: 100, max: 100_000 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "none" as const }) },
);

function bodyText(spec: BodySpec, entity: string): string | undefined {
  switch (spec.kind) {
    case "record": {
      const base = VALID[entity as Entity] ?? VALID.work_orders;
      const text = mutatedJson(base, spec.mutations);
      return spec.truncateAt === undefined ? text : text.slice(0, spec.truncateAt);
    }
    case "json":
      return JSON.stringify(spec.value) ?? "";
    case "text":
      return spec.text;
    case "deep":
      return '{"title":' + "[".repeat(spec.depth) + "]".repeat(spec.depth) + "}";
    case "none":
      return undefined;
  }
}

// ---- requests ------------------------------------------------------------------------------

interface RequestSpec {
  method: string;
  entity: string;
  /** An index into the ids created so far, or a literal id. */
  id: { existing: number } | { literal: string } | null;
  query: [string, string][];
  contentType: string | null;
  authorization: "valid" | string | null;
  ifMatch: { current: number } | string | null;
  body: BodySpec;
}

const requestSpec: fc.Arbitrary<RequestSpec> = fc.record({
  method: fc.oneof(
    { weight: 8, arbitrary: fc.constantFrom("POST", "PATCH", "GET", "DELETE") },
    { weight: 1, arbitrary: fc.constantFrom("PUT", "HEAD", "OPTIONS", "PROPFIND", "patch") },
  ),
  entity: fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(...ENTITIES) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        "nope",
        "__proto__",
        "constructor",
        "changes",
        "%2e%2e",
        "work_orders%00",
        "WORK_ORDERS",
        "alerts%2Fx",
      ),
    },
  ),
  id: fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    { weight: 6, arbitrary: fc.record({ existing: fc.nat() }) },
    {
      weight: 1,
      arbitrary: fc.record({
        literal: fc.oneof(
          fc.uuid(),
          fc.constantFrom("1", "-1", "not-a-uuid", "%00", "00000000-0000-0000-0000-000000000000"),
          fc.string({ maxLength: 40 }).map(encodeURIComponent),
        ),
      }),
    },
  ),
  query: fc.array(
    fc.tuple(
      fc.constantFrom("limit", "cursor", "limit", "cursor", "offset", "__proto__", "vesselId"),
      fc.oneof(
        fc.nat(1000).map(String),
        fc.constantFrom("-1", "0", "501", "1e3", "0x10", " 5", "5.5", "", "NaN"),
        fc.constantFrom(
          encodeCursor(new Date(0).toISOString(), crypto.randomUUID()),
          encodeCursor("2024-13-45T99:99:99.999Z", crypto.randomUUID()),
          btoa("2024-01-01T00:00:00.000Z|x' or 1=1 --"),
          "!!!",
          "====",
        ),
        hostileString,
      ),
    ),
    { maxLength: 3 },
  ),
  contentType: fc.oneof(
    { weight: 8, arbitrary: fc.constant("application/json") },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        null,
        "application/json; charset=utf-8",
        "application/json; charset=utf-16",
        "APPLICATION/JSON",
        "application/vnd.api+json",
        "application/merge-patch+json",
        "application/jsonx",
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
        "",
        ";",
      ),
    },
  ),
  authorization: fc.oneof(
    { weight: 12, arbitrary: fc.constant("valid") },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        null,
        "Bearer",
        "Bearer nope-nope-nope-nope",
        `Basic ${TEST_TOKEN}`,
      ),
    },
  ),
  ifMatch: fc.oneof(
    { weight: 4, arbitrary: fc.constant(null) },
    { weight: 3, arbitrary: fc.record({ current: fc.integer({ min: -1, max: 1 }) }) },
    {
      weight: 2,
      arbitrary: fc.oneof(
        fc.constantFrom(
          "*",
          '""',
          '"-1"',
          '"0"',
          '"999999999"',
          '"99999999999"',
          'W/"1"',
          '"1", "2"',
          "1",
          '"1',
          "\u0000",
        ),
        fc.string({ maxLength: 12 }),
      ),
    },
  ),
  body: bodySpec,
});

Deno.test(`records API survives ${RUNS} fuzzed requests with one change per 2xx write`, async () => {
  console.log(`http fuzz: FUZZ_SEED=${SEED} FUZZ_RUNS=${RUNS}`);
  await using db = await freshDatabase();
  const app = await buildTestApp({ sql: db.sql });
  const ids: { entity: string; id: string }[] = [];
  const countChanges = async () =>
    (await db.sql<{ n: number }[]>`select count(*)::int as n from changes`)[0]!.n;
  const stats = { cases: 0, writes2xx: 0, byStatus: new Map<number, number>() };

  // A few records to aim at from the start.
  for (const entity of ENTITIES) {
    const res = await app.request(`/api/${entity}`, {
      method: "POST",
      headers: { Authorization: `Bearer ${TEST_TOKEN}`, "Content-Type": "application/json" },
      body: JSON.stringify(VALID[entity]),
    });
    assert.equal(res.status, 201);
    ids.push({ entity, id: (await res.json()).id });
  }

  const property = fc.asyncProperty(requestSpec, async (spec) => {
    let entity = spec.entity;
    let path = `/api/${entity}`;
    let target: string | undefined;
    const method = spec.method;
    let idSpec = spec.id;
    // Creates mostly go to the collection, updates and deletes mostly to a live record.
    if (method === "POST" && idSpec && "existing" in idSpec && idSpec.existing % 6 !== 0) {
      idSpec = null;
    }
    if ((method === "PATCH" || method === "DELETE") && idSpec === null && ids.length) {
      idSpec = { existing: stats.cases };
    }
    if (idSpec && "existing" in idSpec && ids.length) {
      const existing = idSpec.existing;
      const pick = ids[existing % ids.length]!;
      // Mostly aim at a record of the entity named; sometimes at another entity's record.
      if (existing % 5 !== 0 && (ENTITIES as readonly string[]).includes(entity)) {
        const same = ids.filter((r) => r.entity === entity);
        target = same[existing % same.length]?.id ?? pick.id;
      } else {
        target = pick.id;
        if (existing % 7 === 0) entity = pick.entity;
      }
      path = `/api/${entity}/${target}`;
    } else if (idSpec && "literal" in idSpec) {
      path = `/api/${entity}/${idSpec.literal}`;
    }
    if (spec.query.length) path += "?" + new URLSearchParams(spec.query).toString();

    const headers = new Headers();
    if (spec.authorization === "valid") headers.set("Authorization", `Bearer ${TEST_TOKEN}`);
    else if (spec.authorization !== null) headers.set("Authorization", spec.authorization);
    if (spec.contentType !== null) headers.set("Content-Type", spec.contentType);
    if (spec.ifMatch !== null) {
      if (typeof spec.ifMatch === "string") {
        try {
          headers.set("If-Match", spec.ifMatch);
        } catch {
          // Not a legal header value: a client cannot send it either.
        }
      } else if (target) {
        const [row] = await db.sql<{ version: number }[]>`
          select version from ${db.sql(entity as Entity)} where id = ${target}`.catch(() => []);
        headers.set("If-Match", `"${(row?.version ?? 1) + spec.ifMatch.current}"`);
      }
    }
    const body = method === "GET" || method === "HEAD" ? undefined : bodyText(spec.body, entity);

    const before = await countChanges();
    const res = await app.request(path, { method, headers, body });
    const text = await res.text();
    const after = await countChanges();
    const what = `${method} ${path} -> ${res.status} ${text.slice(0, 300)}`;
    stats.cases++;
    stats.byStatus.set(res.status, (stats.byStatus.get(res.status) ?? 0) + 1);

    assert.ok(res.status < 500, `server error: ${what}`);
    const isWrite = ["POST", "PATCH", "DELETE"].includes(method.toUpperCase());
    if (isWrite && res.status >= 200 && res.status < 300) {
      stats.writes2xx++;
      assert.equal(after - before, 1, `2xx write without exactly one change: ${what}`);
      const [last] = await db.sql<{ record_id: string; operation: string }[]>`
        select record_id, operation from changes order by id desc limit 1`;
      const id = res.status === 204 ? target : JSON.parse(text).id;
      assert.equal(last?.record_id, id, `change is for another record: ${what}`);
      if (method === "POST") ids.push({ entity, id });
      if (method === "DELETE") ids.splice(ids.findIndex((r) => r.id === id), 1);
    } else {
      assert.equal(after - before, 0, `a change without a 2xx write: ${what}`);
    }
    if (res.status >= 400 && method !== "HEAD") {
      const parsed = JSON.parse(text);
      assert.equal(typeof parsed.error?.code, "string", `not the error JSON: ${what}`);
    }
  });

  await fc.assert(property, { seed: SEED, numRuns: RUNS, path: PATH, endOnFailure: true });

  const alive = await app.request("/api/crew", {
    method: "POST",
    headers: { Authorization: `Bearer ${TEST_TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(VALID.crew),
  });
  assert.equal(alive.status, 201, "the app no longer serves a plain write");
  assert.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype polluted");
  const statuses = [...stats.byStatus].sort(([a], [b]) => a - b).map(([s, n]) => `${s}:${n}`);
  console.log(
    `http fuzz: ${stats.cases} cases, ${stats.writes2xx} 2xx writes, 0 failures; ` +
      `statuses ${statuses.join(" ")}`,
  );
  assert.ok(stats.writes2xx > 0, "no fuzzed write succeeded: the generator is too hostile");
});
