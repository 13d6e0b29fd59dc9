/**
 * API tokens: from `API_TOKENS`, or one generated at first start and kept in
 * `DATA_DIR/api-token` (mode 0600).
 */
import type { Logger } from "../core/log.ts";

/** Options for {@linkcode resolveApiTokens}. */
export interface TokenOptions {
  configured: string[] | undefined;
  dataDir: string;
  log: Logger;
  /** Where the generated token is shown once; stdout by default. */
  announce?: (token: string, path: string) => void;
}

/**
 * Returns the tokens to accept. A generated token is printed only when it is created, so it
 * appears once in a service log rather than at every start.
 */
export async function resolveApiTokens(options: TokenOptions): Promise<string[]> {
  const { configured, dataDir, log, announce = printToken } = options;
  if (configured) return configured;
  const path = `${dataDir.replace(/\/$/, "")}/api-token`;
  try {
    const token = (await Deno.readTextFile(path)).trim();
    if (token.length >= 16) {
      log.info("Using the API token stored in DATA_DIR", { path });
      return [token];
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  await Deno.mkdir(dataDir, { recursive: true, mode: 0o700 });
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  try {
    await Deno.writeTextFile(path, token + "\n", { mode: 0o600, createNew: true });
  } catch (err) {
    // Another process created it first: use theirs.
    if (err instanceof Deno.errors.AlreadyExists) return [(await Deno.readTextFile(path)).trim()];
    throw err;
  }
  await Deno.chmod(path, 0o600);
  announce(token, path);
  return [token];
}

function printToken(token: string, path: string): void {
  console.log(`bosun: generated API token (stored in ${path}, shown only now):\n${token}`);
}
