import { sql } from 'kysely';
import type { Db, Store, StoreDialect } from './store.ts';

interface Migration {
  version: number;
  name: string;
  up(db: Db, dialect: StoreDialect): Promise<void>;
}

/**
 * Forward-only, versioned migrations. A released migration is never edited: a change is a new
 * migration with the next version. Each runs in its own transaction with its version row.
 */
const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'ledger, checkpoints, projection state',
    async up(db, dialect) {
      const pos =
        dialect === 'sqlite'
          ? sql`integer primary key autoincrement`
          : sql`bigint generated always as identity primary key`;
      await sql`create table ledger_events (
        pos ${pos},
        tenant text not null,
        node text not null,
        seq bigint not null,
        id text not null,
        hlc text not null,
        type text not null,
        v integer not null,
        actor text not null,
        payload text not null,
        prev_hash text not null,
        hash text not null,
        subject text
      )`.execute(db);
      await sql`create unique index ledger_events_chain on ledger_events (tenant, node, seq)`.execute(db);
      await sql`create unique index ledger_events_id on ledger_events (tenant, id)`.execute(db);
      await sql`create index ledger_events_order on ledger_events (tenant, hlc, node, seq)`.execute(db);
      await sql`create index ledger_events_subject on ledger_events (tenant, subject, hlc, node, seq)`.execute(
        db,
      );
      await sql`create table checkpoints (
        tenant text not null,
        node text not null,
        seq bigint not null,
        hash text not null,
        hlc text not null,
        signer text not null,
        signature text not null,
        primary key (tenant, node, seq, signer)
      )`.execute(db);
      await sql`create table projection_state (
        name text primary key,
        version integer not null,
        rebuilt_at text not null
      )`.execute(db);
    },
  },
  {
    version: 2,
    name: 'node-local sessions and used TOTP steps',
    async up(db) {
      // Sessions are local to the node that signed the user in; they are not facts for the ledger.
      await sql`create table sessions (
        id text primary key,
        token_hash text not null unique,
        tenant text not null,
        user_id text not null,
        stage text not null,
        csrf_token text not null,
        created_at bigint not null,
        last_seen_at bigint not null,
        absolute_expires_at bigint not null,
        revoked_at bigint,
        address text not null,
        pending_totp_secret text,
        webauthn_challenge text,
        reauthenticated_at bigint
      )`.execute(db);
      await sql`create index sessions_user on sessions (tenant, user_id)`.execute(db);
      // Each TOTP code is accepted once: a used (user, step) is remembered for the window.
      await sql`create table totp_used (tenant text not null, user_id text not null, step bigint not null, primary key (tenant, user_id, step))`.execute(
        db,
      );
    },
  },
  {
    version: 3,
    name: 'node-local sync state: enrolment tokens, request nonces, peer status',
    async up(db) {
      // Like sessions, none of these are facts for the ledger: they belong to the node that holds them
      // (a token is spent on the hub that issued it; a nonce is remembered by the node that saw it).
      // Enrolment tokens are stored as their SHA-256 only, so a copy of the store enrols nobody.
      await sql`create table enrolment_tokens (
        id text primary key,
        tenant text not null,
        token_hash text not null unique,
        role text not null,
        created_by text not null,
        created_at bigint not null,
        expires_at bigint not null,
        used_at bigint,
        used_by_node text
      )`.execute(db);
      // Signed sync requests carry a nonce; each (node, nonce) is accepted once while its timestamp
      // could still pass the clock-skew check, then forgotten.
      await sql`create table sync_nonces (
        tenant text not null,
        node text not null,
        nonce text not null,
        expires_at bigint not null,
        primary key (tenant, node, nonce)
      )`.execute(db);
      await sql`create index sync_nonces_expiry on sync_nonces (expires_at)`.execute(db);
      // What this node knows of each peer: the hub it calls (outbound) or the sites that call it (inbound).
      await sql`create table sync_peer_state (
        tenant text not null,
        peer text not null,
        direction text not null,
        url text,
        connected integer not null default 0,
        since bigint,
        last_attempt_at bigint,
        last_success_at bigint,
        last_error text,
        primary key (tenant, peer)
      )`.execute(db);
    },
  },
  {
    version: 4,
    name: 'sync status: the last failure and the way on; lasting sync alarms',
    async up(db) {
      // The failure's kind (hub_unreachable, hub_key_changed, history_refused, ...) and the way on,
      // kept with the outcome so a restarted node shows them before its first new round.
      await sql`alter table sync_peer_state add column problem text`.execute(db);
      await sql`alter table sync_peer_state add column advice text`.execute(db);
      // An alarm stays until an operator clears it, across restarts and later good rounds: the hub
      // refusing this node's own history does not stop being true because a round went through.
      await sql`create table sync_alarms (
        tenant text not null,
        kind text not null,
        raised_at bigint not null,
        last_seen_at bigint not null,
        message text not null,
        advice text not null,
        cleared_at bigint,
        cleared_by text,
        cleared_reason text,
        primary key (tenant, kind)
      )`.execute(db);
    },
  },
  {
    version: 5,
    name: 'node-local consultation drafts',
    async up(db) {
      // What a clinician has typed into a consultation and not yet saved, per (user, case), so a
      // reload or an idle sign-out loses nothing. Not a clinical fact, so not in the ledger: it is
      // replaced as the clinician types and deleted when the consultation is saved. Kept on the
      // server, never in the browser, so nothing of a patient stays on a shared PC after sign-out.
      await sql`create table consultation_drafts (
        tenant text not null,
        user_id text not null,
        case_id text not null,
        content text not null,
        updated_at bigint not null,
        primary key (tenant, user_id, case_id)
      )`.execute(db);
      await sql`create index consultation_drafts_case on consultation_drafts (tenant, case_id)`.execute(db);
    },
  },
  {
    version: 6,
    name: 'node-local postcode table',
    async up(db, dialect) {
      // Postcodes to places (the ONS Postcode Directory): reference data the node imports itself,
      // the same for every provider, so neither ledger facts nor tenant rows (see directory/postcodes.ts).
      const number = dialect === 'sqlite' ? sql`real` : sql`double precision`;
      await sql`create table postcodes (
        postcode text primary key,
        latitude ${number} not null,
        longitude ${number} not null
      )${dialect === 'sqlite' ? sql` without rowid` : sql``}`.execute(db);
    },
  },
];

