/**
 * Reads the TLS files named by `MQTT_CA_FILE`, `MQTT_CERT_FILE` and `MQTT_KEY_FILE` once at
 * start, so an unreadable or invalid file stops start-up with a message naming the variable
 * instead of failing at the first connection attempt.
 */
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
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

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Parses every certificate in `text` (a CA file may hold a chain); returns the first. */
function parseCertificates(variable: string, path: string, text: string): X509Certificate {
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new ConfigError(`"${variable}" names "${path}", which holds no PEM certificate`);
  }
  const parsed = blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(
        `"${variable}" names "${path}", whose certificate ${i + 1} is invalid: ${
          (err as Error).message
        }`,
      );
    }
  });
  return parsed[0]!;
}

function parseKey(path: string, text: string): KeyObject {
  try {
    return createPrivateKey(text);
  } catch (err) {
    // The message never quotes the key itself.
    throw new ConfigError(
      `"MQTT_KEY_FILE" names "${path}", which holds no usable private key (${
        (err as Error).message
      }; encrypted keys are not supported)`,
    );
  }
}

/** Reads and checks the configured files (parsed, key matches certificate); none gives `{}`. */
export async function readTlsFiles(mqtt: Config["mqtt"]): Promise<TlsFiles> {
  const files: TlsFiles = {};
  if (mqtt.caFile) {
    files.ca = await readPem("MQTT_CA_FILE", mqtt.caFile, /CERTIFICATE/);
    parseCertificates("MQTT_CA_FILE", mqtt.caFile, files.ca);
  }
  if (mqtt.certFile) {
    files.cert = await readPem("MQTT_CERT_FILE", mqtt.certFile, /CERTIFICATE/);
  }
  if (mqtt.keyFile) files.key = await readPem("MQTT_KEY_FILE", mqtt.keyFile, /PRIVATE KEY/);
  if (mqtt.certFile && files.cert) {
    const cert = parseCertificates("MQTT_CERT_FILE", mqtt.certFile, files.cert);
    if (mqtt.keyFile && files.key) {
      const key = parseKey(mqtt.keyFile, files.key);
      if (!cert.checkPrivateKey(key)) {
        throw new ConfigError(
          `"MQTT_KEY_FILE" names "${mqtt.keyFile}", which is not the key of the certificate ` +
            `in "MQTT_CERT_FILE" ("${mqtt.certFile}")`,
        );
      }
    }
  }
  return files;
}
