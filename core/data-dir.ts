/**
 * `DATA_DIR`, where the embedded database and the generated token live: kept owner-only.
 */

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
