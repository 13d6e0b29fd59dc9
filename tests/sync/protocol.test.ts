import assert from "node:assert/strict";
import {
  ackPayload,
  ackSchema,
  catchupRequestPayload,
  catchupRequestSchema,
  downAckVessel,
  parsePayload,
  statusPayload,
  statusSchema,
  topicsOf,
} from "../../sync/protocol.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const epoch = "0b7c1f9e-8a52-4c1e-9a43-3f1d2b6e7a10";

Deno.test("every builder's payload parses back with its own schema to what was built", () => {
  assert.deepEqual(parsePayload(bytes(ackPayload({ epoch, seq: 42 })), ackSchema), {
    epoch,
    seq: 42,
  });
  const request = { since: 7, entity: "alerts" as const, limit: 10 };
  assert.deepEqual(
    parsePayload(bytes(catchupRequestPayload(request)), catchupRequestSchema),
    request,
  );
  const status = {
    status: "online" as const,
    vesselId: "v-1",
    version: "1.0.0",
    epoch,
    lastSeq: 3,
    timestamp: "2026-11-30T10:00:00.000Z",
  };
  assert.deepEqual(parsePayload(bytes(statusPayload(status)), statusSchema), status);
});

Deno.test("a peer's bad payload parses to undefined, never throws", () => {
  for (const bad of ["", "{", "null", '{"epoch":"x","seq":1}', '{"epoch":"' + epoch + '"}']) {
    assert.equal(parsePayload(bytes(bad), ackSchema), undefined, bad);
  }
  assert.equal(parsePayload(new Uint8Array([0xff, 0xfe]), ackSchema), undefined);
  // A status with a broken hint still states presence; the hint is dropped.
  const s = parsePayload(bytes('{"status":"online","epoch":"nope","lastSeq":-1}'), statusSchema);
  assert.equal(s?.status, "online");
  assert.equal(s?.epoch, undefined);
  assert.equal(s?.lastSeq, undefined);
});

Deno.test("a vessel's topics all live under vessel/<id>/sync", () => {
  const t = topicsOf("v-1");
  for (const topic of [t.ack, t.status, t.catchupRequest, t.data("alerts"), t.catchup("crew")]) {
    assert.ok(topic.startsWith("vessel/v-1/sync/"), topic);
  }
});

Deno.test("a vessel's down topics live under vessel/<id>/down, and the ack names its vessel", () => {
  const t = topicsOf("v-1");
  for (const topic of [t.downFrames, t.downAck, t.downCatchupRequest, t.downData("crew")]) {
    assert.ok(topic.startsWith("vessel/v-1/down/"), topic);
  }
  assert.equal(downAckVessel(t.downAck), "v-1");
  for (const topic of [t.downFrames, t.ack, "vessel/a.b/down/ack", "vessel/v-1/down/ack/x"]) {
    assert.equal(downAckVessel(topic), undefined, topic);
  }
});
