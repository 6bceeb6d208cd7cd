import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { createOwnerOnlyFile, OWNER_DIR_MODE } from '../node/file-modes.ts';
import { Kysely, SqliteDialect, sql, type PostgresPool, type SqliteDatabase, type Transaction } from 'kysely';
import pg from 'pg';
import type { CoreDatabase } from './schema.ts';
import { runMigrations } from './migrations.ts';
import { APP_ROLE, checkRls, ensureAppRole, secureTenantTables } from './rls.ts';
import {
  CommitOutcomeUnknownError,
  FailoverPool,
  PrimaryLocator,
  splitHosts,
  StoreUnavailableError,
} from './primary.ts';
import { HeldBeginDialect, LITERAL_TENANT } from './held-begin.ts';

export type StoreDialect = 'sqlite' | 'postgres';

export type StoreOptions =
  | { dialect: 'sqlite'; file: string }
  | {
      dialect: 'postgres';
      /** One URL, or libpq's several hosts (`postgres://u@db1:5432,db2:5432/db`): see primary.ts. */
      connectionString: string;
      maxConnections?: number;
    };

/** A chain lock this store holds (see lockChain), re-taken on the new primary after a failover. */
interface HeldChainLock {
  key: string;
  node: string;
  purpose: string;
  client: pg.Client | null;
}

export type WorkerStoreSource =
  { dialect: 'sqlite'; file: string } | { dialect: 'postgres'; connectionString: string };

/**
 * Kysely over either store. Projection tables are not in CoreDatabase's type, so they are reached
 * through `Kysely<any>`-free helpers: projections type their own tables with `withTables`.
 */
export type Db = Kysely<CoreDatabase>;
export type Tx = Transaction<CoreDatabase>;

/** Prepared statements kept per SQLite connection (the most recently used). */
const STATEMENT_CACHE_SIZE = 500;

/**
 * Kysely's SQLite driver prepares every query's text again each time it runs; compiling the SQL
 * was the largest single cost of a signed-in request (the session, the user and their account
 * events are read on every one). The connection keeps the statements it prepared, by text, and
 * runs them again. Safe because Kysely runs one query at a time on the connection and Holdfast
 * never streams a query (a statement still iterating could not be run again).
 */
function withStatementCache(database: BetterSqlite3.Database): SqliteDatabase {
  const statements = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => database.close(),
    prepare: (text) => {
      let statement = statements.get(text);
      if (statement) statements.delete(text);
      else statement = database.prepare(text);
      statements.set(text, statement);
      if (statements.size > STATEMENT_CACHE_SIZE) statements.delete(statements.keys().next().value!);
      return statement;
    },
  };
}

/**
 * One store: a SQLite file or a PostgreSQL database behind the same Kysely interface.
 * Durability: SQLite runs in WAL mode with synchronous=FULL, so a commit is on disk when it returns;
 * PostgreSQL keeps its defaults (fsync on, synchronous_commit on).
 */
export class Store {
  /**
   * Tenant-scoped access for request handling. On PostgreSQL a separate pool whose sessions run as
   * the unprivileged `holdfast_app` role under row-level security; on SQLite the same database.
   * Reach it only through `withTenant`.
   */
  private readonly appDb: Db;

  private constructor(
    readonly dialect: StoreDialect,
    /** System access (migrations, ledger writes, verify, rebuild): spans tenants. */
    readonly db: Db,
    private readonly sqlite: BetterSqlite3.Database | null,
    appDb?: Db,
    /** PostgreSQL: which configured host is the writable primary (null on SQLite). */
    private readonly locator: PrimaryLocator | null = null,
    private readonly chainLocks: Set<HeldChainLock> = new Set(),
  ) {
    this.appDb = appDb ?? db;
  }

