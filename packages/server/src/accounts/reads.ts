import { sql } from 'kysely';
import type { Db, Tx } from '../store/store.ts';
import { accountsDb } from './projection.ts';

/**
 * What other modules may read of the accounts tables (providers, sites, users, passkeys), each read
 * a function over the caller's transaction. Modules never query these tables themselves (the
 * architecture test enforces it). `tenantFilter: false` is the test switch that leaves tenancy to
 * PostgreSQL's RLS.
 */

/** The provider's name, or null when there is no such provider. */
export async function providerName(
  trx: Tx,
  tenant: string,
  scope: { tenantFilter: boolean } = { tenantFilter: true },
): Promise<string | null> {
  let q = accountsDb(trx).selectFrom('tenants').select('name');
  if (scope.tenantFilter) q = q.where('tenant', '=', tenant);
  return (await q.executeTakeFirst())?.name ?? null;
}

/** The provider's sites by name. */
export async function sitesOf(trx: Tx, tenant: string): Promise<{ siteId: string; name: string }[]> {
  const rows = await accountsDb(trx)
    .selectFrom('sites')
    .select(['site_id', 'name'])
    .where('tenant', '=', tenant)
    .orderBy('name')
    .execute();
  return rows.map((s) => ({ siteId: s.site_id, name: s.name }));
}

/** The display names of `userIds` (those that exist), read 500 at a time. */
export async function displayNamesOf(
  trx: Tx,
  tenant: string,
  userIds: readonly string[],
): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (let i = 0; i < userIds.length; i += 500) {
    const found = await accountsDb(trx)
      .selectFrom('users')
      .select(['user_id', 'display_name'])
      .where('tenant', '=', tenant)
      .where('user_id', 'in', userIds.slice(i, i + 500))
      .execute();
    for (const u of found) names.set(u.user_id, u.display_name);
  }
  return names;
}

/** Whose passkey a credential id is, if anyone's (ids are unique per provider). */
export async function passkeyOwner(trx: Tx, tenant: string, credentialId: string): Promise<string | null> {
  const row = await accountsDb(trx)
    .selectFrom('passkeys')
    .select('user_id')
    .where('tenant', '=', tenant)
    .where('credential_id', '=', credentialId)
    .executeTakeFirst();
  return row?.user_id ?? null;
}

/**
 * Live, fully signed-in sessions whose user has no second factor (neither TOTP nor a passkey): a
 * start-up check, since one would mean a path around MFA existed. Across providers (the node's own
 * connection, no tenant scope).
 */
export async function fullSessionsWithoutSecondFactor(db: Db): Promise<string[]> {
  const rows = await sql<{ id: string }>`
    select s.id from sessions s join users u on u.tenant = s.tenant and u.user_id = s.user_id
    where s.stage = 'full' and s.revoked_at is null and u.totp_secret is null
      and not exists (select 1 from passkeys p where p.tenant = s.tenant and p.user_id = s.user_id)`.execute(
    db,
  );
  return rows.rows.map((r) => r.id);
}
