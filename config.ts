/**
 * The environment, parsed once into a resolved {@linkcode Config}.
 *
 * Every variable of the contract (§2) is listed here and nowhere else reads `Deno.env`.
 * An invalid value stops start-up with a message naming the variable and what it allows.
 */
import { z } from "zod";

const bool = (name: string) =>
  z.enum(["true", "false", "1", "0"], {
    error: `"${name}" must be "true" or "false"`,
  }).transform((v) => v === "true" || v === "1");

const int = (name: string, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z.string().regex(/^\d+$/, `"${name}" must be a whole number`).transform(Number).pipe(
    z.number().min(min, `"${name}" must be at least ${min}`).max(
      max,
      `"${name}" must be at most ${max}`,
    ),
  );

const optionalText = z.string().min(1).optional();

const brokerUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return (u.protocol === "mqtt:" || u.protocol === "mqtts:") && u.hostname !== "";
  } catch {
    return false;
  }
}, '"MQTT_BROKER_URL" must be an mqtt:// or mqtts:// URL with a host');

const databaseUrl = z.string().refine((v) => {
  try {
    const u = new URL(v);
    return u.protocol === "postgres:" || u.protocol === "postgresql:";
  } catch {
    return false;
  }
}, '"DATABASE_URL" must be a postgres:// or postgresql:// URL').optional();

/** The pattern every vessel id must match: in topics, client ids and envelopes. */
export const VESSEL_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** A variable's meaning (and, where the schema's own default says too little, its default) for `--help`. */
const about = <T extends z.ZodType>(field: T, meaning: string, shown?: string): T =>
  field.meta({ description: meaning, ...(shown === undefined ? {} : { shown }) });

