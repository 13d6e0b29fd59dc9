/**
 * `DATA_DIR` as a real gateway process leaves it: owner-only, and owned by one process.
 */
import assert from "node:assert/strict";
import { freePort } from "../support/ports.ts";
import { spawnGateway } from "../support/process.ts";

const noBroker = () => `mqtt://127.0.0.1:${freePort()}`;

/** Every path under `root` (itself included) with its permission bits. */
async function modes(root: string): Promise<[string, number][]> {
  const out: [string, number][] = [[root, (await Deno.stat(root)).mode! & 0o777]];
  for await (const entry of Deno.readDir(root)) {
    const path = `${root}/${entry.name}`;
    if (entry.isDirectory) out.push(...await modes(path));
    else out.push([path, (await Deno.lstat(path)).mode! & 0o777]);
  }
  return out;
}

Deno.test("a fresh DATA_DIR, its embedded database and token file are owner-only", async () => {
  const parent = await Deno.makeTempDir({ prefix: "bosun-datadir-" });
  const dataDir = `${parent}/data`;
  try {
    await using gw = spawnGateway({
      env: { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: "0", MQTT_BROKER_URL: noBroker() },
    });
    const base = `http://127.0.0.1:${await gw.port()}`;
    const openPaths = async () => {
      const all = await modes(dataDir);
      assert.ok(
        all.some(([p]) => p.includes("/pgdata/pg_wal/")),
        "the embedded database lives under DATA_DIR",
      );
      return all.filter(([, mode]) => mode & 0o077)
        .map(([p, mode]) => `${p.slice(dataDir.length) || "/"} ${mode.toString(8)}`);
    };
    assert.deepEqual(await openPaths(), [], "paths open to group or others while running");

    const token = (await Deno.readTextFile(`${dataDir}/api-token`)).trim();
    const res = await fetch(`${base}/api/crew`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ name: "Written to the WAL" }),
    });
    assert.equal(res.status, 201);
    await res.body?.cancel();
    assert.equal(await gw.stop(), 0);
    assert.deepEqual(await openPaths(), [], "paths open to group or others after a stop");
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});
