import type { Role } from '@holdfast/core';
import { sql } from 'kysely';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

/** Read model of a provider's organisation and staff, folded from account events. */
export interface TenantsTable {
  tenant: string;
  name: string;
}
export interface SitesTable {
  tenant: string;
  site_id: string;
  name: string;
}
export interface UsersTable {
  tenant: string;
  user_id: string;
  username: string;
  display_name: string;
  /** JSON array of roles. */
  roles: string;
  /** JSON array of site ids. */
  site_ids: string;
  password_hash: string;
  disabled: number;
  totp_secret: string | null;
  /** JSON array of unused recovery code hashes. */
  recovery_code_hashes: string;
  /** Bumped whenever roles, password, factors or status change: sessions of older versions stay valid, the row is read per request. */
  created_hlc: string;
}
export interface PasskeysTable {
  tenant: string;
  user_id: string;
  credential_id: string;
  public_key: string;
  counter: number;
  transports: string;
  label: string;
}

export type AccountTables = {
  tenants: TenantsTable;
  sites: SitesTable;
  users: UsersTable;
  passkeys: PasskeysTable;
};

export function accountsDb(db: Db | Tx) {
  return db.withTables<AccountTables>();
}

export interface UserRecord {
  tenant: string;
  userId: string;
  username: string;
  displayName: string;
  roles: Role[];
  siteIds: string[];
  passwordHash: string;
  disabled: boolean;
  totpSecret: string | null;
  recoveryCodeHashes: string[];
  passkeys: number;
  /** From the ledger fold (not the table): a temporary password that must be changed at sign-in. */
  mustChangePassword?: boolean;
  /** From the ledger fold: after a second-factor reset, what unlocks enrolling a new factor. */
  enrolmentGate?: { codeHash: string; recoveryCodeHashes: string[] } | null;
}

export function toUserRecord(row: UsersTable, passkeys: number): UserRecord {
  return {
    tenant: row.tenant,
    userId: row.user_id,
    username: row.username,
    displayName: row.display_name,
    roles: JSON.parse(row.roles) as Role[],
    siteIds: JSON.parse(row.site_ids) as string[],
    passwordHash: row.password_hash,
    disabled: Number(row.disabled) === 1,
    totpSecret: row.totp_secret,
    recoveryCodeHashes: JSON.parse(row.recovery_code_hashes) as string[],
    passkeys,
  };
}

const folds = foldsTypes('tenant.', 'site.', 'user.');

