/**
 * A real Mosquitto of the test's own, on a free port, that the test may kill and restart
 * (with or without its persistence file).
 */
import { freePort, waitForPort } from "./ports.ts";

/** Options for {@linkcode startMosquitto}. */
export interface MosquittoOptions {
  port?: number;
  /** Keep a persistence file in this directory (a broker that survives restarts). */
  persistenceDir?: string;
  /** Extra lines appended to the generated configuration. */
  extraConfig?: string;
  /** A complete configuration file to use instead of the generated one. */
  configFile?: string;
}

/** A running broker. */
export interface Mosquitto {
  port: number;
  url: string;
  /** kill -9, as a crash. */
  kill(): Promise<void>;
  /** Stops it with SIGTERM (Mosquitto writes its persistence file). */
  stop(): Promise<void>;
  /** Starts it again on the same port with the same configuration. */
  restart(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts `mosquitto` on a free port (or the one given) and waits until it listens. */
export async function startMosquitto(options: MosquittoOptions = {}): Promise<Mosquitto> {
  const port = options.port ?? freePort();
  const dir = await Deno.makeTempDir({ prefix: "bosun-mosq-" });
  let configFile = options.configFile;
  if (!configFile) {
    configFile = `${dir}/mosquitto.conf`;
    const lines = [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "max_queued_messages 0",
      "max_inflight_messages 0",
      "log_dest none",
    ];
    if (options.persistenceDir) {
      // Started as root, Mosquitto drops to its own user: a root-only directory would leave it
      // silently without persistence (the chaos suite and the outage bench both hit this).
      await Deno.chmod(options.persistenceDir, 0o777);
      lines.push("persistence true", `persistence_location ${options.persistenceDir}/`);
    } else {
      lines.push("persistence false");
    }
    if (options.extraConfig) lines.push(options.extraConfig);
    await Deno.writeTextFile(configFile, lines.join("\n") + "\n");
  }
  let child: Deno.ChildProcess | undefined;
  const launch = async () => {
    child = new Deno.Command("mosquitto", {
      args: ["-c", configFile!],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port);
  };
  const halt = async (signal: Deno.Signal) => {
    if (!child) return;
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
    await child.status;
    child = undefined;
  };
  await launch();
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    kill: () => halt("SIGKILL"),
    stop: () => halt("SIGTERM"),
    restart: launch,
    async [Symbol.asyncDispose]() {
      await halt("SIGKILL");
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
