/**
 * The gateway's own HTTP edges, against a real gateway process: what a full outbox logs,
 * what data exceptions and malformed bodies answer, and slow uploads.
 */
import assert from "node:assert/strict";
import { freshDatabase } from "../support/pg.ts";
import { type GatewayProcess, spawnLocalGateway } from "../support/process.ts";
import { waitUntil } from "../support/fleet.ts";

const TOKEN = "edges-token-0123456789abcdef";
const auth = { authorization: `Bearer ${TOKEN}` };
const json = { ...auth, "content-type": "application/json" };

/** The first JSON log line of `gw` whose text matches `pattern`, waited for up to 20 s. */
async function logLine(gw: GatewayProcess, pattern: RegExp): Promise<Record<string, unknown>> {
  const find = () => gw.stderr().split("\n").find((l) => pattern.test(l));
  await waitUntil(() => find() !== undefined, `a log line matching ${pattern}`, 20_000);
  return JSON.parse(find()!);
}

Deno.test('a full outbox is logged as "Outbox full" with pending and limit, not as a database outage', async () => {
  await using db = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-edges-" });
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: TOKEN,
      env: { OUTBOX_MAX_PENDING: "1" },
    });
    const base = `http://127.0.0.1:${await gw.port()}`;
    const post = () =>
      fetch(`${base}/api/crew`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ name: "One too many" }),
      });
    const first = await post();
    assert.equal(first.status, 201);
    await first.body?.cancel();
    const second = await post();
    assert.equal(second.status, 503);
    assert.equal((await second.json()).error.code, "outbox_full");
    const line = await logLine(gw, /"msg":"Outbox full"/);
    assert.equal(line.pending, 1);
    assert.equal(line.limit, 1);
    assert.doesNotMatch(gw.stderr(), /Database unavailable/);
    assert.equal(await gw.stop(), 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
