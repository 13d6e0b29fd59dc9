/**
 * Graceful stop for the HTTP listener.
 *
 * `Deno.serve`'s `shutdown()` lets a request finish once its body has arrived, but cuts the
 * body of one still uploading. So a stop first drains: requests already being handled run to
 * the end, new ones are refused with `503` and `Connection: close`, and only then is the
 * listener shut.
 */
import { errorBody, HttpError } from "../core/errors.ts";

/** A fetch handler as `Deno.serve` takes it. */
export type FetchHandler = (
  req: Request,
  info: Deno.ServeHandlerInfo,
) => Response | Promise<Response>;

/** Counts in-flight requests and refuses new ones once draining. */
export class Drain {
  #inFlight = 0;
  #draining = false;
  #idle: (() => void) | undefined;

  /** Requests being handled right now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Wraps `handler` so that every request is counted. */
  wrap(handler: FetchHandler): FetchHandler {
    return async (req, info) => {
      if (this.#draining) return refusal();
      this.#inFlight++;
      try {
        return await handler(req, info);
      } finally {
        if (--this.#inFlight === 0) this.#idle?.();
      }
    };
  }

  /** Refuses new requests and resolves once none is in flight, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.#draining = true;
    if (this.#inFlight === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((resolve) => this.#idle = resolve),
      new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs)),
    ]);
    clearTimeout(timer);
  }
}

function refusal(): Response {
  const body = errorBody(new HttpError(503, "shutting_down", "The gateway is stopping"));
  return Response.json(body, {
    status: 503,
    headers: { "Connection": "close", "Retry-After": "5" },
  });
}
