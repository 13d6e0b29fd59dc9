/**
 * The command line as an operator meets it: `--help`, `--version`, a wrong flag, and a port
 * already taken, each in a process of its own.
 */
import assert from "node:assert/strict";
import { VARIABLES } from "../config.ts";
import { VERSION } from "../core/version.ts";
import { freshDatabase } from "./support/pg.ts";
import { spawnLocalGateway } from "./support/process.ts";

const ROOT = new URL("../", import.meta.url).pathname;
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

async function run(args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("deno task start --help lists every variable with its default and opens nothing", async () => {
  const parent = await Deno.makeTempDir({ prefix: "bosun-cli-" });
  const dataDir = `${parent}/data`;
  try {
    const { code, stdout } = await run(["task", "start", "--help"], { DATA_DIR: dataDir });
    assert.equal(code, 0);
    assert.match(stdout, /^Usage: deno task start \[--help \| --version\]/m);
    for (const name of VARIABLES) {
      assert.match(stdout, new RegExp(`^  ${name} +default: \\S`, "m"), `${name} not listed`);
    }
    assert.match(stdout, /^ {2}PORT +default: 8080$/m);
    assert.match(stdout, /^ {2}MQTT_BROKER_URL +default: mqtt:\/\/localhost:1883$/m);
    assert.doesNotMatch(stdout, /Listening/);
    await assert.rejects(Deno.stat(dataDir), Deno.errors.NotFound, "DATA_DIR was created");
  } finally {
    await Deno.remove(parent, { recursive: true });
  }
});

Deno.test("--help and --version run with no permissions at all, so they cannot open anything", async (t) => {
  // `deno run` without flags grants no file, network or environment access: had either flag
  // touched the database, DATA_DIR or the broker, Deno would have refused and exited 1.
  await t.step("--help", async () => {
    const { code, stdout, stderr } = await run(["run", "--no-prompt", "main.ts", "--help"]);
    assert.equal(code, 0, stderr);
    assert.match(stdout, /DATA_DIR +default: \.\/data/);
  });
  await t.step("--version", async () => {
    const { code, stdout, stderr } = await run(["run", "--no-prompt", "main.ts", "--version"]);
    assert.equal(code, 0, stderr);
    assert.equal(stdout, `bosun ${VERSION}\n`);
  });
});

Deno.test("an unknown flag is refused in one line with exit 2", async () => {
  const { code, stdout, stderr } = await run(["run", "--no-prompt", "main.ts", "--verbose"]);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.equal(stderr, 'bosun: Unknown argument "--verbose" (try --help)\n');
});

Deno.test("a port already taken exits 1 in one line, before any connection reaches the broker", async () => {
  await using db = await freshDatabase();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-cli-" });
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // The broker's port: a listener that only records who connects (the assertion is that
  // nobody does, so nothing needs to speak MQTT back).
  const broker = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const brokerPort = (broker.addr as Deno.NetAddr).port;
  const arrivals: number[] = [];
  const accepting = (async () => {
    for await (const conn of broker) {
      arrivals.push((conn.remoteAddr as Deno.NetAddr).port);
      conn.close();
    }
  })();
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: "port-taken-token-0123456789",
      env: {
        PORT: String((taken.addr as Deno.NetAddr).port),
        MQTT_BROKER_URL: `mqtt://127.0.0.1:${brokerPort}`,
      },
    });
    assert.equal(await gw.exited(), 1);
    const plain = gw.stderr().split("\n").filter((l) => l && !l.startsWith("{"));
    assert.equal(plain.length, 1, `one plain line expected:\n${gw.stderr()}`);
    assert.match(
      plain[0]!,
      /^bosun: start-up failed: Cannot listen on "HOST" "127\.0\.0\.1", "PORT" \d+/,
    );
    assert.doesNotMatch(gw.stderr(), /\n\s+at /, "a stack trace was printed");
    assert.doesNotMatch(gw.stderr(), /"stack"/, "a stack was logged");

    // A connection of our own, after the gateway is gone: every connection accepted before it
    // would have come from the gateway.
    const sentinel = await Deno.connect({ hostname: "127.0.0.1", port: brokerPort });
    const mine = (sentinel.localAddr as Deno.NetAddr).port;
    const deadline = Date.now() + 10_000;
    while (!arrivals.includes(mine)) {
      if (Date.now() > deadline) throw new Error("the sentinel connection was never accepted");
      await new Promise((r) => setTimeout(r, 20));
    }
    sentinel.close();
    assert.deepEqual(arrivals, [mine], "the gateway connected to the broker");
  } finally {
    taken.close();
    broker.close();
    await accepting.catch(() => {});
    await Deno.remove(dataDir, { recursive: true });
  }
});
