/**
 * One `nats-server` of the test's own serving MQTT 3.1.1 (JetStream holds its sessions and
 * retained messages), on free loopback ports, that the test may kill -9 and restart.
 */
import { freePort, waitForPort } from "./ports.ts";

/** A running NATS node with its MQTT listener. */
export interface NatsNode {
  /** `mqtt://127.0.0.1:<port>`. */
  url: string;
  kill(): Promise<void>;
  restart(): Promise<void>;
  /** Writes `name` next to its configuration (for an `include`), e.g. before a reload. */
  writeFile(name: string, text: string): Promise<void>;
  /** SIGHUP: nats-server reads its configuration again (users and permissions included). */
  reload(): void;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Options for {@linkcode startNatsMqtt}. */
export interface NatsMqttOptions {
  /** Lines appended to the configuration (e.g. `include ./auth.conf`). */
  extraConfig?: string;
  /** Files written next to the configuration before the start, by name. */
  files?: Record<string, string>;
}

/** Starts `nats-server` with JetStream and MQTT on free ports and waits until MQTT listens. */
export async function startNatsMqtt(options: NatsMqttOptions = {}): Promise<NatsNode> {
  const dir = await Deno.makeTempDir({ prefix: "bosun-nats-" });
  for (const [name, text] of Object.entries(options.files ?? {})) {
    await Deno.writeTextFile(`${dir}/${name}`, text);
  }
  const [clientPort, mqttPort] = [freePort(), freePort()];
  const conf = `${dir}/nats.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `server_name: bosun_t_${clientPort}`,
      `listen: 127.0.0.1:${clientPort}`,
      `jetstream { store_dir: "${dir}/js" }`,
      `mqtt { listen: 127.0.0.1:${mqttPort} }`,
      options.extraConfig ?? "",
    ].join("\n"),
  );
  let child: Deno.ChildProcess | undefined;
  const launch = async () => {
    child = new Deno.Command("nats-server", { args: ["-c", conf], stdout: "null", stderr: "null" })
      .spawn();
    await waitForPort(mqttPort, 20_000);
  };
  const kill = async () => {
    if (!child) return;
    try {
      child.kill("SIGKILL");
    } catch {
      // already gone
    }
    await child.status;
    child = undefined;
  };
  await launch();
  return {
    url: `mqtt://127.0.0.1:${mqttPort}`,
    kill,
    async restart() {
      await kill();
      await launch();
    },
    writeFile: (name, text) => Deno.writeTextFile(`${dir}/${name}`, text),
    reload: () => child?.kill("SIGHUP"),
    async [Symbol.asyncDispose]() {
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