  static async open(options: StoreOptions): Promise<Store> {
    let store: Store;
    if (options.dialect === 'sqlite') {
      mkdirSync(dirname(options.file), { recursive: true, mode: OWNER_DIR_MODE });
      // Owner-only from the first byte; SQLite gives its -wal and -shm files the same mode.
      createOwnerOnlyFile(options.file);
      const database = new BetterSqlite3(options.file);
      database.pragma('journal_mode = WAL');
      database.pragma('synchronous = FULL');
      database.pragma('foreign_keys = ON');
      database.pragma('busy_timeout = 10000');
      const db = new Kysely<CoreDatabase>({
        dialect: new SqliteDialect({ database: withStatementCache(database) }),
      });
      store = new Store('sqlite', db, database);
    } else {
      const chainLocks = new Set<HeldChainLock>();
      // A new primary is used only once this process's chain locks are held there too.
      const locator: PrimaryLocator = new PrimaryLocator(splitHosts(options.connectionString), (url) =>
        retakeChainLocks(url, chainLocks, locator),
      );
      await locator.connect();
      const poolConfig = { max: options.maxConnections ?? 10, connectionTimeoutMillis: 5000 };
      const pool = new FailoverPool(locator, poolConfig);
      const db = new Kysely<CoreDatabase>({ dialect: new HeldBeginDialect({ pool: asKyselyPool(pool) }) });
      const appPool = new FailoverPool(locator, {
        ...poolConfig,
        // Every session of this pool switches to the unprivileged role before its first query.
        options: `-c role=${APP_ROLE}`,
      });
      const appDb = new Kysely<CoreDatabase>({
        dialect: new HeldBeginDialect({ pool: asKyselyPool(appPool) }, true),
      });
      store = new Store('postgres', db, null, appDb, locator, chainLocks);
    }
    try {
      await runMigrations(store);
      if (store.dialect === 'postgres') await store.secureTables();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** PostgreSQL: the application role, RLS and grants on every tenant table (after migrations and projection rebuilds). */
  async secureTables(): Promise<void> {
    if (this.dialect !== 'postgres') return;
    await this.db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(727275)`.execute(conn);
      try {
        await ensureAppRole(conn);
        await secureTenantTables(conn);
      } finally {
        await sql`select pg_advisory_unlock(727275)`.execute(conn);
      }
    });
  }

  /**
   * Start-up check: request handling must run as a role that owns no tenant table and cannot bypass
   * row-level security, over tables with RLS forced. Throws with every problem found.
   */
  async checkTenantIsolation(): Promise<void> {
    if (this.dialect !== 'postgres') return;
    const problems = await checkRls(this.appDb);
    if (problems.length > 0) {
      throw new Error(
        `refusing to run: tenant isolation is not enforced by the database:\n  ${problems.map((p) => p.problem).join('\n  ')}`,
      );
    }
  }

  /**
   * Runs `fn` in one transaction scoped to `tenant`: on PostgreSQL as `holdfast_app` with
   * `holdfast.tenant` set for the transaction, so row-level security admits that tenant's rows only.
   * Its reads before its first write run under the same tenant set for the connection's session,
   * before the transaction begins, and a request that only reads begins none (held-begin.ts).
   */
  withTenant<T>(tenant: string, fn: (trx: Tx) => Promise<T>): Promise<T> {
    return runTransaction(this.appDb, async (trx) => {
      if (this.dialect === 'postgres') {
        // Holdfast's own tenant ids go as a literal, so the setting travels with `begin` (held-begin.ts).
        const value = LITERAL_TENANT.test(tenant) ? sql.lit(tenant) : sql`${tenant}`;
        await sql`select set_config('holdfast.tenant', ${value}, true)`.execute(trx);
      }
      return fn(trx);
    });
  }

  /** Runs `fn` in one transaction; its writes are durable when this resolves. */
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return runTransaction(this.db, fn);
  }

  /**
   * Commits a real write of `WRITE_PROBE_BYTES` and undoes it in the same transaction (a table
   * created, filled and dropped), so the commit still has to find room on the disk: whether the
   * store can take appends again after it could not (a full disk freed). Throws the store's error
   * when it still cannot. Bigger than any one call's append, so "room for the probe" means room for
   * a few calls, not a byte that the next call would not fit in.
   */
  async probeWrite(): Promise<void> {
    // A name of its own, so two probes at once on PostgreSQL do not wait on each other's table.
    const table = sql.table(`holdfast_write_probe_${randomBytes(6).toString('hex')}`);
    await this.transaction(async (trx) => {
      if (this.dialect === 'sqlite') {
        // The new table's pages must be allocated in the file and written to the WAL at commit.
        await sql`create table ${table} (bytes blob not null)`.execute(trx);
        await sql`insert into ${table} (bytes) values (randomblob(${WRITE_PROBE_BYTES}))`.execute(trx);
      } else {
        // The table's file is extended in the database's tablespace as the rows go in (a full disk
        // refuses that at once), and its catalog rows are WAL-logged and flushed at commit.
        await sql`create table ${table} (bytes bytea not null)`.execute(trx);
        await sql`insert into ${table} (bytes)
          select decode(md5(random()::text || n), 'hex') from generate_series(1, ${WRITE_PROBE_BYTES / 16}) n`.execute(
          trx,
        );
      }
      await sql`drop table ${table}`.execute(trx);
    });
  }

  /**
   * PostgreSQL: takes the session-level advisory lock that makes this process the only writer of
   * one node's chain in this database, on a connection of its own held until the returned release
   * is called (or the process ends: the server drops a dead session's locks). Throws at once if
   * another session holds it. If that connection drops (the primary failed over or restarted), the
   * store treats it as a loss of the primary and takes the lock again on the primary it finds before
   * it serves anything there. SQLite needs nothing here: its file is reached only through the data
   * directory, whose writer lock covers it.
   */
  async lockChain(tenant: string, node: string, purpose: string): Promise<() => Promise<void>> {
    const locator = this.locator;
    if (this.dialect !== 'postgres' || !locator) return async () => undefined;
    const held: HeldChainLock = { key: `holdfast.writer:${tenant}:${node}`, node, purpose, client: null };
    await takeChainLock(locator.current(), held, locator);
    this.chainLocks.add(held);
    return async () => {
      this.chainLocks.delete(held);
      const client = held.client;
      held.client = null;
      await client?.end().catch(() => undefined);
    };
  }

  /**
   * Why this store cannot be written now (PostgreSQL: its primary was lost and another is being
   * looked for), with since when; null when it can.
   */
  get unavailable(): { problem: string; sinceMs: number } | null {
    return this.locator?.unavailable ?? null;
  }

  /**
   * How many times the database connection was lost (0 on SQLite). Anything a process keeps in
   * memory about what the database holds must be read again after it changes: a commit whose answer
   * was lost may have landed, and a promoted standby may differ from the old primary.
   */
  get losses(): number {
    return this.locator?.losses ?? 0;
  }

  /**
   * PostgreSQL: how many commits have waited longer than 3 seconds for the
   * synchronous standby to confirm them (0 on SQLite). Normally such a wait lasts milliseconds; a
   * long one means no standby is attached (it went, or a promoted standby kept
   * `synchronous_standby_names` and has none yet), and every save hangs until one is.
   */
  async commitsWaitingForStandby(): Promise<number> {
    if (this.dialect !== 'postgres') return 0;
    const r = await sql<{ n: string | number }>`select count(*) as n from pg_stat_activity
      where wait_event = 'SyncRep' and now() - state_change > interval '3 seconds'`.execute(this.db);
    return toNumber(r.rows[0]?.n);
  }

  /** PostgreSQL: the writable primary's URL now (throws StoreUnavailableError while there is none). */
  primaryUrl(): string {
    if (!this.locator) throw new Error('not a PostgreSQL store');
    return this.locator.current();
  }

  /** The better-sqlite3 handle, for online backups (`.backup()`, never a file copy). */
  sqliteHandle(): BetterSqlite3.Database | null {
    return this.sqlite;
  }

  /**
   * Where another thread can open this store itself (verify's workers): the SQLite file, or the
   * PostgreSQL database. Null for a SQLite store that is not a file.
   */
  workerSource(): WorkerStoreSource | null {
    if (this.sqlite) {
      const file = this.sqlite.name;
      return this.sqlite.memory || !file ? null : { dialect: 'sqlite', file };
    }
    // The primary's URL now: a worker reads the same database this process writes.
    return this.locator ? { dialect: 'postgres', connectionString: this.locator.current() } : null;
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    this.locator?.close();
    await this.db.destroy();
    if (this.appDb !== this.db) await this.appDb.destroy();
  }
}

/** Another database session already writes this node's chain (PostgreSQL advisory lock). */
export class ChainLockedError extends Error {
  constructor(node: string, holder: string, purpose: string) {
    super(
      `node ${node}'s chain is already being written in this PostgreSQL database by ${holder}: a chain has exactly one writer, so ${purpose} did not start. Is another copy of this node's data directory running?`,
    );
    this.name = 'ChainLockedError';
  }
}

/** Takes `held`'s advisory lock on `url` on a connection of its own (see Store.lockChain). */
async function takeChainLock(url: string, held: HeldChainLock, locator: PrimaryLocator): Promise<void> {
  const client = new pg.Client({
    connectionString: url,
    application_name: `holdfast writer ${held.node}`.slice(0, 63),
    connectionTimeoutMillis: 5000,
  });
  // The lock lives as long as this session: when it drops, the lock is gone, and the store looks
  // for the primary again (re-taking the lock there) before anything else is written.
  client.on('error', (error) => {
    if (held.client !== client) return;
    held.client = null;
    locator.lost(url, error);
  });
  await client.connect();
  try {
    const r = await client.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtextextended($1, 0)) as locked',
      [held.key],
    );
    if (!r.rows[0]?.locked) {
      const holder = await client.query<{ application_name: string; client_addr: string | null }>(
        `select a.application_name, a.client_addr::text as client_addr from pg_locks l
           join pg_stat_activity a on a.pid = l.pid
          where l.locktype = 'advisory' and l.granted
            and ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`,
        [held.key],
      );
      const who = holder.rows[0]
        ? `${holder.rows[0].application_name || 'a session'}${holder.rows[0].client_addr ? ` from ${holder.rows[0].client_addr}` : ''}`
        : 'another session';
      throw new ChainLockedError(held.node, who, held.purpose);
    }
  } catch (error) {
    await client.end().catch(() => undefined);
    throw error;
  }
  held.client = client;
}

/** Before a new primary is used: every chain lock this process held is taken there. */
async function retakeChainLocks(
  url: string,
  locks: ReadonlySet<HeldChainLock>,
  locator: PrimaryLocator,
): Promise<void> {
  for (const held of locks) {
    const old = held.client;
    held.client = null;
    await old?.end().catch(() => undefined);
    await takeChainLock(url, held, locator);
  }
}

/** FailoverPool has the shape Kysely's dialect needs; its query overload for cursors is never used. */
function asKyselyPool(pool: FailoverPool): PostgresPool {
  return pool as unknown as PostgresPool;
}

/** See `Store.probeWrite`. */
const WRITE_PROBE_BYTES = 256 * 1024;

/**
 * Kysely's `transaction().execute` rolls back after any error and lets the rollback's own error
 * replace the first one. When a COMMIT fails because the disk is full, SQLite has already rolled
 * the transaction back, so the rollback fails with "cannot rollback - no transaction is active"
 * and the real cause (SQLITE_FULL) was lost. Here the first error is always the one thrown.
 */
async function runTransaction<T>(db: Db, fn: (trx: Tx) => Promise<T>): Promise<T> {
  const trx = await db.startTransaction().execute();
  try {
    const result = await fn(trx);
    try {
      await trx.commit().execute();
    } catch (error) {
      // The connection went during COMMIT: whether it committed is not known here (see primary.ts).
      if (error instanceof StoreUnavailableError) throw new CommitOutcomeUnknownError({ cause: error });
      throw error;
    }
    return result;
  } catch (error) {
    if (!trx.isCommitted && !trx.isRolledBack) {
      // The rollback's failure only says the database ended the transaction itself; the connection
      // is released either way.
      await trx
        .rollback()
        .execute()
        .catch(() => undefined);
    }
    throw error;
  }
}

/** pg returns int8 and count(*) as strings; SQLite returns numbers. */
export function toNumber(value: string | number | bigint | null | undefined): number {
  if (value === null || value === undefined) return 0;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`not a safe integer: ${String(value)}`);
  return n;
}
