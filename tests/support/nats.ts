/**
 * A three-node NATS cluster of the test's own, with JetStream and MQTT, built from the
 * configuration shipped in deploy/nats/ (nats.conf and users.conf) with loopback ports, a temp
 * store per node and test passwords put in. Nodes can be killed (-9) and restarted one by one.
 */
import { freePort, waitForPort } from "./ports.ts";
import { waitUntil } from "./wait.ts";

const DEPLOY = new URL("../../deploy/nats/", import.meta.url);
const NATS_SERVER = "nats-server";

/** Options for {@linkcode startNatsCluster}. */
export interface NatsClusterOptions {
  /** Vessel users to create, each from the vessel template block of users.conf. */
  vessels?: string[];
  /** How long the cluster may take to form and elect a JetStream leader. */
  readyTimeoutMs?: number;
  /** Settings of the `mqtt` block put in place of the shipped ones (a bench's variants). */
  mqtt?: Record<string, string>;
}

/** One node of the cluster. */
export interface NatsNode {
  name: string;
  /** `mqtt://127.0.0.1:<port>`. */
  mqttUrl: string;
  mqttPort: number;
  clientPort: number;
  clusterPort: number;
  /** The monitoring port (/healthz, /jsz, /routez). */
  httpPort: number;
  /** True while its process runs. */
  readonly running: boolean;
}

/** A running cluster. */
export interface NatsCluster {
  nodes: NatsNode[];
  /** The MQTT password of each user ("bosun.shore" and every vessel). */
  passwords: Record<string, string>;
  /** kill -9 of node `i`, as a crash. */
  kill(i: number): Promise<void>;
  /** Starts node `i` again with the same configuration and store. */
  restart(i: number): Promise<void>;
  /**
   * Waits until every running node routes to the others, JetStream's meta group and every
   * stream have a running leader, and (with all nodes up, unless `replicasCurrent` is false)
   * /healthz says every replica is current. After a restart nats-server 2.9.10 sometimes
   * leaves a consumer replica on the restarted node behind for minutes (its leader answers
   * "possibly beyond our last index"), so a test that needs the node serving, not every
   * replica caught up, passes `replicasCurrent: false`.
   */
  waitReady(timeoutMs?: number, options?: { replicasCurrent?: boolean }): Promise<void>;
  /** The node that leads JetStream stream `stream` (e.g. "$MQTT_msgs"), by index. */
  streamLeader(stream: string): Promise<number | undefined>;
  /** Every node's log so far, the last 40 lines of each (for a failing test's message). */
  logs(): Promise<string>;
  /** The whole log of node `i`. */
  log(i: number): Promise<string>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The shore's MQTT user name in users.conf. */
export const SHORE_USER = "bosun.shore";

/** Replaces `from` by `to` in `text`, and throws if the template no longer holds `from`. */
function replaceOnce(text: string, from: string | RegExp, to: string, what: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`deploy/nats template changed: ${what} not found`);
  return out;
}

/**
 * users.conf with the shipped vessels replaced by `vessels`, each one a copy of the block
 * between "# BEGIN vessel" and "# END vessel" with its id put in, and every password given
 * literally (the shipped file reads them from the environment).
 */
export function natsUsersConf(
  template: string,
  vessels: string[],
  passwords: Record<string, string>,
): string {
  const begin = template.indexOf("    # BEGIN vessel");
  const endMarker = template.indexOf("    # END vessel");
  const close = template.lastIndexOf("\n  ]\n}");
  if (begin < 0 || endMarker < 0 || close < endMarker) {
    throw new Error("deploy/nats/users.conf: vessel template markers or users list not found");
  }
  const block = template.slice(template.indexOf("\n", begin) + 1, endMarker);
  const vesselBlocks = vessels.map((id) =>
    replaceOnce(block, /password: \$VESSEL_1_PASSWORD/, `password: "${passwords[id]}"`, "password")
      .replaceAll('"vessel-1"', JSON.stringify(id))
      .replaceAll("vessel.vessel-1.", `vessel.${id}.`)
  );
  const head = replaceOnce(
    template.slice(0, begin),
    /password: \$BOSUN_SHORE_PASSWORD/,
    `password: "${passwords[SHORE_USER]}"`,
    "shore password",
  );
  return head + vesselBlocks.join("\n") + template.slice(close);
}

