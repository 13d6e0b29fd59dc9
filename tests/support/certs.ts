/**
 * Test certificates made with openssl at test time (nothing is committed): a CA, a server
 * certificate for 127.0.0.1 and localhost, and client certificates whose CN is the MQTT
 * username (for mutual TLS with `use_identity_as_username`).
 */

/** Paths of a generated PKI; every key is unencrypted PEM. */
export interface TestPki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  /** Client certificate and key per CN. */
  clients: Record<string, { cert: string; key: string }>;
  [Symbol.asyncDispose](): Promise<void>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function issue(
  dir: string,
  name: string,
  cn: string,
  ca: { cert: string; key: string },
  ext: string,
): Promise<{ cert: string; key: string }> {
  const key = `${dir}/${name}.key`;
  const cert = `${dir}/${name}.crt`;
  await Deno.writeTextFile(`${dir}/${name}.ext`, ext);
  await openssl(
    ["req", ...EC, "-keyout", key, "-out", `${dir}/${name}.csr`, "-subj", `/CN=${cn}`],
    dir,
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    `${dir}/${name}.csr`,
    "-CA",
    ca.cert,
    "-CAkey",
    ca.key,
    "-CAcreateserial",
    "-days",
    "2",
    "-out",
    cert,
    "-extfile",
    `${dir}/${name}.ext`,
  ], dir);
  return { cert, key };
}

/** A self-signed CA with its own key, for certificates the broker must refuse. */
async function makeCa(dir: string, name: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/${name}.crt`;
  const key = `${dir}/${name}.key`;
  await openssl([
    "req",
    "-x509",
    ...EC,
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    `/CN=bosun test ${name}`,
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign,cRLSign",
  ], dir);
  return { cert, key };
}

/**
 * Generates a CA, a server certificate and one client certificate per `clientCns`, plus
 * `rogue:<cn>` clients signed by a second CA the broker does not trust. Files are readable by
 * all so that a Mosquitto started as root (which drops to the `mosquitto` user) can read them.
 */
export async function makeTestPki(clientCns: string[]): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "bosun-pki-" });
  await Deno.chmod(dir, 0o755);
  const ca = await makeCa(dir, "ca");
  const rogueCa = await makeCa(dir, "rogue-ca");
  const server = await issue(
    dir,
    "server",
    "localhost",
    ca,
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n" +
      "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
  );
  const clientExt = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n" +
    "extendedKeyUsage=clientAuth\n";
  const clients: TestPki["clients"] = {};
  for (const [i, cn] of clientCns.entries()) {
    clients[cn] = await issue(dir, `client-${i}`, cn, ca, clientExt);
    clients[`rogue:${cn}`] = await issue(dir, `rogue-${i}`, cn, rogueCa, clientExt);
  }
  for await (const entry of Deno.readDir(dir)) await Deno.chmod(`${dir}/${entry.name}`, 0o644);
  return {
    dir,
    caCert: ca.cert,
    caKey: ca.key,
    serverCert: server.cert,
    serverKey: server.key,
    clients,
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
