import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';

/**
 * The hub on a replicated PostgreSQL (a primary with streaming standbys): which host to write to,
 * what happens when it goes, and how requests are answered meanwhile.
 *
 * node-postgres connects to one host. HOLDFAST_DATABASE_URL may name several in libpq's way
 * (`postgres://user@db1:5432,db2:5432/holdfast`); each is probed, and only the one that accepts
 * writes (not in recovery, transactions not read-only) is used. A standby is never written to.
 *
 * When the primary goes (its connections drop, it shuts down, or it answers that it is read-only
 * after a demotion), the store stops handing out connections at once, so requests are answered
 * 503 "not saved, send it again" instead of waiting or failing with a generic 500, and it looks
 * for the writable host again with backoff until one answers: the promoted standby after a
 * failover, or the same host after a restart. Nothing is switched by Holdfast itself: promoting a
 * standby is the operator's (or their failover manager's) decision.
 */

/** The database cannot be reached or is not writable now: nothing of the call was done. */
export class StoreUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StoreUnavailableError';
  }
}

/**
 * The connection went while COMMIT was under way: the transaction may have committed (its commit
 * record can reach the disk, and a synchronous standby, while the answer never comes back) or not.
 * Never reported as success, nor as "nothing saved".
 */
export class CommitOutcomeUnknownError extends StoreUnavailableError {
  constructor(options?: { cause?: unknown }) {
    super(
      'the database connection was lost while a commit was under way: it may or may not have been saved',
      options,
    );
    this.name = 'CommitOutcomeUnknownError';
  }
}

/**
 * SQLSTATEs that mean "this server is not (or no longer) the writable primary, or is going away":
 * class 08 connection exceptions, admin and crash shutdown, "cannot connect now" (starting, in
 * recovery, shutting down), and a read-only transaction (a demoted primary, or a standby).
 */
const LOSS_STATES = /^(08[0-9A-Z]{3}|57P01|57P02|57P03|25006)$/;
/** Node's errno names for a connection that could not be made or was cut. */
const LOSS_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);
/** node-postgres reports a cut connection in words only. */
const LOSS_MESSAGES =
  /^(Connection terminated|Client has encountered a connection error|Client was closed|Connection terminated due to connection timeout|timeout expired|Query read timeout)/;

/** Whether `error` (or one of its causes) says the database connection was lost or is not writable. */
export function isConnectionLoss(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof StoreUnavailableError) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (LOSS_STATES.test(code) || LOSS_ERRNOS.has(code))) return true;
    if (LOSS_MESSAGES.test(e.message)) return true;
  }
  return false;
}

/**
 * The hosts of a libpq-style multi-host URL, each as a URL of its own (the same user, database and
 * parameters). A URL with one host comes back as it is.
 */
export function splitHosts(url: string): string[] {
  const m = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/.exec(url);
  if (!m) return [url];
  const hosts = m[3]!.split(',').filter((h) => h !== '');
  if (hosts.length <= 1) return [url];
  return hosts.map((h) => `${m[1]}${m[2] ?? ''}${h}${m[4]}`);
}

