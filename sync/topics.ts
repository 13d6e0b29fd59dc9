/**
 * The topics of contract §4, and an MQTT topic-filter matcher for dispatch.
 */
import type { Entity } from "../entities.ts";

/** `vessel/<VESSEL_ID>/sync`. */
export const rootOf = (vesselId: string): string => `vessel/${vesselId}/sync`;

/** Every topic of one vessel. */
export function topicsOf(vesselId: string) {
  const root = rootOf(vesselId);
  return {
    root,
    data: (entity: Entity) => `${root}/${entity}`,
    catchup: (entity: Entity) => `${root}/catchup/${entity}`,
    status: `${root}/system/status`,
    catchupRequest: `${root}/catchup/request`,
    ack: `${root}/ack`,
    conflicts: `${root}/conflicts`,
  };
}

/** What the shore subscribes to: every vessel's sync tree. */
export const FLEET_FILTER = "vessel/+/sync/#";

/**
 * Checks an MQTT topic filter: `+` only as a whole level, `#` only as the whole last level,
 * no empty filter, no NUL. Throws an Error naming the fault.
 */
export function validateFilter(filter: string): void {
  if (filter.length === 0 || filter.length > 65_535) {
    throw new Error("Topic filter is empty or too long");
  }
  if (filter.includes("\u0000")) throw new Error("Topic filter holds NUL");
  const levels = filter.split("/");
  levels.forEach((level, i) => {
    if (level.includes("#") && (level !== "#" || i !== levels.length - 1)) {
      throw new Error(`"#" must be the whole last level in "${filter}"`);
    }
    if (level.includes("+") && level !== "+") {
      throw new Error(`"+" must be a whole level in "${filter}"`);
    }
  });
}

/** A topic name (what is published to) holds no wildcard. */
export function validateTopicName(topic: string): void {
  if (topic.length === 0 || /[+#]/.test(topic) || topic.includes("\u0000")) {
    throw new Error(`Topic "${topic}" must be non-empty and hold no wildcard or NUL`);
  }
}

/** True when `topic` matches `filter` (MQTT 3.1.1 §4.7, `$` topics excluded from wildcards). */
export function matches(filter: string, topic: string): boolean {
  const f = filter.startsWith("$share/") ? filter.split("/").slice(2).join("/") : filter;
  const fl = f.split("/");
  const tl = topic.split("/");
  if (topic.startsWith("$") && (fl[0] === "+" || fl[0] === "#")) return false;
  for (let i = 0; i < fl.length; i++) {
    const level = fl[i];
    if (level === "#") return true;
    if (i >= tl.length) return false;
    if (level !== "+" && level !== tl[i]) return false;
  }
  return fl.length === tl.length;
}
