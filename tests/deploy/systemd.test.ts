/**
 * deploy/bosun.service passes `systemd-analyze verify` without a single warning, and keeps the
 * settings the gateway relies on (its state directory as DATA_DIR, a stop timeout above the
 * 10 s request drain, a restart policy).
 */
import assert from "node:assert/strict";

const UNIT = new URL("../../deploy/bosun.service", import.meta.url);
const ANALYZE = "/usr/bin/systemd-analyze";

const analyzeMissing = await Deno.stat(ANALYZE).then(() => false, () => true);
if (analyzeMissing) {
  console.warn(`${ANALYZE} is absent (Debian package "systemd"): the unit is not verified`);
}

/**
 * Runs `systemd-analyze verify` on `text` saved as `name` in a temp dir. Returns the lines that
 * speak of that unit (verify may also talk about the host's own units; those are not ours).
 */
async function verify(name: string, text: string): Promise<{ code: number; lines: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "bosun-unit-" });
  try {
    await Deno.writeTextFile(`${dir}/${name}`, text);
    const out = await new Deno.Command(ANALYZE, {
      args: ["verify", "--man=no", `${dir}/${name}`],
      stdout: "piped",
      stderr: "piped",
      env: { SYSTEMD_LOG_COLOR: "0" },
    }).output();
    const all = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const lines = all.split("\n").filter((l) => l.trim() !== "");
    const others = lines.filter((l) => !l.includes(name));
    if (others.length) console.log(`systemd-analyze about other units:\n${others.join("\n")}`);
    return { code: out.code, lines: lines.filter((l) => l.includes(name)) };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * verify insists that ExecStart's binary exists; /usr/local/bin/bosun is what an install puts
 * there (README), so the copy under test points at an executable this machine has.
 */
function withExistingBinary(unit: string): string {
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/bosun$/m);
  return unit.replace(/^ExecStart=.*$/m, `ExecStart=${Deno.execPath()}`);
}

/** `[Service]` key → values (a key may repeat, as SystemCallFilter does). */
function serviceSettings(unit: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = "";
  for (const raw of unit.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (section !== "Service") continue;
    const eq = line.indexOf("=");
    const key = line.slice(0, eq);
    settings.set(key, [...(settings.get(key) ?? []), line.slice(eq + 1)]);
  }
  return settings;
}

Deno.test({
  name: "systemd-analyze verify reports no warning about deploy/bosun.service",
  ignore: analyzeMissing,
  async fn() {
    const unit = withExistingBinary(await Deno.readTextFile(UNIT));
    const { code, lines } = await verify("bosun.service", unit);
    assert.deepEqual(lines, [], `systemd-analyze verify warned:\n${lines.join("\n")}`);
    assert.equal(code, 0);
  },
});

Deno.test({
  name: "the verify check catches a misspelt key and a bad value (it is not vacuous)",
  ignore: analyzeMissing,
  async fn() {
    const unit = withExistingBinary(await Deno.readTextFile(UNIT))
      .replace("ProtectSystem=strict", "ProtectSystm=strict")
      .replace("Restart=always", "Restart=sometimes");
    const { lines } = await verify("bosun.service", unit);
    assert.ok(lines.some((l) => l.includes("ProtectSystm")), lines.join("\n"));
    assert.ok(lines.some((l) => l.includes("sometimes")), lines.join("\n"));
  },
});

Deno.test("the unit runs the compiled gateway with its state directory as DATA_DIR", async () => {
  const s = serviceSettings(await Deno.readTextFile(UNIT));
  assert.deepEqual(s.get("ExecStart"), ["/usr/local/bin/bosun"]);
  assert.deepEqual(s.get("StateDirectory"), ["bosun"]);
  assert.deepEqual(s.get("Environment"), ["DATA_DIR=%S/bosun"]);
  assert.deepEqual(s.get("EnvironmentFile"), ["-/etc/bosun/bosun.env"]);
  assert.deepEqual(s.get("User"), ["bosun"]);
  assert.deepEqual(s.get("Restart"), ["always"]);
  // main.ts drains in-flight requests for up to 10 s before closing the database.
  const stop = Number(s.get("TimeoutStopSec")?.[0]);
  assert.ok(stop > 10, `TimeoutStopSec ${stop} leaves no room after the 10 s request drain`);
  // V8 and PGlite's WebAssembly need writable-then-executable memory.
  assert.notDeepEqual(s.get("MemoryDenyWriteExecute"), ["yes"]);
  for (const key of ["ProtectSystem", "ProtectHome", "NoNewPrivileges", "PrivateTmp"]) {
    assert.ok(s.has(key), `hardening setting ${key} is missing`);
  }
});