export const LATEST_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;

export async function runMigrations(store: Store): Promise<void> {
  // One pinned connection, so that PostgreSQL's session-level advisory lock is taken and released on
  // the same session: two processes starting at once on one database must not both migrate.
  await store.db.connection().execute(async (db) => {
    await sql`create table if not exists schema_migrations (
      version integer primary key,
      name text not null,
      applied_at text not null
    )`.execute(db);
    if (store.dialect === 'postgres') await sql`select pg_advisory_lock(727274)`.execute(db);
    try {
      const applied = new Set(
        (await db.selectFrom('schema_migrations').select('version').execute()).map((r) => Number(r.version)),
      );
      const newest = Math.max(0, ...applied);
      if (newest > LATEST_SCHEMA_VERSION) {
        throw new Error(
          `the store has schema version ${newest} but this Holdfast knows only up to ${LATEST_SCHEMA_VERSION}: upgrade Holdfast`,
        );
      }
      for (const m of MIGRATIONS) {
        if (applied.has(m.version)) continue;
        await db.transaction().execute(async (trx) => {
          await m.up(trx, store.dialect);
          await trx
            .insertInto('schema_migrations')
            .values({ version: m.version, name: m.name, applied_at: new Date().toISOString() })
            .execute();
        });
      }
    } finally {
      if (store.dialect === 'postgres') await sql`select pg_advisory_unlock(727274)`.execute(db);
    }
  });
}
