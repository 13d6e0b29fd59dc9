import assert from "node:assert/strict";
import { start } from "../../main.ts";
import { parseConfig } from "../../config.ts";
import { silentLogger } from "../../core/log.ts";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { waitUntil } from "../support/wait.ts";
import { check } from "../support/json-schema.ts";

const TOKEN = "openapi-test-token-0123456789";
const METHODS = ["post", "get", "patch", "delete"] as const;

type Json = Record<string, unknown>;
interface Example {
  value: unknown;
}
interface Param {
  name: string;
  in: "path" | "query" | "header";
  example?: string;
  examples?: Record<string, Example>;
}
interface Content {
  schema: Json;
  examples?: Record<string, Example>;
}
interface Operation {
  parameters?: Param[];
  requestBody?: { content: Record<string, Content> };
  responses: Record<string, { content?: Record<string, Content> }>;
}

/**
 * Sends every named request example of `doc` to the gateway at `base`, in document order
 * (creates before reads, changes and deletes), and checks each answer's status against the
 * response that holds the example of the same name (or the one 2xx response) and its body
 * against that response's schema. Returns how many requests it sent.
 */
async function replay(doc: Json, base: string, t: Deno.TestContext): Promise<number> {
  let sent = 0;
  const paths = doc.paths as Record<string, Partial<Record<string, Operation>>>;
  for (const [path, item] of Object.entries(paths)) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const names = new Set<string>();
      for (const p of op.parameters ?? []) for (const n in p.examples ?? {}) names.add(n);
      const body = op.requestBody?.content["application/json"];
      for (const n in body?.examples ?? {}) names.add(n);
      for (const r of Object.values(op.responses)) {
        for (const c of Object.values(r.content ?? {})) {
          for (const [n, ex] of Object.entries(c.examples ?? {})) {
            names.add(n);
            // The documented example itself holds to its schema.
            assert.deepEqual(check(ex.value, c.schema, doc), [], `${method} ${path} example ${n}`);
          }
        }
      }
      for (const name of names) {
        await t.step(`${method.toUpperCase()} ${path} (${name})`, async () => {
          let url = path;
          const query = new URLSearchParams();
          const headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` };
          for (const p of op.parameters ?? []) {
            const v = p.examples?.[name]?.value ?? (p.in === "path" ? p.example : undefined);
            if (v === undefined) continue;
            if (p.in === "path") url = url.replace(`{${p.name}}`, String(v));
            else if (p.in === "query") query.set(p.name, String(v));
            else headers[p.name] = String(v);
          }
          const example = body?.examples?.[name];
          if (example) headers["content-type"] = "application/json";
          const holding = Object.entries(op.responses).filter(([, r]) =>
            Object.values(r.content ?? {}).some((c) => c.examples?.[name])
          );
          const success = Object.keys(op.responses).filter((s) => s.startsWith("2"));
          const expected = holding.length === 1 ? holding[0]![0] : success[0]!;
          assert.ok(holding.length === 1 || success.length === 1, `${name}: one expected status`);
          const res = await fetch(`${base}${url}${query.size ? `?${query}` : ""}`, {
            method: method.toUpperCase(),
            headers,
            body: example ? JSON.stringify(example.value) : undefined,
          });
          sent++;
          const text = await res.text();
          assert.equal(String(res.status), expected, `${method} ${url}?${query}: ${text}`);
          const [type, content] = Object.entries(op.responses[expected]!.content ?? {})[0] ?? [];
          if (!content) return assert.equal(text, "", "no body documented, none sent");
          const value = type === "application/json" ? JSON.parse(text) : text;
          assert.deepEqual(check(value, content.schema, doc), [], `${method} ${url}: ${text}`);
        });
      }
    }
  }
  return sent;
}

async function gateway(env: Record<string, string>) {
  const db = await freshDatabase();
  const broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-openapi-" });
  const gw = await start(
    parseConfig({
      DATABASE_URL: db.url,
      MQTT_BROKER_URL: broker.url,
      HOST: "127.0.0.1",
      PORT: "0",
      API_TOKENS: TOKEN,
      DATA_DIR: dataDir,
      ...env,
    }),
    silentLogger,
  );
  const base = `http://127.0.0.1:${gw.port}`;
  await waitUntil(
    async () => (await (await fetch(`${base}/health`)).json()).status === "connected",
    "the gateway connects to the broker",
  );
  return {
    base,
    async [Symbol.asyncDispose]() {
      await gw.close();
      await broker[Symbol.asyncDispose]();
      await db[Symbol.asyncDispose]();
      await Deno.remove(dataDir, { recursive: true });
    },
  };
}

async function documentOf(base: string): Promise<Json> {
  const res = await fetch(`${base}/openapi.json`);
  assert.equal(res.status, 200, "open, no token");
  const doc = await res.json();
  assert.equal(doc.openapi, "3.1.0");
  assert.deepEqual(doc.components.securitySchemes.bearer, { type: "http", scheme: "bearer" });
  return doc;
}

Deno.test("every example of the vessel's OpenAPI document holds against the live API", async (t) => {
  await using gw = await gateway({ ROLE: "vessel" });
  const doc = await documentOf(gw.base);
  const paths = Object.keys(doc.paths as Json);
  for (const p of ["/api/work_orders", "/api/work_orders/{id}", "/catchup", "/health"]) {
    assert.ok(paths.includes(p), p);
  }
  const sent = await replay(doc, gw.base, t);
  assert.ok(sent >= 50, `replayed ${sent} examples`);
  // The checker is not vacuous: a page that breaks the schema is caught.
  const page = { $ref: "#/components/schemas/WorkOrdersPage" };
  assert.notDeepEqual(check({ items: [{ id: "x" }], nextCursor: 1 }, page, doc), []);
});

Deno.test("every example of the shore's OpenAPI document holds against the live API", async (t) => {
  await using gw = await gateway({ ROLE: "shore", VESSEL_ID: "shore-1" });
  const doc = await documentOf(gw.base);
  assert.ok(Object.keys(doc.paths as Json).includes("/api/vessels"));
  const sent = await replay(doc, gw.base, t);
  assert.ok(sent >= 50, `replayed ${sent} examples`);
});
