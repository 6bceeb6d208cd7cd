import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, PostgresDialect, SqliteDialect, sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { CoreDatabase } from './schema.ts';
import { runMigrations } from './migrations.ts';

export type StoreDialect = 'sqlite' | 'postgres';

export type StoreOptions =
  | { dialect: 'sqlite'; file: string }
  | { dialect: 'postgres'; connectionString: string; maxConnections?: number };

/**
 * Kysely over either store. Projection tables are not in CoreDatabase's type, so they are reached
 * through `Kysely<any>`-free helpers: projections type their own tables with `withTables`.
 */
export type Db = Kysely<CoreDatabase>;
export type Tx = Transaction<CoreDatabase>;

/**
 * One store: a SQLite file or a PostgreSQL database behind the same Kysely interface.
 * Durability: SQLite runs in WAL mode with synchronous=FULL, so a commit is on disk when it returns;
 * PostgreSQL keeps its defaults (fsync on, synchronous_commit on).
 */
export class Store {
  private constructor(
    readonly dialect: StoreDialect,
    readonly db: Db,
    private readonly sqlite: BetterSqlite3.Database | null,
  ) {}

  static async open(options: StoreOptions): Promise<Store> {
    let store: Store;
    if (options.dialect === 'sqlite') {
      mkdirSync(dirname(options.file), { recursive: true });
      const database = new BetterSqlite3(options.file);
      database.pragma('journal_mode = WAL');
      database.pragma('synchronous = FULL');
      database.pragma('foreign_keys = ON');
      database.pragma('busy_timeout = 10000');
      const db = new Kysely<CoreDatabase>({ dialect: new SqliteDialect({ database }) });
      store = new Store('sqlite', db, database);
    } else {
      const pool = new pg.Pool({
        connectionString: options.connectionString,
        max: options.maxConnections ?? 10,
      });
      // Without a listener an idle client's error (the server restarting) would crash the process.
      pool.on('error', () => undefined);
      const db = new Kysely<CoreDatabase>({ dialect: new PostgresDialect({ pool }) });
      store = new Store('postgres', db, null);
    }
    await runMigrations(store);
    return store;
  }

  /** Runs `fn` in one transaction; its writes are durable when this resolves. */
  transaction<T>(fn: (trx: Tx) => Promise<T>): Promise<T> {
    return this.db.transaction().execute(fn);
  }

  /** The better-sqlite3 handle, for online backups (`.backup()`, never a file copy). */
  sqliteHandle(): BetterSqlite3.Database | null {
    return this.sqlite;
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

/** pg returns int8 and count(*) as strings; SQLite returns numbers. */
export function toNumber(value: string | number | bigint | null | undefined): number {
  if (value === null || value === undefined) return 0;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`not a safe integer: ${String(value)}`);
  return n;
}
