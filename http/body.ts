/**
 * The one place a request's JSON body is read: 415 when it is not JSON, 400 when its bytes
 * are not UTF-8 or do not parse.
 */
import type { Context } from "hono";
import { HttpError } from "../core/errors.ts";

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

// `fatal`: a byte that is not UTF-8 refuses the body. The default decoder (and so
// `c.req.text()` / `c.req.json()`) turns it into U+FFFD, and the record was stored with a
// character the client never sent.
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Reads the request body as JSON; the caller validates its shape. */
export async function readJson(c: Context): Promise<unknown> {
  const type = c.req.header("content-type") ?? "";
  if (!JSON_TYPE.test(type)) {
    throw new HttpError(415, "unsupported_media_type", "Body must be application/json");
  }
  let text: string;
  try {
    text = decoder.decode(await c.req.arrayBuffer());
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw new HttpError(400, "invalid_encoding", "Body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "invalid_json", `Body is not valid JSON: ${(err as Error).message}`);
  }
}
