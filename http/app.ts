/**
 * The HTTP application: middleware, authentication, the one error mapper, and the route
 * sub-apps handed in by `main.ts`.
 */
import { Hono, type MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import { cors } from "hono/cors";
import { secureHeaders } from "hono/secure-headers";
import { requestId } from "hono/request-id";
import { errorBody, HttpError, OutboxFullError, toHttpError } from "../core/errors.ts";
import { isEntity } from "../core/entities.ts";
import type { Logger } from "../core/log.ts";
import { bodyReader } from "./body.ts";
import type { Metrics } from "../core/metrics.ts";

/** The largest request body accepted (README, "HTTP API"). */
export const MAX_BODY_BYTES = 1024 * 1024;

/** What the application is built from. */
export interface AppDeps {
  log: Logger;
  metrics: Metrics;
  tokens: string[];
  /** Mounted under `/api`, behind the bearer token. */
  /** Mounted under `/api` one by one (a sub-app nesting others would blur which methods a
   * path takes: Hono then matches `GET /:entity` for `/:entity/:id`). */
  api: Hono[];
  /** Mounted under `/catchup`, behind the bearer token (vessel role). */
  catchup?: Hono;
  health: Hono;
  metricsRoute: Hono;
  /** `GET /`, the status page (routes/status.ts). */
  statusPage?: Hono;
  /** The OpenAPI document, built on first request (`GET /openapi.json`, open). */
  openapi?: () => unknown;
  /** Origins a browser may call from (`CORS_ORIGINS`); none means no CORS headers at all. */
  corsOrigins?: string[];
}

type Env = { Variables: { requestId: string } };

const METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Builds the Hono app; tests call `app.request()` on it without a socket. */
export function createApp(deps: AppDeps): Hono<Env> {
  const { log, metrics, tokens } = deps;
  const app = new Hono<Env>();

  const fail = (c: { json: (b: unknown, s: 401) => Response }) =>
    c.json(errorBody(new HttpError(401, "unauthorized", "Missing or invalid bearer token")), 401);
  // One answer for every failure, body and WWW-Authenticate alike (Hono's defaults differ per
  // case), so a caller learns nothing about which part was wrong.
  const challenge = 'Bearer realm="bosun"';
  const auth = bearerAuth({
    // Hono's default comparison hashes both sides with crypto.subtle on every request, which
    // measured ~40 µs of a ~100 µs create (bench/write.ts); a byte-wise constant-time
    // comparison is as safe and costs well under a microsecond.
    verifyToken: tokenVerifier(tokens),
    noAuthenticationHeader: { message: fail, wwwAuthenticateHeader: challenge },
    invalidAuthenticationHeader: { message: fail, wwwAuthenticateHeader: challenge },
    invalidToken: { message: fail, wwwAuthenticateHeader: challenge },
  });
  // Size, concurrency and time bounds on every body read (http/body.ts).
  const limit = bodyReader({ maxBytes: MAX_BODY_BYTES });

  app.use(requestId());
  app.use(secureHeaders());
  app.use(async (c, next) => {
    const started = performance.now();
    await next();
    // The pattern without its parameter constraints: "/api/:entity", as before they existed.
    const pattern = c.req.routePath.replace(/\{[^}]*\}/g, "");
    const route = (c.res.status === 404 || c.res.status === 405) && !pattern.includes(":")
      ? "unmatched"
      : pattern;
    // Any token is a valid HTTP method: a client inventing them must not grow the series.
    const method = METHODS.has(c.req.method) ? c.req.method : "other";
    metrics.httpRequests.inc({ method, route, status: String(c.res.status) });
    const fields: Record<string, unknown> = {
      requestId: c.get("requestId"),
      method: c.req.method,
      route,
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
      // Deno.serve hands its connection info over as the env (absent under app.request()).
      client: (c.env as Partial<Deno.ServeHandlerInfo<Deno.NetAddr>> | undefined)?.remoteAddr
        ?.hostname,
    };
    if (c.res.status >= 400) {
      fields.code = await errorCode(c.res);
      log.info("Request", fields);
    } else log.debug("Request", fields);
  });

  if (deps.corsOrigins?.length) app.use(allowOrigins(deps.corsOrigins));

  // Only bodies bosun reads are read: on a DELETE, Deno hands over an empty body stream, which
  // is left alone (reading it would only take a slot).
  const limitBodies: MiddlewareHandler = (c, next) =>
    c.req.method === "POST" || c.req.method === "PATCH" || c.req.method === "PUT"
      ? limit(c, next)
      : next();
  app.use("/api/*", auth, limitBodies);
  app.use("/catchup", auth, limitBodies);
  app.use("/catchup/*", auth, limitBodies);

  for (const api of deps.api) app.route("/api", api);
  if (deps.catchup) app.route("/catchup", deps.catchup);
  app.route("/health", deps.health);
  app.route("/metrics", deps.metricsRoute);
  if (deps.statusPage) app.route("/", deps.statusPage);
  if (deps.openapi) {
    let document: unknown;
    const build = deps.openapi;
    app.get("/openapi.json", (c) => c.json(document ??= build()));
  }

  app.notFound((c) => {
    // A path some route serves, with a method none of them does: 405 with what it takes.
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0) {
      c.header("Allow", allowed.join(", "));
      if (c.req.method === "OPTIONS") return c.body(null, 204);
      const method = c.req.method.slice(0, 20);
      const err = new HttpError(
        405,
        "method_not_allowed",
        `${method} is not allowed on ${c.req.path}; it takes ${allowed.join(", ")}`,
      );
      return c.json(errorBody(err), 405);
    }
    const entity = /^\/api\/([^/]*)(?:\/[^/]*)?$/.exec(c.req.path)?.[1];
    if (entity !== undefined && !isEntity(entity)) {
      const err = new HttpError(404, "unknown_entity", `No entity "${entity.slice(0, 100)}"`);
      return c.json(errorBody(err), 404);
    }
    const err = new HttpError(404, "not_found", `No route for ${c.req.method} ${c.req.path}`);
    return c.json(errorBody(err), 404);
  });

  app.onError((err, c) => {
    // Hono's own exceptions (the bearer middleware) carry a finished response.
    if (typeof (err as { getResponse?: unknown }).getResponse === "function") {
      return (err as unknown as { getResponse: () => Response }).getResponse();
    }
    const mapped = toHttpError(err);
    if (!mapped) {
      log.error("Unhandled error", {
        requestId: c.get("requestId"),
        route: c.req.routePath,
        error: err,
        stack: err.stack,
      });
      return c.json(errorBody(new HttpError(500, "internal", "Internal error")), 500);
    }
    // Each 503 is logged as what it is: an operator reading "Database unavailable" for a full
    // outbox looks for a database fault that is not there.
    const requestId = c.get("requestId");
    if (mapped instanceof OutboxFullError) {
      log.warn("Outbox full", { requestId, pending: mapped.pending, limit: mapped.limit });
    } else if (mapped.code === "database_unavailable") {
      log.warn("Database unavailable", { requestId, error: err });
    } else if (mapped.status === 503) {
      log.warn("Service unavailable", { requestId, code: mapped.code, error: err });
    }
    for (const [k, v] of Object.entries(mapped.headers)) c.header(k, v);
    return c.json(errorBody(mapped), mapped.status);
  });

  return app;
}

