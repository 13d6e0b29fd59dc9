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
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `nats-server` with JetStream and MQTT on free ports and waits until MQTT listens. */
export async function startNatsMqtt(): Promise<NatsNode> {
  const dir = await Deno.makeTempDir({ prefix: "bosun-nats-" });
  const [clientPort, mqttPort] = [freePort(), freePort()];
  const conf = `${dir}/nats.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `server_name: bosun_t_${clientPort}`,
      `listen: 127.0.0.1:${clientPort}`,
      `jetstream { store_dir: "${dir}/js" }`,
      `mqtt { listen: 127.0.0.1:${mqttPort} }`,
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
    async [Symbol.asyncDispose]() {
      await kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
