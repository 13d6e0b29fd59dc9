/**
 * `DATA_DIR` as a real gateway process leaves it: owner-only, and owned by one process.
 */
import assert from "node:assert/strict";
import { freePort } from "../support/ports.ts";
import { type GatewayProcess, spawnGateway } from "../support/process.ts";
import { freshDatabase } from "../support/pg.ts";
import { withDeadline } from "../support/wait.ts";

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
    const base = `http://127.0.0.1:${await gw.port(180_000)}`;
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

/** Asserts that `second` exited 1 with one line naming `dataDir` and `holder`'s pid. */
async function assertRefused(second: GatewayProcess, dataDir: string, holder: GatewayProcess) {
  const code = await withDeadline(second.exited(), "the second gateway to exit", 30_000);
  assert.equal(code, 1, second.output());
  const lines = second.stderr().split("\n").filter(Boolean);
  assert.equal(lines.length, 1, `one line, not: ${second.stderr()}`);
  assert.ok(lines[0]!.includes(`DATA_DIR "${dataDir}"`), lines[0]!);
  assert.match(lines[0]!, new RegExp(`pid ${holder.child.pid} on host "[^"]+", started \\d{4}-`));
  assert.equal(second.stdout(), "", "nothing printed, no token generated");
}

Deno.test("a second gateway on a held DATA_DIR exits 1 at once naming the holder; after kill -9 the next start goes ahead", async (t) => {
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-datadir-" });
  const env = { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: "0", MQTT_BROKER_URL: noBroker() };
  try {
    await using first = spawnGateway({ env });
    const base = `http://127.0.0.1:${await first.port(180_000)}`;
    const token = (await Deno.readTextFile(`${dataDir}/api-token`)).trim();
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const created = await fetch(`${base}/api/crew`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "Only one writer" }),
    });
    assert.equal(created.status, 201);
    const id = (await created.json()).id;

    await t.step("the second start is refused, the first keeps serving", async () => {
      await using second = spawnGateway({ env });
      await assertRefused(second, dataDir, first);
      const got = await fetch(`${base}/api/crew/${id}`, { headers });
      assert.equal(got.status, 200);
      await got.body?.cancel();
    });

    await t.step(
      "kill -9 leaves a lock file but no lock: the next start serves the data",
      async () => {
        assert.equal(await first.stop("SIGKILL"), 137);
        assert.ok((await Deno.stat(`${dataDir}/bosun.lock`)).isFile, "the stale lock file is left");
        await using third = spawnGateway({ env });
        const base3 = `http://127.0.0.1:${await third.port(180_000)}`;
        const got = await fetch(`${base3}/api/crew/${id}`, { headers });
        assert.equal(got.status, 200);
        assert.equal((await got.json()).name, "Only one writer");
        assert.equal(await third.stop(), 0);
      },
    );
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("with DATABASE_URL set, the token file alone still makes DATA_DIR one process's", async () => {
  await using db = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-datadir-" });
  const env = {
    DATABASE_URL: db.url,
    DATA_DIR: dataDir,
    HOST: "127.0.0.1",
    PORT: "0",
    MQTT_BROKER_URL: noBroker(),
  };
  try {
    await using first = spawnGateway({ env });
    await first.port(180_000);
    await using second = spawnGateway({ env });
    await assertRefused(second, dataDir, first);

    // With API_TOKENS as well, DATA_DIR is not used at all: a second gateway may share it.
    await using third = spawnGateway({
      env: { ...env, API_TOKENS: "shared-dir-token-0123456789" },
    });
    await third.port(180_000);
    assert.equal(await third.stop(), 0);
    assert.equal(await first.stop(), 0);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});
