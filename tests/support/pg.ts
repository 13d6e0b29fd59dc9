/**
 * Real PostgreSQL for tests: every test gets a database of its own on the machine's server
 * (`TEST_PG_URL`, default postgres://postgres@127.0.0.1:5432/test), dropped afterwards, so
 * tests and parallel sessions never see each other's rows.
 */
import postgres from "postgres";
import { openDatabase, type Sql } from "../../db/connection.ts";
import { migrate } from "../../db/migrations.ts";
import { silentLogger } from "../../core/log.ts";

/** The server the tests use. */
export const PG_ADMIN_URL = Deno.env.get("TEST_PG_URL") ??
  "postgres://postgres@127.0.0.1:5432/test";

/** A fresh, migrated database and its URL. */
export interface TestDatabase {
  url: string;
  sql: Sql;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Creates an empty database (migrated unless `migrated: false`); dispose drops it. */
export async function freshDatabase(
  options: { migrated?: boolean; max?: number } = {},
): Promise<TestDatabase> {
  const { migrated = true, max = 16 } = options;
  const name = `bosun_t_${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  const db = await openDatabase({ url: url.toString(), dataDir: "", log: silentLogger, max });
  if (migrated) await migrate(db.sql);
  return {
    url: url.toString(),
    sql: db.sql,
    async [Symbol.asyncDispose]() {
      await db.close();
      await admin.unsafe(`drop database if exists ${name} with (force)`);
      await admin.end();
    },
  };
}