export const accountsProjection: Projection = {
  name: 'accounts',
  version: 3,
  tables: ['tenants', 'sites', 'users', 'passkeys'],
  folds,
  async create(trx) {
    await sql`create table tenants (tenant text primary key, name text not null)`.execute(trx);
    await sql`create table sites (tenant text not null, site_id text not null, name text not null, primary key (tenant, site_id))`.execute(
      trx,
    );
    await sql`create table users (
      tenant text not null,
      user_id text not null,
      username text not null,
      display_name text not null,
      roles text not null,
      site_ids text not null,
      password_hash text not null,
      disabled integer not null,
      totp_secret text,
      recovery_code_hashes text not null,
      created_hlc text not null,
      primary key (tenant, user_id)
    )`.execute(trx);
    // User names are unique within a provider (version 3; version 2 made them unique across the
    // node, so a 409 revealed another provider's staff). The rebuild that the version bump causes
    // is the migration: the table is refolded from the ledger, where the names already are.
    await sql`create unique index users_username on users (tenant, username)`.execute(trx);
    await sql`create index users_username_any on users (username)`.execute(trx);
    await sql`create table passkeys (
      tenant text not null,
      user_id text not null,
      credential_id text not null,
      public_key text not null,
      counter integer not null,
      transports text not null,
      label text not null,
      primary key (tenant, credential_id)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = accountsDb(trx);
    const p = e.payload as Record<string, unknown> & { userId: string };
    const user = () => db.updateTable('users').where('tenant', '=', e.tenant).where('user_id', '=', p.userId);
    switch (e.type) {
      case 'tenant.created':
        await db
          .insertInto('tenants')
          .values({ tenant: e.tenant, name: String(p.name) })
          .onConflict((oc) => oc.column('tenant').doUpdateSet({ name: String(p.name) }))
          .execute();
        return;
      case 'site.created':
        await db
          .insertInto('sites')
          .values({ tenant: e.tenant, site_id: String(p.siteId), name: String(p.name) })
          .execute();
        return;
      case 'user.created':
        await db
          .insertInto('users')
          .values({
            tenant: e.tenant,
            user_id: p.userId,
            username: String(p.username),
            display_name: String(p.displayName),
            roles: JSON.stringify(p.roles),
            site_ids: JSON.stringify(p.siteIds),
            // Version 2 keeps the sealed hash: the table is never believed for it (see checked.ts).
            password_hash: String(p.passwordHash ?? p.passwordHashSealed),
            disabled: 0,
            totp_secret: null,
            recovery_code_hashes: '[]',
            created_hlc: e.hlc,
          })
          .execute();
        return;
      case 'user.roles_changed':
        await user()
          .set({ roles: JSON.stringify(p.roles), site_ids: JSON.stringify(p.siteIds) })
          .execute();
        return;
      case 'user.password_set':
        await user()
          .set({ password_hash: String(p.passwordHash ?? p.passwordHashSealed) })
          .execute();
        return;
      case 'user.disabled':
        await user().set({ disabled: 1 }).execute();
        return;
      case 'user.enabled':
        await user().set({ disabled: 0 }).execute();
        return;
      case 'user.totp_enrolled':
        await user()
          .set({
            totp_secret: String(p.secret ?? p.secretSealed),
            recovery_code_hashes: JSON.stringify(p.recoveryCodeHashes),
          })
          .execute();
        return;
      case 'user.recovery_code_used': {
        const row = await db
          .selectFrom('users')
          .select('recovery_code_hashes')
          .where('tenant', '=', e.tenant)
          .where('user_id', '=', p.userId)
          .executeTakeFirst();
        if (!row) return;
        const left = (JSON.parse(row.recovery_code_hashes) as string[]).filter((h) => h !== p.codeHash);
        await user()
          .set({ recovery_code_hashes: JSON.stringify(left) })
          .execute();
        return;
      }
      case 'user.passkey_registered':
        await db
          .insertInto('passkeys')
          .values({
            tenant: e.tenant,
            user_id: p.userId,
            credential_id: String(p.credentialId),
            public_key: String(p.publicKey),
            counter: Number(p.counter),
            transports: JSON.stringify(p.transports),
            label: String(p.label),
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
        return;
      case 'user.passkey_used':
        await db
          .updateTable('passkeys')
          .set({ counter: Number(p.counter) })
          .where('tenant', '=', e.tenant)
          .where('credential_id', '=', String(p.credentialId))
          .where('counter', '<', Number(p.counter))
          .execute();
        return;
      case 'user.mfa_reset':
        await user().set({ totp_secret: null, recovery_code_hashes: '[]' }).execute();
        await db
          .deleteFrom('passkeys')
          .where('tenant', '=', e.tenant)
          .where('user_id', '=', p.userId)
          .execute();
        return;
      default:
        return;
    }
  },
  async resetSubject(trx, tenant, subject) {
    const db = accountsDb(trx);
    if (subject === 'tenant') await db.deleteFrom('tenants').where('tenant', '=', tenant).execute();
    else if (subject.startsWith('site:'))
      await db
        .deleteFrom('sites')
        .where('tenant', '=', tenant)
        .where('site_id', '=', subject.slice(5))
        .execute();
    else if (subject.startsWith('user:')) {
      await db
        .deleteFrom('users')
        .where('tenant', '=', tenant)
        .where('user_id', '=', subject.slice(5))
        .execute();
      await db
        .deleteFrom('passkeys')
        .where('tenant', '=', tenant)
        .where('user_id', '=', subject.slice(5))
        .execute();
    }
  },
};
