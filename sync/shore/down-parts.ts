/**
 * What one send of a vessel's down rows puts on the wire: frames cut at the size cap on
 * `vessel/<id>/down/frames` (sync/frame.ts, the up stream's codec), or one envelope per
 * change on `vessel/<id>/down/<entity>` (LINK_MODE=messages, alerts at QoS 2). Pure: the
 * down publisher (sync/shore/down.ts) hands each part to the session.
 */
import type { DownRow } from "../../db/shore/down-outbox.ts";
import type { PublishOptions } from "../session.ts";
import { qosOf, toEnvelope, topicsOf } from "../protocol.ts";
import { cutFrames, FRAME_CONTENT_TYPE } from "../frame.ts";

/** One MQTT publish of down changes. */
export interface DownPart {
  epoch: string;
  /** The seqs it carries, in order. */
  seqs: number[];
  topic: string;
  payload: string | Uint8Array;
  options: PublishOptions;
}

/**
 * Encodes `rows` (seq order, one epoch) of `vesselId`'s stream. A catch-up answer carries
 * `type: "catchup"` and each change's place in it (`sequence`, `total`).
 */
export function downParts(
  vesselId: string,
  rows: readonly DownRow[],
  options: { frames: boolean; catchup?: boolean },
): DownPart[] {
  const topics = topicsOf(vesselId);
  const total = rows.length;
  const envelopes = rows.map((r, i) =>
    toEnvelope(r, vesselId, options.catchup ? { type: "catchup", sequence: i, total } : undefined)
  );
  if (!options.frames) {
    return envelopes.map((e) => ({
      epoch: e.epoch,
      seqs: [e.seq],
      topic: topics.downData(e.entity),
      payload: JSON.stringify(e),
      options: { qos: qosOf(e.entity) },
    }));
  }
  let at = 0;
  return cutFrames(envelopes).map((f) => {
    const part = envelopes.slice(at, at += f.count);
    return {
      epoch: part[0]!.epoch,
      seqs: part.map((e) => e.seq),
      topic: topics.downFrames,
      payload: f.payload,
      options: { qos: 1, contentType: FRAME_CONTENT_TYPE },
    };
  });
}
