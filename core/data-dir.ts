/**
 * `DATA_DIR`, where the embedded database and the generated token live: owned by one process
 * at a time, and kept owner-only.
 */
import { StartupError } from "./errors.ts";

/** The file in `DATA_DIR` whose lock says which process owns the directory. */
export const LOCK_FILE = "bosun.lock";

/** Who holds a `DATA_DIR`, as the holder wrote it into the lock file. */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

/** A claimed `DATA_DIR`; `release()` lets the next process have it. */
export interface DataDirLock {
  path: string;
  release(): void;
}

/**
 * Claims `dir` for this process, or throws a {@linkcode StartupError} naming the directory
 * and the process that holds it. Runs before anything under `dir` is opened: two gateways on
 * one embedded database both open it (PGlite takes no lock of its own), hand out the same
 * seq to different records and lose one of them at the next start.
 *
 * The claim is an flock(2) on `DATA_DIR/bosun.lock` (Deno's `FsFile.tryLockSync`), which the
 * kernel drops when the holder's process ends however it ends: a `kill -9` leaves the file
 * behind but not the lock, so the next start goes ahead (a pid file would have to guess
 * whether its pid is still the same process). The file's text only names the holder.
 */
export async function claimDataDir(dir: string): Promise<DataDirLock> {
  const root = dir.replace(/\/$/, "") || "/";
  await Deno.mkdir(root, { recursive: true, mode: 0o700 });
  const path = `${root}/${LOCK_FILE}`;
  // No truncate on open: the holder's text must survive a failed claimant's open.
  const file = await Deno.open(path, { read: true, write: true, create: true, mode: 0o600 });
  if (!file.tryLockSync(true)) {
    file.close();
    const holder = await readHolder(path);
    const who = holder
      ? `pid ${holder.pid} on host "${holder.host}", started ${holder.startedAt}`
      : "another process";
    throw new StartupError(
      `DATA_DIR "${root}" is in use by ${who}; stop it or give this gateway another DATA_DIR`,
    );
  }
  const holder: LockHolder = {
    pid: Deno.pid,
    host: Deno.hostname(),
    startedAt: new Date().toISOString(),
  };
  await file.truncate(0);
  await file.write(new TextEncoder().encode(JSON.stringify(holder) + "\n"));
  return {
    path,
    release() {
      // Closing the descriptor drops the flock; the file stays (removing it would race a
      // claimant that has it open already).
      try {
        file.close();
      } catch {
        // released already
      }
    },
  };
}

/** The holder's own description; it may be a moment from writing it (then a short wait). */
async function readHolder(path: string): Promise<LockHolder | undefined> {
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      const holder = JSON.parse(await Deno.readTextFile(path)) as LockHolder;
      if (typeof holder.pid === "number") return holder;
    } catch {
      // empty or half-written: the holder is writing it now
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return undefined;
}

/**
 * Sets every directory under `root` (itself included) to 0700 and every file to 0600, and
 * returns how many it had to change.
 *
 * The process umask (main.ts) covers what bosun creates, but not all that PGlite creates:
 * its file system layer writes new files through Deno's `writeFile` with an explicit mode
 * 0666, which Deno applies with a chmod that ignores the umask. Measured: a fresh embedded
 * database had 1,063 paths, its files all 0666 (PG_VERSION, the catalogs, the first WAL
 * segments); files PostgreSQL itself opens with 0600 stay 0600, but files it writes with
 * fopen() (pg_internal.init, statistics) come back 0666 on every rewrite. The 0700
 * directories already keep other users out; this walk, at open and at close, puts the files
 * back to what PostgreSQL on disk would have.
 */
export async function restrictToOwner(root: string): Promise<number> {
  let changed = 0;
  const visit = async (path: string, isDirectory: boolean) => {
    const want = isDirectory ? 0o700 : 0o600;
    try {
      const mode = (await Deno.lstat(path)).mode! & 0o777;
      if (mode !== want) {
        await Deno.chmod(path, want);
        changed++;
      }
      if (!isDirectory) return;
      for await (const entry of Deno.readDir(path)) {
        if (entry.isSymlink) continue; // a link's target is not ours to change
        await visit(`${path}/${entry.name}`, entry.isDirectory);
      }
    } catch (err) {
      // PostgreSQL removes temporary files while the walk runs.
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  };
  await visit(root.replace(/\/$/, "") || "/", true);
  return changed;
}
