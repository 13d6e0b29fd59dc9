/**
 * A PostgreSQL server of the test's own (initdb in a temp directory, on a free port) that the
 * test may stop and start, for "the database goes away" scenarios the shared server must
 * never be put through.
 */
import { freePort } from "./ports.ts";

/** A private PostgreSQL server. */
export interface PgServer {
  port: number;
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  url: string;
  start(): Promise<void>;
  /** `immediate`: as a crash; `fast`: a clean shutdown. */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

function binDir(): string {
  const versions = [...Deno.readDirSync("/usr/lib/postgresql")].map((e) => e.name)
    .sort((a, b) => Number(a) - Number(b));
  if (!versions.length) throw new Error("No PostgreSQL server under /usr/lib/postgresql");
  return `/usr/lib/postgresql/${versions.at(-1)}/bin`;
}

/** Runs a PostgreSQL program, as the postgres user when this process is root (initdb refuses root). */
async function run(program: string, args: string[]): Promise<void> {
  const asRoot = Deno.uid() === 0;
  const cmd = asRoot ? "runuser" : program;
  const out = await new Deno.Command(cmd, {
    args: asRoot ? ["-u", "postgres", "--", program, ...args] : args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    throw new Error(`${program} ${args.join(" ")} failed: ${text}`);
  }
}

/** Creates a cluster on a free port; `started: false` leaves it stopped. */
export async function createPgServer(
  options: {
    started?: boolean;
    fsync?: boolean;
    /** pg_hba.conf lines put ahead of initdb's `trust` ones (a role that needs a password). */
    hba?: string[];
  } = {},
): Promise<PgServer> {
  // fsync off by default: tests want speed; a bench wants commits that cost what they cost.
  const { started = true, fsync = false, hba = [] } = options;
  const bin = binDir();
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "bosun-pg-" });
  if (Deno.uid() === 0) {
    await new Deno.Command("chown", { args: ["postgres", dir], stdout: "null" }).output();
  }
  await run(`${bin}/initdb`, ["-D", `${dir}/data`, "-A", "trust", "-U", "postgres", "-E", "UTF8"]);
  if (hba.length) {
    const conf = `${dir}/data/pg_hba.conf`;
    await Deno.writeTextFile(conf, hba.join("\n") + "\n" + await Deno.readTextFile(conf));
  }
  let running = false;
  const start = async () => {
    await run(`${bin}/pg_ctl`, [
      "start",
      "-w",
      "-D",
      `${dir}/data`,
      "-l",
      `${dir}/log`,
      "-o",
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=${fsync ? "on" : "off"}`,
    ]);
    running = true;
  };
  const stop = async (mode: "fast" | "immediate" = "fast") => {
    if (!running) return;
    await run(`${bin}/pg_ctl`, ["stop", "-w", "-m", mode, "-D", `${dir}/data`]);
    running = false;
  };
  if (started) await start();
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start,
    stop,
    async [Symbol.asyncDispose]() {
      await stop("immediate").catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
