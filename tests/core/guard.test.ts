import assert from "node:assert/strict";

// A child process installs the guard, then throws from a timer and rejects a promise nobody
// awaits: both would end a Deno process. It must log both and go on to print "alive".
const script = `
import { guardProcess } from ${
  JSON.stringify(new URL("../../core/guard.ts", import.meta.url).href)
};
import { createLogger } from ${JSON.stringify(new URL("../../core/log.ts", import.meta.url).href)};
guardProcess(createLogger());
setTimeout(() => { throw new TypeError("socket gone"); }, 0);
Promise.reject(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }));
setTimeout(() => console.log("alive"), 100);
`;

Deno.test("an error thrown in a callback or a stray rejection is logged and the gateway lives on", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  assert.match(stdout, /alive/);
  const lines = stderr.trim().split("\n").filter((l) => l.startsWith("{")).map((l) =>
    JSON.parse(l)
  );
  assert.ok(
    lines.some((l) => l.msg === "Uncaught error, carrying on" && /socket gone/.test(l.error)),
  );
  assert.ok(
    lines.some((l) => l.msg === "Unhandled rejection, carrying on" && /ECONNREFUSED/.test(l.error)),
  );
});
