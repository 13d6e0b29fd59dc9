/**
 * The embedded database's loopback server (db/pglite-wire.ts) and its first open from the
 * template (db/pglite-template.ts), with the `postgres` client as the gateway uses it.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { isFresh, openPglite } from "../../db/pglite-template.ts";
import { serveWire } from "../../db/pglite-wire.ts";
import { silentLogger } from "../../core/log.ts";

Deno.test("a fresh PGlite directory opens from the template and serves postgres clients one session at a time", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "bosun-wire-" });
  const path = `${dir}/pgdata`;
  try {
    assert.equal(await isFresh(path), true);
    const db = await openPglite(path, silentLogger);
    assert.equal(await isFresh(path), false, "the data directory was written");
    const server = serveWire(db);
    try {
      await t.step("queries, parameters and errors pass through", async () => {
        const sql = postgres(server.url, { max: 1, onnotice: () => {} });
        await sql`create table kept (id int primary key, note text)`;
        await sql`insert into kept values (${1}, ${"one"})`;
        assert.deepEqual([...await sql`select id, note from kept`], [{ id: 1, note: "one" }]);
        await assert.rejects(sql`insert into kept values (1, 'again')`, /duplicate key/);
        await sql.end();
      });
      await t.step(
        "a transaction its client abandons is rolled back for the next one",
        async () => {
          const a = postgres(server.url, { max: 1, onnotice: () => {} });
          const reserved = await a.reserve();
          await reserved`begin`;
          await reserved`insert into kept values (2, 'never committed')`;
          // The next client waits in the accept queue while this session lives.
          const b = postgres(server.url, { max: 1, onnotice: () => {} });
          const later = b`select count(*)::int as n from kept`;
          await a.end({ timeout: 0 });
          const [row] = await later;
          assert.equal(row!.n, 1);
          await b.end();
        },
      );
    } finally {
      await server.stop();
      await db.close();
    }
    await t.step("reopening finds what was committed", async () => {
      const again = await openPglite(path, silentLogger);
      const rows = await again.query<{ id: number }>("select id from kept order by id");
      assert.deepEqual(rows.rows.map((r) => r.id), [1]);
      await again.close();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the runtime's module graph holds no test library and no PGlite extension package", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../../main.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { kind?: string; npmPackage?: string }[];
    npmPackages: Record<string, { dependencies?: string[] }>;
  };
  // `npmPackages` is the whole resolution snapshot (test packages included): what the runtime
  // needs is the closure of the packages its modules import.
  const needed = new Set<string>();
  const visit = (pkg: string) => {
    if (needed.has(pkg)) return;
    needed.add(pkg);
    for (const dep of info.npmPackages[pkg]?.dependencies ?? []) visit(dep);
  };
  for (const m of info.modules) if (m.kind === "npm" && m.npmPackage) visit(m.npmPackage);
  const packages = [...needed];
  assert.ok(packages.some((p) => p.startsWith("@electric-sql/pglite@")), "PGlite itself is there");
  const unwanted = packages.filter((p) =>
    p.startsWith("fast-check@") || p.startsWith("@electric-sql/pglite-")
  );
  assert.deepEqual(unwanted, []);
});
