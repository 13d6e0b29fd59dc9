/**
 * The building blocks of http/openapi.ts: an operation from a short description (summary, auth,
 * parameters, body, responses by status), zod schemas as JSON Schema 2020-12, query parameters
 * from a strict zod object, the shared error responses, and named examples.
 */
import { z } from "zod";

/** A JSON object of the document. */
export type Json = Record<string, unknown>;

/** A zod schema as JSON Schema 2020-12 (OpenAPI 3.1's dialect), without its `$schema`. */
export function jsonSchema(schema: z.ZodType, io: "input" | "output"): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Json;
  return rest;
}

/** A reference to a schema of `components.schemas`. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
/** Named examples in OpenAPI's `{ name: { value } }` form. */
export const examples = (named: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(named).map(([k, value]) => [k, { value }]));

/** An operation as http/openapi.ts describes it. */
export interface Op {
  summary: string;
  auth?: boolean;
  params?: Json[];
  body?: { schema: Json; examples: Record<string, unknown> };
  /** status → schema name (or inline JSON Schema), description, examples. */
  responses: Record<
    string,
    { description: string; schema?: string | Json; examples?: Record<string, unknown> }
  >;
  text?: boolean;
}

/** The description of each error status, shared by every operation. */
export const ERRORS: Record<string, string> = {
  "400": "Bad JSON, a field that fails validation, an unknown field or query parameter",
  "401": "Missing or wrong bearer token",
  "404": "No such record (also a deleted one)",
  "409": "A record with this id exists",
  "412": "If-Match names a version that is not current",
  "413": "Body over 1 MiB",
  "415": "Body not application/json",
  "503": "Outbox full, database unreachable or gateway stopping; with Retry-After",
};

/** The OpenAPI operation object of `op`; authenticated ones also answer 401 and 503. */
export function operation(op: Op): Json {
  const responses: Json = {};
  for (const [status, r] of Object.entries(op.responses)) {
    const schema = r.schema === undefined
      ? undefined
      : typeof r.schema === "string"
      ? ref(r.schema)
      : r.schema;
    const type = op.text && status === "200" ? "text/plain" : "application/json";
    responses[status] = {
      description: r.description,
      ...(schema && {
        content: { [type]: { schema, ...(r.examples && { examples: examples(r.examples) }) } },
      }),
    };
  }
  const errors = op.auth ? ["401", "503"] : [];
  for (const status of errors) {
    responses[status] ??= { description: ERRORS[status], content: errorContent() };
  }
  return {
    summary: op.summary,
    ...(op.auth ? {} : { security: [] }),
    ...(op.params?.length && { parameters: op.params }),
    ...(op.body && {
      requestBody: {
        required: true,
        content: {
          "application/json": { schema: op.body.schema, examples: examples(op.body.examples) },
        },
      },
    }),
    responses,
  };
}

const errorContent = (named?: Record<string, unknown>) => ({
  "application/json": { schema: ref("Error"), ...(named && { examples: examples(named) }) },
});

/** An error response with named examples, each an error `code`. */
export const errorResponse = (status: string, named: Record<string, string>) => ({
  description: ERRORS[status]!,
  schema: "Error",
  examples: Object.fromEntries(
    Object.entries(named).map(([name, code]) => [
      name,
      { error: { code, message: "…", details: [] } },
    ]),
  ),
});

/** Query parameters from a strict zod object, each with its JSON Schema and named examples. */
export function queryParams(
  schema: z.ZodObject,
  named: Record<string, Record<string, string>> = {},
) {
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => {
    const ex = Object.fromEntries(
      Object.entries(named).flatMap(([k, values]) => name in values ? [[k, values[name]]] : []),
    );
    return {
      name,
      in: "query",
      required: !field.safeParse(undefined).success,
      schema: jsonSchema(field, "input"),
      ...(Object.keys(ex).length && { examples: examples(ex) }),
    };
  });
}

/** Adds named examples for parameters a schema does not have (`colour`, to show the 400). */
export const unknownParam = (name: string, value: string) => ({
  name,
  in: "query",
  required: false,
  description: "Not a parameter of this route: shown to document the 400 it gets",
  schema: { type: "string" },
  examples: examples({ unknown_parameter: value }),
});

/** The optional `If-Match` header, with named examples. */
export const ifMatch = (named: Record<string, string>) => ({
  name: "If-Match",
  in: "header",
  required: false,
  description: 'The version the change expects, quoted ("3"); a stale one gets 412',
  schema: { type: "string" },
  examples: examples(named),
});
