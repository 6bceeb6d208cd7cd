import {
  CompiledQuery,
  PostgresDialect,
  type PostgresDialectConfig,
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

/**
 * How the ledger's writing transactions start on PostgreSQL (ledger/commit-notice.ts): the
 * provider's commit lock, shared by every hub process over the database, the provider written as a
 * literal when it is one of `LITERAL_TENANT`.
 */
export const COMMIT_LOCK_PREFIX = 'select pg_advisory_xact_lock(hashtextextended(';

/** The channel of the ledger's commit notices. */
export const COMMIT_CHANNEL = 'holdfast_commits';

/**
 * The ledger's commit notice (ledger/commit-notice.ts), its text written as a literal: held back and
 * sent with the transaction's `commit` in one round trip (`select pg_notify(…); commit`). PostgreSQL
 * delivers a notice only when its transaction commits, so it means the same whenever it is sent
 * inside the transaction; if it fails, the `commit` after it in the same query does not run and the
 * transaction is rolled back as for any failed commit.
 */
export const COMMIT_NOTICE_PREFIX = `select pg_notify('${COMMIT_CHANNEL}', `;

/** A request transaction's tenant setting as `Store.withTenant` sends it, the tenant a literal. */
const TENANT_SETTING = /^select set_config\('holdfast\.tenant', '([A-Za-z0-9_.:-]{1,100})', true\)$/;

/** The tenant setting of a connection's session (the statement runs outside any transaction). */
const sessionTenantSetting = (tenant: string): string =>
  `select set_config('holdfast.tenant', '${tenant}', false)`;

/**
 * A statement that only reads: a `select` with no locking clause and none of the functions that act
 * (locks, notices, settings, sequences). Under PostgreSQL's default isolation (read committed) each
 * statement sees what was committed when it started, inside a transaction or not, so such reads
 * answer the same outside the transaction as in it.
 */
function onlyReads(query: CompiledQuery): boolean {
  return (
    /^select\s/i.test(query.sql) &&
    !/\b(for\s+(update|no\s+key\s+update|share|key\s+share)|pg_advisory\w*|pg_notify|set_config|nextval|setval|pg_sleep)\b/i.test(
      query.sql,
    )
  );
}

/**
 * The tenant each connection's session is set to (`set_config(…, false)`), by connection: only ever
 * set by a statement of its own outside a transaction, so no rollback takes it back, and forgotten
 * before it is set again (a failure leaves it unknown, and it is set again before the next read).
 */
const sessionTenants = new WeakMap<DatabaseConnection, string>();

/** Whether a transaction's first statement may go with its `begin`: one of the two above. */
function goesWithBegin(query: CompiledQuery): boolean {
  return (
    query.parameters.length === 0 &&
    (query.sql.startsWith(TENANT_SETTING_PREFIX) || query.sql.startsWith(COMMIT_LOCK_PREFIX))
  );
}

/**
 * PostgreSQL with a transaction's `begin` held back and sent with its first statement when that is
 * the tenant setting of a request's transaction or the ledger's commit lock, as one simple query
 * (`begin; select set_config(…)`): one round trip instead of two, on every request and every
 * group commit. Any other first statement gets its `begin` on its own before
 * it, as usual; a transaction with no statement sends nothing.
 */
export class HeldBeginDialect extends PostgresDialect {
  constructor(
    config: PostgresDialectConfig,
    /**
     * The request pool (`Store.withTenant`, and nothing else): a request transaction's reads before
     * its first write go without the transaction (see `HeldBeginConnection`).
     */
    private readonly readsFirst = false,
  ) {
    super(config);
  }

  override createDriver(): Driver {
    return new HeldBeginDriver(super.createDriver(), this.readsFirst);
  }
}

export class HeldBeginDriver implements Driver {
  constructor(
    private readonly inner: Driver,
    private readonly readsFirst = false,
  ) {}

  init(): Promise<void> {
    return this.inner.init();
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    return new HeldBeginConnection(await this.inner.acquireConnection(), this.readsFirst);
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const c = connection as HeldBeginConnection;
    c.inTransaction = true;
    if (settings.isolationLevel || settings.accessMode) await this.inner.beginTransaction(c.inner, settings);
    else c.beginHeld = true;
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as HeldBeginConnection;
    const notice = c.takeNotice();
    if (notice !== null) {
      const begin = c.beginHeld ? 'begin; ' : '';
      c.endHeld();
      await c.inner.executeQuery(CompiledQuery.raw(`${begin}${notice}; commit`));
    }
    // A transaction that only read (or did nothing) was never begun: nothing to end.
    else if (c.beginHeld) c.endHeld();
    else await this.inner.commitTransaction(c.inner);
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const c = connection as HeldBeginConnection;
    c.takeNotice();
    if (c.beginHeld) c.endHeld();
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
    c.endHeld();
    c.takeNotice();
    return this.inner.releaseConnection(c.inner);
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/**
 * On the request pool (`readsFirst`) a request transaction's tenant setting is held with its
 * `begin`, and its statements that only read (`onlyReads`) run before the transaction is begun,
 * under the tenant set for the connection's session: one statement, sent only when the connection's
 * session was last set to another tenant (or never), and row-level security admits that tenant's
 * rows as it does for the transaction's own setting. The first statement that may write begins the
 * transaction, with the tenant set for the transaction as before (`begin; select set_config(…,
 * true)`), and everything from there on is one transaction. A request that only reads sends its
 * reads and nothing else: no `begin`, no tenant setting (the connection's session has it), no
 * `commit` — three round trips fewer. Every use of the request pool sets its tenant first
 * (`Store.withTenant` is its only door), so a session's tenant left from an earlier request is
 * never what a read runs under.
 */
class HeldBeginConnection implements DatabaseConnection {
  /** `begin` was asked for and not sent yet. */
  beginHeld = false;
  /** The tenant of the transaction held (request pool only): set when its `begin` is sent. */
  private tenant: string | null = null;
  /** Inside a transaction (between the driver's begin and its commit or rollback). */
  inTransaction = false;
  /** The commit notice held for the `commit` (`COMMIT_NOTICE_PREFIX`). */
  private notice: string | null = null;

  constructor(
    readonly inner: DatabaseConnection,
    private readonly readsFirst: boolean,
  ) {}

  endHeld(): void {
    this.beginHeld = false;
    this.tenant = null;
  }

  /** The held commit notice, if any, forgotten here; the transaction ends with this call. */
  takeNotice(): string | null {
    const notice = this.notice;
    this.notice = null;
    this.inTransaction = false;
    return notice;
  }

  async sendHeldBegin(): Promise<void> {
    if (!this.beginHeld) return;
    const tenant = this.tenant;
    this.endHeld();
    await this.inner.executeQuery(
      CompiledQuery.raw(
        tenant === null ? 'begin' : `begin; select set_config('holdfast.tenant', '${tenant}', true)`,
      ),
    );
  }

  /** Sets the connection's session to `tenant` unless it is set to it already. */
  private async sessionTenant(tenant: string): Promise<void> {
    if (sessionTenants.get(this.inner) === tenant) return;
    sessionTenants.delete(this.inner);
    await this.inner.executeQuery(CompiledQuery.raw(sessionTenantSetting(tenant)));
    sessionTenants.set(this.inner, tenant);
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    if (
      this.inTransaction &&
      this.notice === null &&
      query.parameters.length === 0 &&
      query.sql.startsWith(COMMIT_NOTICE_PREFIX)
    ) {
      this.notice = query.sql;
      return { rows: [] };
    }
    if (this.readsFirst && this.beginHeld) {
      const setting = this.tenant === null ? TENANT_SETTING.exec(query.sql) : null;
      if (setting && query.parameters.length === 0) {
        this.tenant = setting[1]!;
        return { rows: [] };
      }
      if (this.tenant !== null && onlyReads(query)) {
        await this.sessionTenant(this.tenant);
        return this.inner.executeQuery(query);
      }
    }
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