/** The `error.code` of an error answer (every one is JSON, core/errors.ts), for the log. */
async function errorCode(res: Response): Promise<string | undefined> {
  if (!res.headers.get("content-type")?.includes("json")) return undefined;
  try {
    const body = await res.clone().json();
    return typeof body?.error?.code === "string" ? body.error.code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CORS for `origins` only, before the token check (a preflight carries no token). Another
 * origin's preflight gets no CORS answer, so it goes on to the token check and fails there, and
 * every response varies by Origin, so a cache never hands one origin's answer to another.
 */
function allowOrigins(origins: string[]): MiddlewareHandler {
  const handler = cors({
    origin: origins,
    allowMethods: ["GET", "POST", "PATCH", "DELETE"],
    allowHeaders: ["Authorization", "Content-Type", "If-Match"],
    exposeHeaders: ["Location", "ETag", "Retry-After"],
    maxAge: 600,
  });
  return async (c, next) => {
    if (origins.includes(c.req.header("origin") ?? "")) return handler(c, next);
    await next();
    c.header("Vary", "Origin", { append: true });
  };
}

/** The methods bosun's routes are written for; HEAD follows GET, OPTIONS is answered here. */
const ROUTE_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/** The methods some route (not a middleware, which is registered for "ALL") serves `path` with. */
function allowedMethods(app: Hono<Env>, path: string): string[] {
  return ROUTE_METHODS.filter((method) =>
    app.router.match(method, path)[0].some(([[, route]]) => route.method !== "ALL")
  );
}

const encoder = new TextEncoder();

/**
 * Accepts a presented token equal to one of `tokens`, in time that depends only on the
 * presented token's length (every configured token is always compared in full).
 */
export function tokenVerifier(tokens: string[]): (presented: string) => boolean {
  const known = tokens.map((t) => encoder.encode(t));
  return (presented) => {
    const p = encoder.encode(presented);
    let ok = false;
    for (const k of known) {
      let diff = p.length ^ k.length;
      for (let i = 0; i < p.length; i++) diff |= p[i]! ^ (k[i % k.length] ?? 0);
      ok = ok || diff === 0;
    }
    return ok;
  };
}
