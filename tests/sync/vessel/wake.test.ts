import assert from "node:assert/strict";
import { WakeSignals } from "../../../sync/vessel/wake.ts";

/** Whether `p` settled within `ms` (real timers: the sleeps below are 60 s or 0 ms long). */
const settles = (p: Promise<void>, ms = 50) =>
  Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

Deno.test("wake-up signals: a signal raised while the loop is busy is not lost, and a slot does not wake a sleep on work", async () => {
  const s = new WakeSignals();
  s.signal("work"); // raised before the loop sleeps
  assert.equal(await settles(s.sleep(60_000, "work")), true, "the remembered signal");

  const onWork = s.sleep(60_000, "work");
  s.signal("slot");
  assert.equal(await settles(onWork), false, "a slot does not wake a sleep on work");
  s.signal("work");
  assert.equal(await settles(onWork), true, "work does");

  const onSlot = s.sleep(60_000, "slot");
  s.signal("work");
  assert.equal(await settles(onSlot), true, "a sleep on slot wakes on either");

  assert.equal(await settles(s.sleep(0, "work")), true, "and at its timeout");
});
