/**
 * Request validation with messages a person can act on: every failure names the field and says
 * what it wants (`"title" is required (a string of 1–200 characters)`), derived from the same
 * zod schema that refused it. zod's error customisation lives here and nowhere else.
 */
import { z } from "zod";

/** Where the input came from: it decides whether an unknown key is a "field" or a "parameter". */
export type InputKind = "body" | "query";

/**
 * Parses `input` with `schema`; a failure throws the `ZodError`, which core/errors.ts maps to
 * `400 validation_failed` with these messages.
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  input: unknown,
  kind: InputKind,
): z.output<S> {
  return schema.parse(input, { error: (issue) => humanMessage(schema, issue, kind) });
}

type Issue = z.core.$ZodRawIssue;

/** The message for one issue, or `undefined` for zod's own (an issue inside a union branch). */
function humanMessage(root: z.ZodType, issue: Issue, kind: InputKind): string | undefined {
  // zod leaves the path unset at the root (and inside union branches, whose messages nobody sees).
  const path = issue.path ?? [];
  if (issue.code === "unrecognized_keys") {
    const keys = (issue as unknown as { keys: string[] }).keys;
    const noun = kind === "query" ? "query parameter" : "field";
    const known = Object.keys(shapeOf(schemaAt(root, path)) ?? {});
    return `Unknown ${noun}${keys.length > 1 ? "s" : ""} ${keys.map(quote).join(", ")}` +
      (known.length
        ? `; ${kind === "query" ? "this list takes" : "known"}: ${known.join(", ")}`
        : "");
  }
  if (path.length === 0) {
    return kind === "body" && issue.code === "invalid_type"
      ? "The body must be a JSON object"
      : undefined;
  }
  const name = quote(path.join("."));
  const field = schemaAt(root, path);
  const must = (issue.params as { must?: string } | undefined)?.must;
  if (must) return `${name} must ${must}`;
  const want = field ? describe(field) : undefined;
  if (
    issue.input === undefined && (issue.code === "invalid_type" || issue.code === "invalid_value")
  ) {
    return want ? `${name} is required (${want})` : `${name} is required`;
  }
  if (!want) return undefined;
  const got = issue.code === "invalid_type" ? `, not ${typeOf(issue.input)}` : "";
  return `${name} must be ${want}${got}`;
}

const quote = (s: string) => `"${s.slice(0, 100)}"`;

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  return `a ${typeof value}`;
}

/** Peels optional, nullable, default and pipe wrappers, stopping at the first that has `stop`. */
function unwrap(schema: z.ZodType, stop: (s: z.ZodType) => boolean = () => false): z.ZodType {
  let s = schema;
  for (;;) {
    if (stop(s)) return s;
    if (s instanceof z.ZodOptional || s instanceof z.ZodNullable || s instanceof z.ZodDefault) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType;
    } else return s;
  }
}

function shapeOf(schema: z.ZodType | undefined): Record<string, z.ZodType> | undefined {
  const s = schema && unwrap(schema);
  return s instanceof z.ZodObject ? s.shape as Record<string, z.ZodType> : undefined;
}

/** The schema of the field at `path` under `root`, or `undefined` off the known shape. */
function schemaAt(root: z.ZodType, path: PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = root;
  for (const key of path) {
    const shape = shapeOf(s);
    s = shape?.[String(key)];
    if (!s) return undefined;
  }
  return s;
}

const described = (s: z.ZodType) => z.globalRegistry.get(s)?.description !== undefined;

const number = (n: number) => n.toLocaleString("en");

/**
 * What a field wants, as a phrase ("a string of 1–200 characters", "one of "info", "warning" or
 * "critical""): its own description where it has one, else read off its JSON Schema.
 */
export function describe(field: z.ZodType): string | undefined {
  const s = unwrap(field, described);
  const description = z.globalRegistry.get(s)?.description;
  if (description) return description[0]!.toLowerCase() + description.slice(1);
  let json: Record<string, unknown>;
  try {
    json = z.toJSONSchema(s, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const { type, minimum, maximum, exclusiveMinimum, minLength, maxLength, format } = json as {
    type?: string;
    minimum?: number;
    maximum?: number;
    exclusiveMinimum?: number;
    minLength?: number;
    maxLength?: number;
    format?: string;
  };
  if (Array.isArray(json.enum)) {
    const values = (json.enum as unknown[]).map((v) => JSON.stringify(v));
    return values.length === 1
      ? values[0]
      : `one of ${values.slice(0, -1).join(", ")} or ${values.at(-1)}`;
  }
  if (type === "boolean") return "true or false";
  if (type === "integer" || type === "number") {
    const noun = type === "integer" ? "a whole number" : "a number";
    const max = maximum !== undefined && maximum < Number.MAX_SAFE_INTEGER ? maximum : undefined;
    if (exclusiveMinimum !== undefined) {
      return `${noun} above ${number(exclusiveMinimum)}` +
        (max !== undefined ? ` and at most ${number(max)}` : "");
    }
    if (minimum !== undefined && minimum > Number.MIN_SAFE_INTEGER) {
      return max !== undefined
        ? `${noun} from ${number(minimum)} to ${number(max)}`
        : `${noun} of at least ${number(minimum)}`;
    }
    return max !== undefined ? `${noun} of at most ${number(max)}` : noun;
  }
  if (type === "string") {
    if (format === "uuid") return "a UUID";
    if (minLength !== undefined && maxLength !== undefined) {
      return `a string of ${number(minLength)}–${number(maxLength)} characters`;
    }
    if (maxLength !== undefined) return `a string of at most ${number(maxLength)} characters`;
    if (minLength !== undefined) return `a string of at least ${number(minLength)} characters`;
    return "a string";
  }
  if (type === "object") return "a JSON object";
  if (type === "array") return "an array";
  return undefined;
}
