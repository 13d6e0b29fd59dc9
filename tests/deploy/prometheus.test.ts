/**
 * deploy/prometheus/alerts.yml is valid for Prometheus (`promtool check rules`) and behaves as
 * its unit tests say (`promtool test rules deploy/prometheus/alerts.test.yml`), and those unit
 * tests show every alert both firing and staying silent.
 */
import assert from "node:assert/strict";
import { programMissing } from "../support/programs.ts";

const DIR = new URL("../../deploy/prometheus/", import.meta.url).pathname;

const promtoolMissing = await programMissing("promtool");
if (promtoolMissing) {
  console.warn('promtool is absent (Debian package "prometheus"): the alert rules are not checked');
}

async function promtool(cwd: string, ...args: string[]): Promise<{ ok: boolean; out: string }> {
  const o = await new Deno.Command("promtool", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  const out = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
  return { ok: o.success, out };
}

Deno.test({
  name: "promtool check rules accepts the alert rules",
  ignore: promtoolMissing,
  async fn() {
    const { ok, out } = await promtool(DIR, "check", "rules", "alerts.yml");
    assert.ok(ok, out);
    assert.match(out, /SUCCESS: \d+ rules found/);
  },
});

Deno.test({
  name: "promtool test rules passes the alerts' unit tests",
  ignore: promtoolMissing,
  async fn() {
    const { ok, out } = await promtool(DIR, "test", "rules", "alerts.test.yml");
    assert.ok(ok, out);
  },
});

Deno.test({
  name: "the unit tests fail when a threshold drifts (they are not vacuous)",
  ignore: promtoolMissing,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "bosun-alerts-" });
    try {
      const rules = await Deno.readTextFile(`${DIR}/alerts.yml`);
      const drifted = rules.replace(
        "bosun_link_down_seconds > 15 * 60",
        "bosun_link_down_seconds > 60 * 60",
      );
      assert.notEqual(drifted, rules, "the link-down expression was not found to alter");
      await Deno.writeTextFile(`${dir}/alerts.yml`, drifted);
      await Deno.copyFile(`${DIR}/alerts.test.yml`, `${dir}/alerts.test.yml`);
      const { ok, out } = await promtool(dir, "test", "rules", "alerts.test.yml");
      assert.equal(ok, false, out);
      assert.match(out, /BosunLinkDown/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("every alert has a unit test where it fires and one where it stays silent", async () => {
  const rules = await Deno.readTextFile(`${DIR}/alerts.yml`);
  const tests = await Deno.readTextFile(`${DIR}/alerts.test.yml`);
  const alerts = [...rules.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!);
  assert.ok(alerts.length >= 9, `only ${alerts.length} alerts found`);
  // Each `alertname:` line is followed by its `exp_alerts:`, empty (`[]`) or a list.
  const cases = [...tests.matchAll(/alertname: (\w+)\n\s+exp_alerts:( \[\])?/g)];
  for (const alert of alerts) {
    const mine = cases.filter((c) => c[1] === alert);
    assert.ok(mine.some((c) => c[2] === undefined), `${alert} is never shown firing`);
    assert.ok(mine.some((c) => c[2] === " []"), `${alert} is never shown silent`);
  }
});