const schema = z.object({
  ROLE: about(
    z.enum(["vessel", "shore"], { error: '"ROLE" must be "vessel" or "shore"' }).default("vessel"),
    "vessel or shore",
  ),
  VESSEL_ID: about(
    z.string().regex(VESSEL_ID_PATTERN, '"VESSEL_ID" must match [A-Za-z0-9_-]{1,64}')
      .default("vessel-1"),
    "[A-Za-z0-9_-]{1,64}; names the vessel in topics, client id and envelopes",
  ),
  LOCAL_MODE: about(
    bool("LOCAL_MODE").default(true),
    'false runs the HTTP API without the sync engine (health status "disabled")',
  ),
  HOST: about(z.string().min(1, '"HOST" must not be empty').default("0.0.0.0"), "HTTP listener"),
  PORT: about(int("PORT", 0, 65535).default(8080), "HTTP listener port"),
  DATABASE_URL: about(
    databaseUrl,
    "a PostgreSQL URL; unset means embedded PostgreSQL under DATA_DIR",
  ),
  DATA_DIR: about(
    z.string().min(1, '"DATA_DIR" must not be empty').default("./data"),
    "embedded database and generated secrets",
  ),
  MQTT_BROKER_URL: about(brokerUrl.default("mqtt://localhost:1883"), "mqtt:// or mqtts://"),
  MQTT_USERNAME: about(optionalText, "broker user name"),
  MQTT_PASSWORD: about(optionalText, "broker password"),
  MQTT_CA_FILE: about(optionalText, "TLS: CA certificates the broker's certificate must chain to"),
  MQTT_CERT_FILE: about(optionalText, "TLS: client certificate (mutual TLS)"),
  MQTT_KEY_FILE: about(optionalText, "TLS: client certificate's key"),
  MQTT_KEEPALIVE_S: about(
    int("MQTT_KEEPALIVE_S", 1, 65535).default(60),
    "keepalive; the Last Will fires after about 1.5 × this",
  ),
  API_TOKENS: about(
    z.string().transform((v) => v.split(",").map((t) => t.trim()).filter(Boolean))
      .pipe(
        z.array(
          z.string().min(16, '"API_TOKENS" entries must be at least 16 characters')
            // The bearer token syntax (RFC 6750): anything else could never be presented.
            .regex(
              /^[A-Za-z0-9._~+/-]+=*$/,
              '"API_TOKENS" entries may hold only A-Z a-z 0-9 . _ ~ + / - and trailing =',
            ),
        )
          .min(1, '"API_TOKENS" must hold at least one token'),
      ).optional(),
    "comma-separated bearer tokens; unset: one is generated at first start, stored in " +
      "DATA_DIR/api-token (mode 0600) and printed once",
  ),
  OUTBOX_MAX_PENDING: about(
    int("OUTBOX_MAX_PENDING", 1).default(1_000_000),
    "changes not yet acknowledged by shore; past it writes get 503 with Retry-After",
  ),
  ACK_TIMEOUT_S: about(
    int("ACK_TIMEOUT_S", 1, 86_400).default(60),
    "unacknowledged changes are re-sent after this, backing off while shore stays silent",
  ),
  ACK_MODE: about(
    z.enum(["shore", "broker"], { error: '"ACK_MODE" must be "shore" or "broker"' })
      .default("shore"),
    "shore: a change is released when a bosun shore acknowledges it; broker: on the " +
      "broker's PUBACK/PUBCOMP (weaker, for shore consumers that are not bosun)",
  ),
  CATCHUP_RETENTION_DAYS: about(
    int("CATCHUP_RETENTION_DAYS", 0, 36_500).default(30),
    "acknowledged changes are kept this long for catch-up",
  ),
  SHORE_SHARED_GROUP: about(
    z.string().regex(
      /^[A-Za-z0-9_-]{1,64}$/,
      '"SHORE_SHARED_GROUP" must match [A-Za-z0-9_-]{1,64}',
    ).optional(),
    "shore role: subscribe as MQTT 5 shared subscription $share/<group>/... so several " +
      "shore instances split the fleet",
  ),
  LINK_MODE: about(
    z.enum(["frames", "messages"], { error: '"LINK_MODE" must be "frames" or "messages"' })
      .optional(),
    "frames: changes travel in compressed frames, both directions; messages: one JSON " +
      "envelope per change on the per-entity topics, for consumers that are not bosun",
    "frames when ACK_MODE=shore, else messages",
  ),
  LINK_LINGER_MS: about(
    int("LINK_LINGER_MS", 0, 60_000).default(50),
    "frames mode: how long a frame may wait to fill while changes trickle in",
  ),
  MQTT_PROTOCOL: about(
    z.enum(["5", "3.1.1"], { error: '"MQTT_PROTOCOL" must be "5" or "3.1.1"' }).default("5"),
    "5 or 3.1.1; with 3.1.1 every guarantee holds (persistent session via clean: false, " +
      "no shared subscriptions)",
  ),
  CORS_ORIGINS: about(
    z.string().transform((v) => v.split(",").map((o) => o.trim()).filter(Boolean))
      .pipe(z.array(
        z.string().regex(
          /^https?:\/\/[^\s/]+$/,
          '"CORS_ORIGINS" entries must be origins like https://app.example (scheme and host only)',
        ),
      )).optional(),
    "comma-separated origins allowed to call the API from a browser; unset: no CORS headers",
  ),
  // Outside the contract: how much the gateway logs.
  LOG_LEVEL: about(
    z.enum(["debug", "info", "warn", "error"], {
      error: '"LOG_LEVEL" must be "debug", "info", "warn" or "error"',
    }).default("info"),
    "debug, info, warn or error",
  ),
}).superRefine((c, ctx) => {
  if ((c.MQTT_CERT_FILE === undefined) !== (c.MQTT_KEY_FILE === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: ["MQTT_CERT_FILE"],
      message: '"MQTT_CERT_FILE" and "MQTT_KEY_FILE" must be set together',
    });
  }
  if (c.SHORE_SHARED_GROUP !== undefined && c.MQTT_PROTOCOL === "3.1.1") {
    ctx.addIssue({
      code: "custom",
      path: ["SHORE_SHARED_GROUP"],
      message:
        '"SHORE_SHARED_GROUP" needs "MQTT_PROTOCOL" 5: MQTT 3.1.1 has no shared subscriptions',
    });
  }
  if (c.MQTT_PASSWORD !== undefined && c.MQTT_USERNAME === undefined) {
    ctx.addIssue({
      code: "custom",
      path: ["MQTT_USERNAME"],
      message: '"MQTT_USERNAME" must be set when "MQTT_PASSWORD" is',
    });
  }
});