/** nats.conf for one node on loopback ports, routing to `routes` (cluster ports). */
function nodeConf(template: string, node: NatsNode, store: string, routes: number[]): string {
  let conf = template;
  conf = replaceOnce(conf, "server_name: $NATS_SERVER_NAME", `server_name: ${node.name}`, "name");
  conf = replaceOnce(conf, "listen: 0.0.0.0:4222", `listen: 127.0.0.1:${node.clientPort}`, "4222");
  conf = replaceOnce(conf, "http: 127.0.0.1:8222", `http: 127.0.0.1:${node.httpPort}`, "8222");
  conf = replaceOnce(conf, /store_dir: "[^"]*"/, `store_dir: "${store}"`, "store_dir");
  conf = replaceOnce(conf, "listen: 0.0.0.0:6222", `listen: 127.0.0.1:${node.clusterPort}`, "6222");
  conf = replaceOnce(conf, "listen: 0.0.0.0:1883", `listen: 127.0.0.1:${node.mqttPort}`, "1883");
  conf = replaceOnce(
    conf,
    /routes: \[[^\]]*\]/,
    `routes: [\n${routes.map((p) => `    nats-route://127.0.0.1:${p}`).join("\n")}\n  ]`,
    "routes",
  );
  return conf;
}

/** Fetches a monitoring endpoint of a node as JSON. */
async function monitor<T>(port: number, path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    signal: AbortSignal.timeout(2_000),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`${path} on ${port}: ${res.status} ${body}`);
  return JSON.parse(body) as T;
}

