import {
  CompiledQuery,
  PostgresDialect,
  type DatabaseConnection,
  type Driver,
  type QueryCompiler,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';

/**
 * The statement `Store.withTenant` opens each PostgreSQL transaction with, the tenant written as a
 * literal (no parameters), so that it can travel in one round trip with `begin`.
 */
export const TENANT_SETTING_PREFIX = "select set_config('holdfast.tenant', ";

/** Tenants written as a literal: the ids Holdfast makes; any other tenant is sent as a parameter. */
export const LITERAL_TENANT = /^[A-Za-z0-9_.:-]{1,100}$/;

/** The ledger's savepoint before the guards of a group commit (ledger.ts), often its first statement. */
export const GUARD_SAVEPOINT = 'savepoint holdfast_guard';

/**
 * How the ledger's writing transactions start on PostgreSQL (ledger/commit-notice.ts): the
 * provider's commit lock, shared by every hub process over the database, the provider written as a
 * literal when it is one of `LITERAL_TENANT`.
 */
export const COMMIT_LOCK_PREFIX = 'select pg_advisory_xact_lock(hashtextextended(';

/** Whether a transaction's first statement may go with its `begin`: one of the three above. */
function goesWithBegin(query: CompiledQuery): boolean {
  return (
    query.parameters.length === 0 &&
    (query.sql.startsWith(TENANT_SETTING_PREFIX) ||
      query.sql === GUARD_SAVEPOINT ||
      query.sql.startsWith(COMMIT_LOCK_PREFIX))
  );
}

/**
 * PostgreSQL with a transaction's `begin` held back and sent with its first statement when that is
 * the tenant setting of a request's transaction, the ledger's commit lock or its guard savepoint,
 * as one simple
 * query (`begin; select set_config(…)`): one round trip instead of two, on every request and every
 * group commit of guarded appends. Any other first statement gets its `begin` on its own before
 * it, as usual; a transaction with no statement sends nothing.
 */
export class HeldBeginDialect extends PostgresDialect {
  override createDriver(): Driver {
    return new HeldBeginDriver(super.createDriver());
  }
}

class HeldBeginDriver implements Driver {
  constructor(private readonly inner: Driver) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new HeldBeginConnection(await this.inner.acquireConnection());
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = connection as HeldBeginConnection;
    if (settings.isolationLevel || settings.accessMode) await this.inner.beginTransaction(c.inner, settings);
    else c.beginHeld = true;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as HeldBeginConnection;
    if (c.beginHeld) c.beginHeld = false;
    else await this.inner.commitTransaction(c.inner);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as HeldBeginConnection;
    if (c.beginHeld) c.beginHeld = false;
    else await this.inner.rollbackTransaction(c.inner);
  }

  async savepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    const c = connection as HeldBeginConnection;
    await c.sendHeldBegin();
    await this.inner.savepoint!(c.inner, name, compileQuery);
  }

  rollbackToSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.inner.rollbackToSavepoint!((connection as HeldBeginConnection).inner, name, compileQuery);
  }

  releaseSavepoint(
    connection: DatabaseConnection,
    name: string,
    compileQuery: QueryCompiler['compileQuery'],
  ): Promise<void> {
    return this.inner.releaseSavepoint!((connection as HeldBeginConnection).inner, name, compileQuery);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    const c = connection as HeldBeginConnection;
    c.beginHeld = false;
    return this.inner.releaseConnection(c.inner);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

class HeldBeginConnection implements DatabaseConnection {
  /** `begin` was asked for and not sent yet. */
  beginHeld = false;

  constructor(readonly inner: DatabaseConnection) {}

  async sendHeldBegin(): Promise<void> {
    if (!this.beginHeld) return;
    this.beginHeld = false;
    await this.inner.executeQuery(CompiledQuery.raw('begin'));
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (this.beginHeld && goesWithBegin(query)) {
      this.beginHeld = false;
      // Two statements in one simple query; the second one's result is not used.
      await this.inner.executeQuery(CompiledQuery.raw(`begin; ${query.sql}`));
      return { rows: [] };
    }
    await this.sendHeldBegin();
    return this.inner.executeQuery(query);
  }

  async *streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    await this.sendHeldBegin();
    yield* this.inner.streamQuery<R>(query, chunkSize);
  }
}