/** host:port of a URL, for logs and /health: never its user or password. */
export function hostLabel(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}`;
  } catch {
    return 'the database';
  }
}

/** What a probe of one host found. */
type ProbeResult = { url: string; writable: boolean } | { url: string; problem: string };

const PROBE_TIMEOUT_MS = 2000;
const FIRST_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 2000;

function describeError(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

/** One host's role: whether it would take writes now. */
async function probe(url: string): Promise<ProbeResult> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const r = await client.query<{ recovery: boolean; read_only: string }>(
      `select pg_is_in_recovery() as recovery, current_setting('transaction_read_only') as read_only`,
    );
    const row = r.rows[0];
    return { url, writable: row?.recovery === false && row.read_only === 'off' };
  } catch (error) {
    return { url, problem: describeError(error) };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Which of the configured hosts is the writable primary, and whether the store has one now. Every
 * connection the store makes goes to `current()`; a loss seen on any of them starts a search.
 */
export class PrimaryLocator {
  private primary: string | null = null;
  private searching: Promise<void> | null = null;
  private lastProblem = 'not connected yet';
  private lostAt: number | null = null;
  private closed = false;
  /** Times the connection was lost (a failover or restart): the ledger re-reads its heads after one. */
  private lossCount = 0;
  private readonly listeners = new Set<(primary: string) => void>();

  constructor(
    readonly urls: readonly string[],
    /**
     * Run on a newly found primary before it is used (the store re-takes its chain locks there);
     * if it throws, the host is not used and the search goes on.
     */
    private readonly beforeUse: (url: string) => Promise<void> = async () => undefined,
    private readonly now: () => number = Date.now,
  ) {}

  /** The first search at start-up: one round over the hosts; throws naming each host's state. */
  async connect(): Promise<void> {
    const found = await this.round();
    if (!found) throw new Error(`cannot open the store: ${this.lastProblem}`);
  }

  /** The primary's URL; throws StoreUnavailableError while there is none. */
  current(): string {
    if (this.primary) return this.primary;
    throw new StoreUnavailableError(
      `the database is not reachable: ${this.problemWithoutHosts()}; looking for the writable primary`,
    );
  }

  get losses(): number {
    return this.lossCount;
  }

  /** Why the store cannot write now, with how long it has been so, or null when it can. */
  get unavailable(): { problem: string; sinceMs: number } | null {
    if (this.primary || this.lostAt === null) return null;
    return {
      problem: `looking for the writable PostgreSQL primary: ${this.lastProblem}`,
      sinceMs: this.lostAt,
    };
  }

  onPrimary(fn: (primary: string) => void): void {
    this.listeners.add(fn);
  }

  /** A connection to `url` failed in a way that means it is gone or not writable: look again. */
  lost(url: string | null, error: unknown): void {
    if (this.closed) return;
    if (url !== null && this.primary !== url) return; // an old pool's connection, already replaced
    if (this.primary !== null) {
      this.primary = null;
      this.lossCount++;
      this.lostAt = this.now();
      this.lastProblem = `${url ? hostLabel(url) : 'the primary'} was lost (${describeError(error)})`;
    }
    this.searching ??= this.searchUntilFound().finally(() => {
      this.searching = null;
    });
  }

  close(): void {
    this.closed = true;
  }

  private async searchUntilFound(): Promise<void> {
    let wait = FIRST_BACKOFF_MS;
    while (!this.closed) {
      if (await this.round()) return;
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, MAX_BACKOFF_MS);
    }
  }

  /** Probes every host; uses the one writable host if there is exactly one. */
  private async round(): Promise<boolean> {
    const results = await Promise.all(this.urls.map(probe));
    const writable = results.filter((r) => 'writable' in r && r.writable).map((r) => r.url);
    const states = results.map(
      (r) =>
        `${hostLabel(r.url)} ${'problem' in r ? `does not answer (${r.problem})` : r.writable ? 'accepts writes' : 'is a standby (read-only)'}`,
    );
    if (writable.length > 1) {
      // Two primaries: the old one came back without being made a standby. Writing to either could
      // lose what the other holds, so neither is used until the operator settles it.
      this.lastProblem = `more than one host accepts writes (${states.join('; ')}): refusing to choose; make the old primary a standby`;
      return false;
    }
    if (writable.length === 0) {
      this.lastProblem = `no host accepts writes (${states.join('; ')})`;
      return false;
    }
    try {
      await this.beforeUse(writable[0]!);
    } catch (error) {
      this.lastProblem = `${hostLabel(writable[0]!)} accepts writes but could not be used: ${describeError(error)}`;
      return false;
    }
    if (this.closed) return false;
    this.primary = writable[0]!;
    this.lostAt = null;
    for (const fn of this.listeners) fn(this.primary);
    return true;
  }

  /** The last problem for an HTTP answer: which hosts, but no more (it reaches clients). */
  private problemWithoutHosts(): string {
    return this.lostAt === null ? 'not connected' : 'the connection to the primary was lost';
  }
}

/**
 * A pool in the shape Kysely's PostgresDialect takes, over the locator's current primary: one
 * node-postgres pool per host, the old one ended when the primary moves. A connection is refused at
 * once (StoreUnavailableError) while there is no primary, and a query that fails with a loss
 * reports it to the locator, is thrown as StoreUnavailableError, and its connection is destroyed
 * rather than reused.
 */
export class FailoverPool {
  private pool: { url: string; pool: pg.Pool } | null = null;
  private readonly wrapped = new WeakMap<pg.PoolClient, FailoverClient>();

  constructor(
    private readonly locator: PrimaryLocator,
    private readonly config: Omit<pg.PoolConfig, 'connectionString'>,
  ) {}

  async connect(): Promise<FailoverClient> {
    const url = this.locator.current();
    if (this.pool?.url !== url) {
      const old = this.pool?.pool;
      const pool = new pg.Pool({ ...this.config, connectionString: url });
      // Without a listener an idle client's error (the server restarting) would crash the process.
      pool.on('error', (error) => this.locator.lost(url, error));
      this.pool = { url, pool };
      // Clients still checked out finish (and fail) on their own; idle ones close now.
      void old?.end().catch(() => undefined);
    }
    let client: pg.PoolClient;
    try {
      client = await this.pool.pool.connect();
    } catch (error) {
      if (!isConnectionLoss(error)) throw error;
      this.locator.lost(url, error);
      throw new StoreUnavailableError('the database is not reachable: looking for the writable primary', {
        cause: error,
      });
    }
    let wrapper = this.wrapped.get(client);
    if (!wrapper) {
      const made = new FailoverClient(client, url, this.locator);
      // A checked-out client has no pool listener: a connection cut between two queries (inside a
      // transaction) is an 'error' event that would otherwise end the process.
      client.on('error', (error) => {
        made.broken = true;
        this.locator.lost(url, error);
      });
      this.wrapped.set(client, made);
      wrapper = made;
    }
    wrapper.broken = false;
    return wrapper;
  }

  async end(): Promise<void> {
    this.locator.close();
    await this.pool?.pool.end();
  }
}

export class FailoverClient {
  broken = false;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly url: string,
    private readonly locator: PrimaryLocator,
  ) {}

  async query<R>(text: string, values: readonly unknown[]): Promise<pg.QueryResult & { rows: R[] }> {
    try {
      if (isCopyIn(text, values))
        return (await this.copyIn(text, values[0])) as pg.QueryResult & { rows: R[] };
      return await this.client.query(text, values as unknown[]);
    } catch (error) {
      if (!isConnectionLoss(error)) throw error;
      this.broken = true;
      this.locator.lost(this.url, error);
      throw new StoreUnavailableError('the database connection was lost: looking for the writable primary', {
        cause: error,
      });
    }
  }

  /** Sends `data` (COPY's text format) through a `copy … from stdin` statement (pg-copy-streams). */
  private async copyIn(text: string, data: string): Promise<pg.QueryResult> {
    const stream = this.client.query(copyFrom(text));
    await new Promise<void>((resolve, reject) => {
      stream.on('finish', resolve);
      stream.on('error', reject);
      stream.end(data);
    });
    return { command: 'COPY', rowCount: stream.rowCount, rows: [], oid: 0, fields: [] };
  }

  release(destroy?: boolean): void {
    // A connection that saw a loss is never handed out again (a demoted primary keeps it open).
    this.client.release(destroy === true || this.broken ? true : undefined);
  }
}

/**
 * A `copy <table> (<columns>) from stdin` statement whose one parameter is the data to send, in
 * COPY's text format: how a Kysely query (which knows only text and parameters) asks for COPY on
 * its transaction's connection (ledger/import-copy.ts).
 */
export function isCopyIn(text: string, values: readonly unknown[]): values is [string] {
  return values.length === 1 && typeof values[0] === 'string' && COPY_IN.test(text);
}

const COPY_IN = /^copy [a-z_]+ \([a-z_, ]+\) from stdin$/;
