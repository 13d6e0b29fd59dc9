/**
 * What the shore makes of one incoming MQTT message: an envelope to apply, a presence update,
 * one of its own topics to ignore, or a malformed message with the reason it is counted under.
 *
 * Pure and synchronous: a peer's bad message is classified here, never thrown.
 */
import { type Envelope, envelopeSchema, parseJson, statusSchema } from "../protocol.ts";
import { decodeFrame, type FrameRefusal } from "../frame.ts";
import { isEntity, recordSchemas } from "../../core/entities.ts";
import { VESSEL_ID_PATTERN } from "../../config.ts";

/** The largest payload the shore reads; a record is at most a few tens of KiB. */
export const MAX_PAYLOAD_BYTES = 256 * 1024;

/**
 * The largest frame the shore reads: 256 KiB is the cap, but one change larger than that
 * travels alone, and a record may be up to the API's 1 MiB body (compressed, less).
 */
export const MAX_FRAME_BYTES = 4 * 1024 * 1024;

/** Why a message was dropped (the `reason` label of `bosun_shore_malformed_total`). */
export type MalformedReason =
  | "oversized"
  | "invalid_topic"
  | "unknown_entity"
  | "invalid_json"
  | "invalid_seq"
  | "invalid_envelope"
  | "invalid_record"
  | "mismatch"
  | "invalid_status"
  | "unknown_encoding"
  | "corrupt_frame";

/** A vessel's presence as its status topic states it. */
export interface Presence {
  vesselId: string;
  status: "online" | "offline";
  /** The time the status carries, when it carries one. */
  at: Date | undefined;
  /** The vessel's epoch and last seq handed out, when an online status carries them. */
  epoch?: string;
  lastSeq?: number;
}

/** The classification of one message. */
export type ShoreMessage =
  | { kind: "envelope"; envelope: Envelope }
  | { kind: "frame"; vesselId: string; envelopes: Envelope[]; fromSeq: number; toSeq: number }
  | { kind: "presence"; presence: Presence }
  | { kind: "ignored" }
  | { kind: "malformed"; reason: MalformedReason; vesselId?: string; detail: string };

const OWN_TOPICS = new Set(["ack", "conflicts", "catchup/request"]);
const malformed = (
  reason: MalformedReason,
  detail: string,
  vesselId?: string,
): ShoreMessage => ({ kind: "malformed", reason, detail, vesselId });

const FRAME_REASONS: Record<FrameRefusal, MalformedReason> = {
  unknown_encoding: "unknown_encoding",
  corrupt: "corrupt_frame",
  too_large: "corrupt_frame",
  wrong_vessel: "mismatch",
};

/**
 * Classifies a message received on `vessel/+/sync/#`. `contentType`: its MQTT 5 content type,
 * which names a frame's encoding.
 */
export function classify(
  topic: string,
  payload: Uint8Array,
  meta: { contentType?: string } = {},
): ShoreMessage {
  const levels = topic.split("/");
  const vesselId = levels[1] ?? "";
  // The down stream's topics are sync/shore/down.ts's (it shares the session).
  if (levels[0] === "vessel" && levels[2] === "down") return { kind: "ignored" };
  if (levels.length < 4 || levels[0] !== "vessel" || levels[2] !== "sync") {
    return malformed("invalid_topic", `Topic "${topic.slice(0, 200)}" is not a sync topic`);
  }
  if (!VESSEL_ID_PATTERN.test(vesselId)) {
    return malformed("invalid_topic", `Vessel id "${vesselId.slice(0, 80)}" is not valid`);
  }
  const rest = levels.slice(3).join("/");
  if (OWN_TOPICS.has(rest)) return { kind: "ignored" };
  if (rest === "frames") return frameOf(vesselId, payload, meta.contentType);
  if (payload.byteLength > MAX_PAYLOAD_BYTES) {
    return malformed("oversized", `Payload of ${payload.byteLength} bytes`, vesselId);
  }
  if (rest === "system/status") {
    // A zero-length retained message is how a retained status is cleared: nothing to record.
    return payload.byteLength === 0 ? { kind: "ignored" } : presenceOf(vesselId, payload);
  }

  const entity = levels.length === 4 ? levels[3]! : levels[3] === "catchup" ? levels[4]! : "";
  if (levels.length > 5 || (levels.length === 5 && levels[3] !== "catchup")) {
    return malformed("invalid_topic", `Topic "${topic.slice(0, 200)}" is not a sync topic`);
  }
  if (!isEntity(entity)) {
    return malformed("unknown_entity", `No entity "${entity.slice(0, 80)}"`, vesselId);
  }
  const json = parseJson(payload);
  if (!json.ok) return malformed("invalid_json", "Payload is not UTF-8 JSON", vesselId);
  return checkEnvelope(json.value, vesselId, entity);
}

