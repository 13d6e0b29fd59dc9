/**
 * Reads the TLS files named by `MQTT_CA_FILE`, `MQTT_CERT_FILE` and `MQTT_KEY_FILE` once at
 * start, so an unreadable file stops start-up with a message naming the variable instead of
 * failing at the first connection attempt.
 */
import { ConfigError } from "../config.ts";
import type { Config } from "../config.ts";

/** The PEM contents to hand to mqtt.js (`ca`, `cert`, `key`). */
export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

async function readPem(variable: string, path: string, marker: RegExp): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new ConfigError(
      `"${variable}" names "${path}", which cannot be read: ${(err as Error).message}`,
    );
  }
  if (!marker.test(text)) {
    throw new ConfigError(`"${variable}" names "${path}", which holds no PEM ${marker.source}`);
  }
  return text;
}

/** Reads and sanity-checks the configured files; nothing configured gives `{}`. */
export async function readTlsFiles(mqtt: Config["mqtt"]): Promise<TlsFiles> {
  const files: TlsFiles = {};
  if (mqtt.caFile) files.ca = await readPem("MQTT_CA_FILE", mqtt.caFile, /CERTIFICATE/);
  if (mqtt.certFile) files.cert = await readPem("MQTT_CERT_FILE", mqtt.certFile, /CERTIFICATE/);
  if (mqtt.keyFile) files.key = await readPem("MQTT_KEY_FILE", mqtt.keyFile, /PRIVATE KEY/);
  return files;
}
