/**
 * deploy/nats/nats.conf and users.conf as shipped: nats-server accepts them (`-t`), refuses to
 * start without a password variable, and every vessel built by tests/support/nats.ts from the
 * vessel-1 template block is exactly what the shipped file grants vessel-2.
 */
import assert from "node:assert/strict";
import { natsUsersConf, SHORE_USER } from "../support/nats.ts";
import { programMissing } from "../support/programs.ts";

const DEPLOY = new URL("../../deploy/nats/", import.meta.url).pathname;

const natsMissing = await programMissing("nats-server");

/** `nats-server -t -c nats.conf` with `env` added; its exit status and output. */
async function checkConfig(env: Record<string, string>): Promise<{ ok: boolean; out: string }> {
  const o = await new Deno.Command("nats-server", {
    args: ["-t", "-c", "nats.conf"],
    cwd: DEPLOY,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
  return { ok: o.success, out };
}

const PASSWORDS = {
  NATS_SERVER_NAME: "nats-1",
  BOSUN_SHORE_PASSWORD: "a",
  VESSEL_1_PASSWORD: "b",
  VESSEL_2_PASSWORD: "c",
};

Deno.test({
  name: "nats-server accepts the shipped cluster configuration",
  ignore: natsMissing,
  async fn() {
    const { ok, out } = await checkConfig(PASSWORDS);
    assert.ok(ok, out);
    assert.match(out, /configuration file nats\.conf is valid/);
  },
});

Deno.test({
  name: "the shipped configuration names the missing password variable",
  ignore: natsMissing,
  async fn() {
    const { VESSEL_2_PASSWORD: _, ...rest } = PASSWORDS;
    const { ok, out } = await checkConfig(rest);
    assert.equal(ok, false);
    assert.match(out, /VESSEL_2_PASSWORD/);
  },
});

Deno.test("a vessel built from the template block is the shipped vessel-2 block", async () => {
  const shipped = await Deno.readTextFile(`${DEPLOY}/users.conf`);
  const built = natsUsersConf(shipped, ["vessel-2"], { [SHORE_USER]: "s", "vessel-2": "p" });
  /** The permissions block of `user` (comments and blank lines dropped). */
  const permissionsOf = (conf: string, user: string) => {
    const at = conf.indexOf(`user: "${user}"`);
    assert.ok(at >= 0, `no user ${user}`);
    const block = conf.slice(at, conf.indexOf("\n    }\n", at));
    return block.split("\n").map((l) => l.replace(/#.*/, "").trim()).filter((l) =>
      l !== "" && !l.startsWith("password:")
    );
  };
  const expected = permissionsOf(shipped, "vessel-2");
  assert.deepEqual(permissionsOf(built, "vessel-2"), expected);
  assert.equal(built.includes('user: "vessel-1"'), false, "the template vessel was left in");
  // 15 subjects it may publish, 9 it may read (8 of its own and the QoS 1 delivery subject).
  assert.equal(expected.filter((l) => l.startsWith('"vessel.vessel-2.')).length, 15 + 8);
  assert.equal(expected.filter((l) => l.includes("vessel.vessel-1")).length, 0);
});