/**
 * A frame: decoded whole, then every envelope checked as a lone message is. One bad change
 * refuses the whole frame (counted once, under its reason): nothing of it is applied.
 */
function frameOf(vesselId: string, payload: Uint8Array, contentType?: string): ShoreMessage {
  if (payload.byteLength > MAX_FRAME_BYTES) {
    return malformed("oversized", `Frame of ${payload.byteLength} bytes`, vesselId);
  }
  const frame = decodeFrame(payload, { contentType, vesselId });
  if (!frame.ok) return malformed(FRAME_REASONS[frame.reason], frame.detail, vesselId);
  const envelopes: Envelope[] = [];
  for (const e of frame.envelopes) {
    const checked = checkEnvelope(e, vesselId);
    if (checked.kind === "malformed") {
      return { ...checked, detail: `Frame seq ${e.seq}: ${checked.detail}` };
    }
    if (checked.kind !== "envelope") return malformed("invalid_envelope", "Not a change", vesselId);
    envelopes.push(checked.envelope);
  }
  return { kind: "frame", vesselId, envelopes, fromSeq: frame.fromSeq, toSeq: frame.toSeq };
}

/** The envelope and record checks every change passes, alone or in a frame. */
function checkEnvelope(value: unknown, vesselId: string, entity?: string): ShoreMessage {
  const parsed = envelopeSchema.safeParse(value);
  if (!parsed.success) {
    const onSeq = parsed.error.issues.some((i) => i.path[0] === "seq");
    const fields = [...new Set(parsed.error.issues.map((i) => i.path.join(".")))].join(", ");
    return malformed(onSeq ? "invalid_seq" : "invalid_envelope", `Fields: ${fields}`, vesselId);
  }
  const envelope = parsed.data as Envelope;
  if (envelope.vesselId !== vesselId || (entity !== undefined && envelope.entity !== entity)) {
    return malformed("mismatch", "Envelope vesselId or entity differs from its topic", vesselId);
  }
  const record = recordSchemas[envelope.entity].safeParse(envelope.data);
  if (!record.success) {
    const fields = [...new Set(record.error.issues.map((i) => i.path.join(".")))].join(", ");
    return malformed("invalid_record", `Record fields: ${fields}`, vesselId);
  }
  // Both objects are zod's own copies: the envelope takes the checked record in place.
  envelope.data = record.data;
  return { kind: "envelope", envelope };
}

function presenceOf(vesselId: string, payload: Uint8Array): ShoreMessage {
  const json = parseJson(payload);
  const parsed = json.ok ? statusSchema.safeParse(json.value) : undefined;
  if (!parsed?.success) {
    return malformed("invalid_status", 'Status payload is not {"status": ...}', vesselId);
  }
  const { status, timestamp, epoch, lastSeq } = parsed.data;
  const presence: Presence = { vesselId, status, at: timestamp ? new Date(timestamp) : undefined };
  if (status === "online" && epoch !== undefined && lastSeq !== undefined) {
    presence.epoch = epoch;
    presence.lastSeq = lastSeq;
  }
  return { kind: "presence", presence };
}
