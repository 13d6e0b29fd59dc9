/**
 * A small JSON Schema (2020-12) checker for the keywords zod's `toJSONSchema` writes, with
 * `$ref` into an OpenAPI document's `components`: enough to hold live responses to the
 * schemas bosun documents (tests/http/openapi.test.ts), without a validator dependency.
 */

type Schema = Record<string, unknown>;

/** The problems of `value` against `schema` (empty when it conforms), each with its JSON path. */
export function check(value: unknown, schema: Schema, root: Schema, path = "$"): string[] {
  if (typeof schema.$ref === "string") {
    const target = schema.$ref.replace(/^#\//, "").split("/").reduce<unknown>(
      (node, key) => (node as Schema | undefined)?.[key],
      root,
    );
    if (!target) return [`${path}: unresolved ${schema.$ref}`];
    return check(value, target as Schema, root, path);
  }
  const out: string[] = [];
  const fail = (what: string) =>
    out.push(`${path}: ${what} (got ${JSON.stringify(value)?.slice(0, 80)})`);
  if (Array.isArray(schema.anyOf)) {
    if (!schema.anyOf.some((s) => check(value, s as Schema, root, path).length === 0)) {
      fail("matches no anyOf branch");
    }
  }
  if (Array.isArray(schema.oneOf)) {
    const n = schema.oneOf.filter((s) => check(value, s as Schema, root, path).length === 0).length;
    if (n !== 1) fail(`matches ${n} oneOf branches`);
  }
  if (Array.isArray(schema.allOf)) {
    for (const s of schema.allOf) out.push(...check(value, s as Schema, root, path));
  }
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => isType(value, t as string))) fail(`is not ${types.join(" or ")}`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((v) => v === value)) fail("is not in enum");
  if ("const" in schema && schema.const !== value) fail(`is not ${JSON.stringify(schema.const)}`);
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) fail("too short");
    if (typeof schema.maxLength === "number" && value.length > schema.maxLength) fail("too long");
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value)) {
      fail(`does not match ${schema.pattern}`);
    }
    if (schema.format === "date-time" && Number.isNaN(Date.parse(value))) fail("is no date-time");
    if (schema.format === "uuid" && !/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/i.test(value)) {
      fail("is no uuid");
    }
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) fail("below minimum");
    if (typeof schema.maximum === "number" && value > schema.maximum) fail("above maximum");
    if (typeof schema.exclusiveMinimum === "number" && value <= schema.exclusiveMinimum) {
      fail("not above exclusiveMinimum");
    }
    if (typeof schema.exclusiveMaximum === "number" && value >= schema.exclusiveMaximum) {
      fail("not below exclusiveMaximum");
    }
  }
  if (Array.isArray(value) && schema.items && typeof schema.items === "object") {
    value.forEach((v, i) => out.push(...check(v, schema.items as Schema, root, `${path}[${i}]`)));
  }
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) {
      if (!(key in obj)) out.push(`${path}.${key}: required`);
    }
    for (const [key, v] of Object.entries(obj)) {
      if (props[key]) out.push(...check(v, props[key], root, `${path}.${key}`));
      else if (schema.additionalProperties === false) out.push(`${path}.${key}: not allowed`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === "object") {
        out.push(...check(v, schema.additionalProperties as Schema, root, `${path}.${key}`));
      }
    }
  }
  return out;
}

function isType(value: unknown, type: string): boolean {
  switch (type) {
    case "null":
      return value === null;
    case "array":
      return Array.isArray(value);
    case "object":
      return value !== null && typeof value === "object" && !Array.isArray(value);
    case "integer":
      return Number.isInteger(value);
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "string":
      return typeof value === "string";
    case "boolean":
      return typeof value === "boolean";
    default:
      return false;
  }
}
