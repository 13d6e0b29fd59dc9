/**
 * The status page as the engineer on watch sees it: a real gateway process, a broker the test
 * runs, kills and brings back, and headless Chromium (Debian's `chromium`, driven by
 * playwright-core) reading the page. `SAVE_SCREENSHOT=1` writes docs/status-page.png.
 */
import assert from "node:assert/strict";
import { chromium } from "npm:playwright-core@1.65.1";
import { freshDatabase } from "../support/pg.ts";
import { startMosquitto } from "../support/mosquitto.ts";
import { spawnLocalGateway } from "../support/process.ts";
import { waitUntil } from "../support/wait.ts";

const CHROMIUM = "/usr/bin/chromium";
const TOKEN = "status-page-token-0123456789";

Deno.test("the status page says link up, link down since, and up again, in Chromium", async (t) => {
  await using db = await freshDatabase();
  await using broker = await startMosquitto();
  const dataDir = await Deno.makeTempDir({ prefix: "bosun-status-" });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu"],
  });
  try {
    await using gw = spawnLocalGateway({
      databaseUrl: db.url,
      dataDir,
      token: TOKEN,
      env: { MQTT_BROKER_URL: broker.url, VESSEL_ID: "mv-aurora" },
    });
    const base = `http://127.0.0.1:${await gw.port()}`;
    // A phone's viewport: the page must read there without zooming.
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    const headline = async () => {
      await page.goto(base, { waitUntil: "load" });
      return (await page.locator("#verdict h1").textContent()) ?? "";
    };

    await t.step("link up", async () => {
      await waitUntil(async () => (await headline()) === "Link up", "the page says Link up");
      assert.match(await page.locator("body").innerText(), /Vessel mv-aurora/);
      assert.match(await page.locator("body").innerText(), /Nothing to do/);
    });

    await t.step("broker killed: link down since, the backlog waits on board", async () => {
      await broker.kill();
      for (const name of ["Main engine inspection", "Bilge alarm test"]) {
        const res = await fetch(`${base}/api/work_orders`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ title: name, equipmentId: "me-1" }),
        });
        assert.equal(res.status, 201);
        await res.body?.cancel();
      }
      await waitUntil(
        async () => (await headline()).startsWith("Link down since"),
        "the page says Link down since",
      );
      const text = await page.locator("body").innerText();
      assert.match(text, /Waiting to be sent\s+2/);
      assert.match(text, /records are kept on board/);
      assert.doesNotMatch(text, /Main engine inspection/, "record data on the page");
      // A string, evaluated in the page: Deno's type check has no DOM.
      const width = await page.evaluate("document.documentElement.scrollWidth") as number;
      assert.ok(width <= 390, `the page scrolls sideways on a phone (${width} px)`);
      const shot = Deno.env.get("SAVE_SCREENSHOT") === "1"
        ? new URL("../../docs/status-page.png", import.meta.url).pathname
        : `${dataDir}/status-page.png`;
      await page.screenshot({ path: shot, fullPage: true });
    });

    await t.step("broker back: link up again", async () => {
      await broker.restart();
      await waitUntil(async () => (await headline()) === "Link up", "the page says Link up again");
    });
    assert.equal(await gw.stop(), 0);
  } finally {
    await browser.close();
    await Deno.remove(dataDir, { recursive: true });
  }
});
