/**
 * Mosquitto started from the repository's own `mosquitto.conf` and `mosquitto.acl`, with
 * only ports and paths rewritten, so the tests prove the configuration that ships.
 */
import { fileURLToPath as fromFileUrl } from "node:url";
import { type Mosquitto, startMosquitto } from "./mosquitto.ts";
import { freePort, waitForPort } from "./ports.ts";
import type { TestPki } from "./certs.ts";

const CONF = fromFileUrl(new URL("../../mosquitto.conf", import.meta.url));
const ACL = fromFileUrl(new URL("../../mosquitto.acl", import.meta.url));

/** Options for {@linkcode startSecureMosquitto}. */
export interface SecureMosquittoOptions {
  pki: TestPki;
  /** username → password, written with `mosquitto_passwd -b`. */
  users: Record<string, string>;
  /** Uncomment `require_certificate` and `use_identity_as_username` on the TLS listener. */
  mutualTls?: boolean;
}

/** A running broker from the shipped configuration. */
export interface SecureMosquitto extends Mosquitto {
  /** `mqtt://127.0.0.1:<port>`: the loopback plain listener. */
  plainUrl: string;
  /** `mqtts://127.0.0.1:<port>`: the TLS listener. */
  tlsUrl: string;
  /** The configuration file actually used. */
  configFile: string;
}

/** Rewrites the values of whole-line directives; throws if the shipped file lacks one. */
export function templateConfig(text: string, values: Record<string, string>): string {
  let out = text;
  for (const [directive, value] of Object.entries(values)) {
    const re = new RegExp(`^${directive}( .*)?$`, "m");
    if (!re.test(out)) throw new Error(`mosquitto.conf has no "${directive}" line`);
    out = out.replace(re, value);
  }
  return out;
}

/** Starts Mosquitto from the shipped configuration on two free ports. */
export async function startSecureMosquitto(
  options: SecureMosquittoOptions,
): Promise<SecureMosquitto> {
  const { pki, users, mutualTls = false } = options;
  const dir = await Deno.makeTempDir({ prefix: "bosun-secmosq-" });
  // Mosquitto started as root drops to the `mosquitto` user: it must read and write here.
  await Deno.chmod(dir, 0o777);
  const passwd = `${dir}/passwd`;
  await Deno.writeTextFile(passwd, "");
  for (const [user, password] of Object.entries(users)) {
    const out = await new Deno.Command("mosquitto_passwd", {
      args: ["-b", passwd, user, password],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
  }
  await Deno.chmod(passwd, 0o644);
  const acl = `${dir}/mosquitto.acl`;
  await Deno.copyFile(ACL, acl);
  await Deno.chmod(acl, 0o644);

  const plainPort = freePort();
  const tlsPort = freePort();
  const values: Record<string, string> = {
    "listener 1883": `listener ${plainPort} 127.0.0.1`,
    "listener 8883": `listener ${tlsPort} 127.0.0.1`,
    "persistence_location": `persistence_location ${dir}/`,
    "password_file": `password_file ${passwd}`,
    "acl_file": `acl_file ${acl}`,
    "cafile": `cafile ${pki.caCert}`,
    "certfile": `certfile ${pki.serverCert}`,
    "keyfile": `keyfile ${pki.serverKey}`,
  };
  if (mutualTls) {
    values["#require_certificate"] = "require_certificate true";
    values["#use_identity_as_username"] = "use_identity_as_username true";
  }
  const configFile = `${dir}/mosquitto.conf`;
  await Deno.writeTextFile(configFile, templateConfig(await Deno.readTextFile(CONF), values));
  await Deno.chmod(configFile, 0o644);

  const broker = await startMosquitto({ port: plainPort, configFile });
  await waitForPort(tlsPort);
  return {
    ...broker,
    plainUrl: `mqtt://127.0.0.1:${plainPort}`,
    tlsUrl: `mqtts://127.0.0.1:${tlsPort}`,
    configFile,
    async restart() {
      await broker.restart();
      await waitForPort(tlsPort);
    },
    async [Symbol.asyncDispose]() {
      await broker[Symbol.asyncDispose]();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
