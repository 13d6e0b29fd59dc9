import type { Sql } from "../../db/connection.ts";

/**
 * Makes the shore's database refuse, with a data error, every record titled "poison": a
 * stand-in for any value validation lets through and PostgreSQL refuses (22009 was one).
 */
export async function refusePoison(sql: Sql, code = "22023"): Promise<void> {
  await sql.unsafe(`
    create function refuse_poison() returns trigger language plpgsql as $$
    begin
      if new.data->>'title' = 'poison' then
        raise exception 'poison refused for the test' using errcode = '${code}';
      end if;
      return new;
    end $$;
    create trigger refuse_poison before insert or update on shore_records
      for each row execute function refuse_poison()`);
}
