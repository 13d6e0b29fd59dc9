/**
 * A database that answers but refuses us at start-up: the gateway process exits 1 with one
 * line instead of retrying for ever as "unreachable" (CONTRACT §1).
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { PG_ADMIN_URL } from "../support/pg.ts";
import { createPgServer } from "../support/pgserver.ts";
import { type GatewayProcess, spawnLocalGateway } from "../support/process.ts";
import { withDeadline } from "../support/wait.ts";

/** Starts a gateway on `databaseUrl` and returns its one line of stderr once it exits 1. */
async function refusedLine(databaseUrl: string): Promise<string> {
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-dberr-" });
  try {
    await using gw: GatewayProcess = spawnLocalGateway({
      databaseUrl,
      dataDir,
      token: "start-errors-token-0123456789",
    });
    const code = await withDeadline(
      gw.exited(),
      "the gateway to exit on a permanent error",
      30_000,
    );
    assert.equal(code, 1, gw.output());
    const lines = gw.stderr().split("\n").filter(Boolean);
    assert.equal(lines.length, 1, `one line, not:\n${gw.stderr()}`);
    assert.doesNotMatch(gw.stderr(), /unreachable, retrying/);
    return lines[0]!;
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

const withPath = (url: string, f: (u: URL) => void) => {
  const u = new URL(url);
  f(u);
  return u.toString();
};

Deno.test("an unknown database name exits 1 with one line naming it (3D000)", async () => {
  const name = `bosun_missing_${crypto.randomUUID().slice(0, 8)}`;
  const line = await refusedLine(withPath(PG_ADMIN_URL, (u) => u.pathname = `/${name}`));
  assert.match(line, /^bosun: /);
  assert.ok(line.includes(name), line);
  assert.match(line, /3D000/);
});

Deno.test("a role that does not exist exits 1 with one line (28000)", async () => {
  const line = await refusedLine(withPath(PG_ADMIN_URL, (u) => u.username = "bosun_no_such_role"));
  assert.match(line, /bosun_no_such_role/);
  assert.match(line, /28000/);
});

Deno.test("a wrong password exits 1 with one line that does not show the password (28P01)", async () => {
  await using pg = await createPgServer({
    hba: ["host all bosun_pw 127.0.0.1/32 scram-sha-256"],
  });
  const admin = postgres(pg.url, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe("create role bosun_pw login password 'the-right-one'");
  } finally {
    await admin.end();
  }
  const line = await refusedLine(
    withPath(pg.url, (u) => {
      u.username = "bosun_pw";
      u.password = "not-the-right-one";
    }),
  );
  assert.match(line, /28P01/);
  assert.ok(!line.includes("not-the-right-one"), `the password is shown: ${line}`);
});