/** The resolved configuration every part of bosun is built from. */
export interface Config {
  role: "vessel" | "shore";
  vesselId: string;
  localMode: boolean;
  host: string;
  port: number;
  databaseUrl: string | undefined;
  dataDir: string;
  mqtt: {
    url: string;
    username: string | undefined;
    password: string | undefined;
    caFile: string | undefined;
    certFile: string | undefined;
    keyFile: string | undefined;
    keepaliveS: number;
    /** `MQTT_PROTOCOL`: 5, or 4 for MQTT 3.1.1 (mqtt.js's protocolVersion). */
    protocolVersion: 4 | 5;
  };
  apiTokens: string[] | undefined;
  outboxMaxPending: number;
  ackTimeoutS: number;
  ackMode: "shore" | "broker";
  catchupRetentionDays: number;
  shoreSharedGroup: string | undefined;
  /** `frames` by default when a bosun shore acknowledges (`ACK_MODE=shore`), else `messages`. */
  linkMode: "frames" | "messages";
  linkLingerMs: number;
  corsOrigins: string[] | undefined;
  logLevel: "debug" | "info" | "warn" | "error";
}

/** Thrown when the environment holds an invalid value; the message names the variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses an environment (a plain record, so tests need not touch `Deno.env`) into a Config.
 * Empty strings count as unset, as a shell's `VAR=` usually means "no value".
 */
export function parseConfig(env: Record<string, string | undefined>): Config {
  const cleaned: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== "") cleaned[key] = value;
  }
  const result = schema.safeParse(cleaned);
  if (!result.success) {
    const lines = result.error.issues.map((i) => {
      const variable = String(i.path[0] ?? "");
      return i.message.includes(`"${variable}"`) ? i.message : `"${variable}": ${i.message}`;
    });
    throw new ConfigError(`Invalid configuration: ${lines.join("; ")}`);
  }
  const c = result.data;
  return {
    role: c.ROLE,
    vesselId: c.VESSEL_ID,
    localMode: c.LOCAL_MODE,
    host: c.HOST,
    port: c.PORT,
    databaseUrl: c.DATABASE_URL,
    dataDir: c.DATA_DIR,
    mqtt: {
      url: c.MQTT_BROKER_URL,
      username: c.MQTT_USERNAME,
      password: c.MQTT_PASSWORD,
      caFile: c.MQTT_CA_FILE,
      certFile: c.MQTT_CERT_FILE,
      keyFile: c.MQTT_KEY_FILE,
      keepaliveS: c.MQTT_KEEPALIVE_S,
      protocolVersion: c.MQTT_PROTOCOL === "3.1.1" ? 4 : 5,
    },
    apiTokens: c.API_TOKENS,
    outboxMaxPending: c.OUTBOX_MAX_PENDING,
    ackTimeoutS: c.ACK_TIMEOUT_S,
    ackMode: c.ACK_MODE,
    catchupRetentionDays: c.CATCHUP_RETENTION_DAYS,
    shoreSharedGroup: c.SHORE_SHARED_GROUP,
    linkMode: c.LINK_MODE ?? (c.ACK_MODE === "shore" ? "frames" : "messages"),
    linkLingerMs: c.LINK_LINGER_MS,
    corsOrigins: c.CORS_ORIGINS,
    logLevel: c.LOG_LEVEL,
  };
}

/** The broker URL with any credentials removed, for `/health` and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "<invalid url>";
  }
}

/** Every variable bosun reads, in the order `--help` lists them. */
export const VARIABLES: readonly string[] = Object.keys(schema.shape);

/**
 * The variables with their defaults and meanings, generated from the schema above so that
 * `--help` cannot drift from what is parsed: a default is what the schema yields for an unset
 * variable (or the `shown` text where it depends on another variable).
 */
export function describeVariables(): { name: string; default: string; meaning: string }[] {
  return Object.entries(schema.shape).map(([name, field]) => {
    const meta = (z.globalRegistry.get(field) ?? {}) as { description?: string; shown?: string };
    const parsed = field.safeParse(undefined);
    const value = parsed.success ? parsed.data : undefined;
    return {
      name,
      default: meta.shown ??
        (value === undefined ? "unset" : Array.isArray(value) ? value.join(",") : String(value)),
      meaning: meta.description ?? "",
    };
  });
}

/**
 * The configuration as it may be logged: passwords, tokens and keys are replaced by whether
 * they are set (file names stay: they are where to look, not what is in them).
 */
export function redactConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    databaseUrl: config.databaseUrl && redactUrl(config.databaseUrl),
    mqtt: {
      ...config.mqtt,
      url: redactUrl(config.mqtt.url),
      password: config.mqtt.password === undefined ? undefined : "<redacted>",
    },
    apiTokens: config.apiTokens === undefined
      ? "generated (DATA_DIR/api-token)"
      : `${config.apiTokens.length} configured (redacted)`,
  };
}