/** Starts three nats-server processes that form one cluster, and waits until it is ready. */
export async function startNatsCluster(options: NatsClusterOptions = {}): Promise<NatsCluster> {
  const { vessels = ["vessel-1", "vessel-2"], readyTimeoutMs = 30_000 } = options;
  const dir = await Deno.makeTempDir({ prefix: "bosun-nats-" });
  const passwords: Record<string, string> = {};
  for (const user of [SHORE_USER, ...vessels]) passwords[user] = crypto.randomUUID();
  const usersConf = natsUsersConf(
    await Deno.readTextFile(new URL("users.conf", DEPLOY)),
    vessels,
    passwords,
  );
  const template = await Deno.readTextFile(new URL("nats.conf", DEPLOY));

  const children: (Deno.ChildProcess | undefined)[] = [];
  const nodes: NatsNode[] = [0, 1, 2].map((i) => ({
    name: `nats-${i + 1}`,
    mqttPort: 0,
    mqttUrl: "",
    clientPort: freePort(),
    clusterPort: freePort(),
    httpPort: freePort(),
    get running() {
      return children[i] !== undefined;
    },
  }));
  for (const node of nodes) {
    node.mqttPort = freePort();
    node.mqttUrl = `mqtt://127.0.0.1:${node.mqttPort}`;
  }
  const confs: string[] = [];
  for (const [i, node] of nodes.entries()) {
    const nodeDir = `${dir}/${node.name}`;
    await Deno.mkdir(`${nodeDir}/store`, { recursive: true });
    await Deno.writeTextFile(`${nodeDir}/users.conf`, usersConf);
    let conf = nodeConf(template, node, `${nodeDir}/store`, nodes.map((n) => n.clusterPort));
    for (const [key, value] of Object.entries(options.mqtt ?? {})) {
      const line = new RegExp(`^  ${key}: .*$`, "m");
      if (!line.test(conf)) throw new Error(`deploy/nats/nats.conf sets no mqtt ${key}`);
      conf = conf.replace(line, `  ${key}: ${value}`);
    }
    confs[i] = `${nodeDir}/nats.conf`;
    await Deno.writeTextFile(confs[i]!, conf);
  }

  const launch = async (i: number) => {
    const node = nodes[i]!;
    // The log goes to a file, so a full pipe can never stall the server and a failing test
    // can quote it.
    children[i] = new Deno.Command(NATS_SERVER, {
      args: ["-c", confs[i]!, "-l", `${dir}/${node.name}/nats.log`],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(node.httpPort, readyTimeoutMs);
  };
  const halt = async (i: number, signal: Deno.Signal) => {
    const child = children[i];
    if (!child) return;
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
    await child.status;
    children[i] = undefined;
  };
  const log = (i: number) => Deno.readTextFile(`${dir}/${nodes[i]!.name}/nats.log`).catch(() => "");
  const logs = async () => {
    const parts = await Promise.all(nodes.map(async (n) => {
      const text = await Deno.readTextFile(`${dir}/${n.name}/nats.log`).catch(() => "");
      return `---- ${n.name}\n${text.split("\n").slice(-40).join("\n")}`;
    }));
    return parts.join("\n");
  };

  /** Why the cluster is not ready yet, or undefined when it is. */
  const notReady = async (replicasCurrent: boolean): Promise<string | undefined> => {
    const up = nodes.filter((n) => n.running);
    const running = new Set(up.map((n) => n.name));
    for (const node of up) {
      try {
        const routez = await monitor<{ num_routes: number }>(node.httpPort, "/routez");
        if (routez.num_routes < up.length - 1) {
          return `${node.name} has ${routez.num_routes} routes of ${up.length - 1}`;
        }
        // After a kill, the survivors go on naming the dead node as leader until they elect
        // another: a leader must be a running node.
        type Jsz = {
          meta_cluster?: { leader?: string };
          account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
        };
        const jsz = await monitor<Jsz>(node.httpPort, "/jsz?accounts=true&streams=true");
        const leader = jsz.meta_cluster?.leader;
        if (!leader || !running.has(leader)) {
          return `${node.name} sees JetStream meta leader "${leader ?? ""}"`;
        }
        for (const stream of jsz.account_details?.flatMap((a) => a.stream_detail ?? []) ?? []) {
          const l = stream.cluster?.leader;
          if (!l || !running.has(l)) return `stream ${stream.name} has leader "${l ?? ""}"`;
        }
        // /healthz also wants every replica current, which cannot be while a node is down.
        if (replicasCurrent && up.length === nodes.length) {
          const health = await monitor<{ status: string }>(node.httpPort, "/healthz");
          if (health.status !== "ok") return `${node.name} health ${JSON.stringify(health)}`;
        }
      } catch (err) {
        return `${node.name}: ${(err as Error).message}`;
      }
    }
    return undefined;
  };
  const waitReady = async (timeoutMs = readyTimeoutMs, { replicasCurrent = true } = {}) => {
    let why: string | undefined;
    const ready = async () => (why = await notReady(replicasCurrent)) === undefined;
    await waitUntil(ready, "the NATS cluster is ready", timeoutMs, 200).catch(
      async (err: Error) => {
        throw new Error(`${err.message}: ${why}\n${await logs()}`);
      },
    );
    for (const node of nodes.filter((n) => n.running)) await waitForPort(node.mqttPort, timeoutMs);
  };

  const cluster: NatsCluster = {
    nodes,
    passwords,
    kill: (i) => halt(i, "SIGKILL"),
    restart: (i) => launch(i),
    waitReady,
    async streamLeader(stream) {
      for (const node of nodes.filter((n) => n.running)) {
        type Jsz = {
          account_details?: { stream_detail?: { name: string; cluster?: { leader?: string } }[] }[];
        };
        const jsz = await monitor<Jsz>(node.httpPort, "/jsz?accounts=true&streams=true")
          .catch(() => undefined);
        for (const account of jsz?.account_details ?? []) {
          const found = account.stream_detail?.find((s) => s.name === stream);
          const leader = found?.cluster?.leader;
          if (leader) return nodes.findIndex((n) => n.name === leader);
        }
      }
      return undefined;
    },
    logs,
    log,
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((_, i) => halt(i, "SIGKILL")));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await Promise.all(nodes.map((_, i) => launch(i)));
    await waitReady();
  } catch (err) {
    await cluster[Symbol.asyncDispose]();
    throw err;
  }
  return cluster;
}
