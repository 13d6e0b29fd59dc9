/**
 * The embedded database's first start from a template instead of initdb.
 *
 * PGlite creates a new data directory by running initdb in WebAssembly, which took 20–40 s
 * on this machine (docs/first-start.md); loading the same freshly initialised directory from
 * a tar archive (PGlite's `loadDataDir`) took about 4 s. `pglite-template.tar.br` is that
 * archive (an empty cluster as `PGlite.create()` leaves it, before any bosun migration;
 * brotli, 40 MB of mostly empty pages in ~1.4 MB), made by running this file:
 * `deno task pglite-template`. A template PGlite cannot open (an upgrade changed its
 * PostgreSQL) is set aside and initdb runs as before, so a stale template costs time, never data.
 */
import { promisify } from "node:util";
import zlib from "node:zlib";
import { PGlite } from "@electric-sql/pglite";
import type { Logger } from "../core/log.ts";

const TEMPLATE = new URL("./pglite-template.tar.br", import.meta.url);

/** True when `path` holds no PostgreSQL data directory yet. */
export async function isFresh(path: string): Promise<boolean> {
  try {
    await Deno.stat(`${path}/PG_VERSION`);
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return true;
    throw err;
  }
}

/** Opens PGlite at `path`, creating it from the template when it does not exist yet. */
export async function openPglite(path: string, log: Logger): Promise<PGlite> {
  if (!await isFresh(path)) return await PGlite.create(path);
  let tar: Uint8Array | undefined;
  try {
    tar = await promisify(zlib.brotliDecompress)(await Deno.readFile(TEMPLATE));
  } catch (err) {
    log.warn("No database template, running initdb", { error: err });
  }
  if (tar) {
    try {
      const db = await PGlite.create(path, { loadDataDir: new Blob([tar as BlobPart]) });
      await db.query("select 1");
      return db;
    } catch (err) {
      log.warn("Database template not usable with this PGlite, running initdb", { error: err });
      await Deno.remove(path, { recursive: true }).catch(() => {});
    }
  }
  return await PGlite.create(path);
}

if (import.meta.main) {
  const db = await PGlite.create();
  const dump = await db.dumpDataDir("none");
  await db.close();
  const tar = new Uint8Array(await dump.arrayBuffer());
  const packed = zlib.brotliCompressSync(tar, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
      [zlib.constants.BROTLI_PARAM_LGWIN]: 24,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: tar.length,
    },
  });
  await Deno.writeFile(TEMPLATE, packed);
  console.log(`${TEMPLATE.pathname}: ${tar.length} bytes of tar in ${packed.length}`);
}
