import { sql } from 'kysely';
import type { Db, Tx } from './store.ts';

/**
 * PostgreSQL row-level security: defence in depth under the service layer's own tenant filter.
 *
 * - Every table with a `tenant` column has RLS enabled and FORCED (so even the owner is subject to it).
 * - The application's request handling runs as `holdfast_app`, a role that owns nothing and cannot
 *   bypass RLS; its policy admits only rows of the tenant set for the transaction
 *   (`holdfast.tenant`, set by `Store.withTenant` before any statement of a request: for its
 *   transaction, or for the connection's session before the reads that go ahead of the transaction,
 *   see store/held-begin.ts). With no tenant set it sees nothing.
 * - The owner (migrations, the ledger's own writes, verify, rebuild) has a policy of its own that
 *   admits every row: system work spans tenants by nature.
 */
export const APP_ROLE = 'holdfast_app';

export async function ensureAppRole(db: Db | Tx): Promise<void> {
  // Roles are cluster-wide; two databases migrating at once may race to create it.
  await sql`do $$ begin
    if not exists (select 1 from pg_roles where rolname = 'holdfast_app') then
      create role holdfast_app nologin nosuperuser nobypassrls noinherit;
    end if;
  exception when duplicate_object or unique_violation then null;
  end $$`.execute(db);
  await sql`do $$ begin
    execute format('grant holdfast_app to %I', current_user);
  exception when others then null;
  end $$`.execute(db);
}

/** Applies RLS, policies and grants to every table with a tenant column. Idempotent. */
export async function secureTenantTables(db: Db | Tx): Promise<string[]> {
  const tables = await sql<{ table_name: string }>`
    select c.table_name from information_schema.columns c
    join information_schema.tables t on t.table_schema = c.table_schema and t.table_name = c.table_name
    where c.table_schema = current_schema() and c.column_name = 'tenant' and t.table_type = 'BASE TABLE'
    order by c.table_name`.execute(db);
  const names = tables.rows.map((r) => r.table_name);
  for (const name of names) {
    const t = sql.table(name);
    await sql`alter table ${t} enable row level security`.execute(db);
    await sql`alter table ${t} force row level security`.execute(db);
    await sql`drop policy if exists tenant_isolation on ${t}`.execute(db);
    await sql`drop policy if exists system_all on ${t}`.execute(db);
    await sql`create policy tenant_isolation on ${t} to holdfast_app
      using (tenant = current_setting('holdfast.tenant', true))
      with check (tenant = current_setting('holdfast.tenant', true))`.execute(db);
    await sql`create policy system_all on ${t} to current_user using (true) with check (true)`.execute(db);
    await sql`grant select, insert, update, delete on ${t} to holdfast_app`.execute(db);
  }
  return names;
}

export interface RlsProblem {
  problem: string;
}

/**
 * The start-up check: refuses to run request handling as a role that owns the tenant tables,
 * is a superuser, or bypasses RLS, or over a tenant table without forced RLS.
 */
export async function checkRls(appDb: Db): Promise<RlsProblem[]> {
  const problems: RlsProblem[] = [];
  const role = await sql<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>`
    select current_user as name, r.rolsuper, r.rolbypassrls from pg_roles r where r.rolname = current_user`.execute(
    appDb,
  );
  const me = role.rows[0];
  if (!me) return [{ problem: 'cannot read the current role' }];
  if (me.rolsuper)
    problems.push({
      problem: `the application role ${me.name} is a superuser, which bypasses row-level security`,
    });
  if (me.rolbypassrls) problems.push({ problem: `the application role ${me.name} has BYPASSRLS` });
  const tables = await sql<{
    relname: string;
    owner: string;
    relrowsecurity: boolean;
    relforcerowsecurity: boolean;
  }>`
    select c.relname, pg_get_userbyid(c.relowner) as owner, c.relrowsecurity, c.relforcerowsecurity
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = current_schema() and c.relkind = 'r'
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant' and not a.attisdropped)`.execute(
    appDb,
  );
  for (const t of tables.rows) {
    if (t.owner === me.name)
      problems.push({ problem: `the application role ${me.name} owns table ${t.relname}` });
    if (!t.relrowsecurity || !t.relforcerowsecurity)
      problems.push({
        problem: `table ${t.relname} has a tenant column but row-level security is not forced`,
      });
  }
  return problems;
}
