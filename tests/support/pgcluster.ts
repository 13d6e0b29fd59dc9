/**
 * A PostgreSQL cluster the test owns: `initdb` into a temp dir, trust auth, a free port and a
 * unix socket in that dir, so it can be stopped (fast or immediate), restarted and thrown away
 * without ever touching the machine's shared server.
 *
 * The binaries refuse to run as root; when the test runs as root, every command runs as the
 * `postgres` user through `runuser`, and the data dir is handed to that user.
 */
import { freePort } from "./ports.ts";

/** How `pg_ctl stop` shuts the server down (`immediate` is a crash: recovery at next start). */
export type StopMode = "fast" | "immediate";

/** Options for {@linkcode createPgCluster}. */
export interface PgClusterOptions {
  port?: number;
  /** Extra `-c name=value` settings for the server. */
  settings?: Record<string, string>;
  /** Databases to create once the server first starts. */
  databases?: string[];
}

/** A cluster on its own port. */
export interface PgCluster {
  port: number;
  dir: string;
  /** postgres://postgres@127.0.0.1:<port>/<dbname> */
  url(dbname: string): string;
  start(): Promise<void>;
  stop(mode?: StopMode): Promise<void>;
  restart(mode?: StopMode): Promise<void>;
  /** Whether the server was started and not stopped since. */
  readonly running: boolean;
  [Symbol.asyncDispose](): Promise<void>;
}

const BIN_DIRS = ["/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/bin"];

async function findBin(name: string): Promise<string> {
  for (const dir of BIN_DIRS) {
    try {
      await Deno.stat(`${dir}/${name}`);
      return `${dir}/${name}`;
    } catch {
      // try the next
    }
  }
  throw new Error(`No "${name}" found in ${BIN_DIRS.join(", ")}`);
}

const isRoot = () => Deno.uid() === 0;

async function run(bin: string, args: string[]): Promise<string> {
  const [cmd, argv] = isRoot() ? ["runuser", ["-u", "postgres", "--", bin, ...args]] : [bin, args];
  const out = await new Deno.Command(cmd, { args: argv, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${bin} ${args.join(" ")} failed (${out.code}): ${text}`);
  return text;
}

async function postgresId(flag: "-u" | "-g"): Promise<number> {
  const out = await new Deno.Command("id", { args: [flag, "postgres"], stdout: "piped" }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** Creates and starts a fresh cluster; dispose stops it and removes its directory. */
export async function createPgCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const port = options.port ?? freePort();
  const dir = await Deno.makeTempDir({ prefix: "bosun-pgc-" });
  if (isRoot()) {
    await Deno.chown(dir, await postgresId("-u"), await postgresId("-g"));
  }
  const data = `${dir}/data`;
  const initdb = await findBin("initdb");
  const pgCtl = await findBin("pg_ctl");
  await run(initdb, ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  // fsync off: the faults are process crashes and stops, never an OS crash, so the page cache
  // survives them and durability across them does not depend on fsync; it saves a shared
  // 2-core machine a lot of disk flushing.
  const settings: Record<string, string> = {
    listen_addresses: "127.0.0.1",
    port: String(port),
    unix_socket_directories: dir,
    fsync: "off",
    max_connections: "100",
    ...options.settings,
  };
  const opts = Object.entries(settings).map(([k, v]) => `-c ${k}=${v}`).join(" ");
  let running = false;

  const start = async () => {
    await run(pgCtl, [
      "-D",
      data,
      "-l",
      `${dir}/server.log`,
      "-o",
      opts,
      "-w",
      "-t",
      "60",
      "start",
    ]);
    running = true;
  };
  const stop = async (mode: StopMode = "fast") => {
    running = false;
    await run(pgCtl, ["-D", data, "-m", mode, "-w", "-t", "60", "stop"]);
  };
  const url = (dbname: string) => `postgres://postgres@127.0.0.1:${port}/${dbname}`;

  await start();
  for (const name of options.databases ?? []) {
    await run(await findBin("psql"), [
      "-h",
      dir,
      "-p",
      String(port),
      "-U",
      "postgres",
      "-d",
      "postgres",
      "-q",
      "-c",
      `create database "${name}"`,
    ]);
  }

  return {
    port,
    dir,
    url,
    start,
    stop,
    async restart(mode: StopMode = "fast") {
      await stop(mode);
      await start();
    },
    get running() {
      return running;
    },
    async [Symbol.asyncDispose]() {
      await run(pgCtl, ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
