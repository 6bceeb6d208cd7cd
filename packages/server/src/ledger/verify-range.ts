import type { LedgerCrypto, StoredEvent } from '@holdfast/core';
// The chain module alone: verify's workers load this file, and a worker starts faster the less it loads.
import { canonicalBody } from '@holdfast/core/ledger/body';
import { ChainVerifier, type ChainReport, type Checkpoint } from '@holdfast/core/ledger/chain';
import type BetterSqlite3 from 'better-sqlite3';

/**
 * Rows per read: a page and the one read ahead stay small (a few MB, short-lived for the garbage
 * collector) while the per-query cost stays noise. 1,000-2,000 measured at least as fast as 10,000
 * (bench/ledger.ts).
 */
export const PAGE = 2_000;

/** No upper bound on seq. */
export const NO_END = Number.MAX_SAFE_INTEGER;

/**
 * A chain's row as stored, as a plain array: seq, id, hlc, type, v, actor, payload, prev_hash, hash.
 * Only the columns the hash covers besides the chain key: the tenant and node are the ones asked
 * for. PostgreSQL hands bigint columns over as strings. Verify reads a row this way only when the
 * store's own canonical body of it does not hash to its hash (see `VerifyRowTuple`).
 */
export type ChainRowTuple = [
  number | string,
  string,
  string,
  string,
  number | string,
  string,
  string,
  string,
  string,
];

export const EVENT_COLUMNS = 'seq, id, hlc, type, v, actor, payload, prev_hash, hash';

/**
 * A chain's row as verify reads it: seq, hlc, prev_hash, hash, the event's canonical body (null
 * where SQLite would not build it), and the payload of a `node.registered` event (null for any other
 * type). Verify is bound by reading and hashing (docs/BENCHMARKS.md, Ledger). On SQLite the store
 * builds the body in the page query: one string built in SQLite's own code costs less than handing
 * nine columns to JavaScript and concatenating them there. On PostgreSQL verify's thread builds it
 * from the nine columns (`postgresRow`): there the server's `to_json` cost more than it saved, and
 * node-postgres spends about as long on a row of six columns as on one of nine.
 */
export type VerifyRowTuple = [number | string, string, string, string, string | null, string | null];

/**
 * The canonical body of an event (core's `canonicalBody`), built by SQLite: keys in RFC 8785 order,
 * each string as a JSON string literal (`json_quote`, which escapes exactly as JSON.stringify does:
 * quote, backslash, \b \f \n \r \t, other controls as lowercase \u00xx), the payload as stored
 * (its canonical text), seq and v as decimal digits. `verify-body.test.ts` holds it equal to
 * `canonicalBody` for strings that need escaping.
 *
 * It only has to be injective to be safe: a body that hashes to the event's hash then vouches for
 * every column in it. SQLite's columns hold whatever type was written, so the body is null unless
 * every column has the type the ledger writes (`json_quote` of an integer would drop the quotes, and
 * of a blob would fail the query); verify then checks that row the slow way.
 */
function sqliteBodySql(): string {
  // The envelope's keys in RFC 8785 order, each with its column and the type the ledger writes there:
  // a string is quoted, the payload is its canonical JSON text as stored, seq and v are integers.
  const fields: [key: string, column: string, kind: 'string' | 'json' | 'integer'][] = [
    ['actor', 'actor', 'string'],
    ['hlc', 'hlc', 'string'],
    ['id', 'id', 'string'],
    ['node', 'node', 'string'],
    ['payload', 'payload', 'json'],
    ['prevHash', 'prev_hash', 'string'],
    ['seq', 'seq', 'integer'],
    ['tenant', 'tenant', 'string'],
    ['type', 'type', 'string'],
    ['v', 'v', 'integer'],
  ];
  const parts = fields.flatMap(([key, column, kind], i) => [
    `'${i === 0 ? '{' : ','}"${key}":'`,
    kind === 'string' ? `json_quote(${column})` : column,
  ]);
  parts.push(`'}'`);
  const typed = fields
    .map(([, column, kind]) => `typeof(${column}) = '${kind === 'integer' ? 'integer' : 'text'}'`)
    .join(' and ');
  // concat() builds the string once where a chain of || copies it at every step; it would skip a
  // null, but the types are checked first.
  return `case when ${typed} then concat(${parts.join(', ')}) end`;
}

/** The columns of a `VerifyRowTuple` as SQLite builds them, in order. */
export const SQLITE_VERIFY_COLUMNS =
  `seq, hlc, prev_hash, hash, ${sqliteBodySql()} as body, ` +
  `case when type = 'node.registered' then payload end as registered`;

/** A whole stored row (`EVENT_COLUMNS`) as verify reads it, its body built in this thread. */
export function postgresRow(tenant: string, node: string, r: ChainRowTuple): VerifyRowTuple {
  const event = storedEvent(tenant, node, r);
  return [
    r[0],
    event.hlc,
    event.prevHash,
    event.hash,
    canonicalBody(event),
    event.type === 'node.registered' ? event.payloadJson : null,
  ];
}

/** The page of a chain's rows after `afterSeq`, in seq order, at most PAGE rows. */
export type PageReader = (afterSeq: number) => VerifyRowTuple[] | Promise<VerifyRowTuple[]>;

/** A chain's event at a seq as stored, or null. */
export type EventReader = (seq: number) => ChainRowTuple | null | Promise<ChainRowTuple | null>;

/** A position in a chain: an event's seq, hash and clock. */
export interface ChainPosition {
  seq: number;
  hash: string;
  hlc: string;
}

export interface RangeResult {
  report: ChainReport;
  /**
   * Rows of this range whose body verify had to build itself (the store's did not hash to the
   * event's hash): carried back from a worker into `bodyStats`.
   */
  rebuilt: number;
  /** The verifier stopped at an event: `report.fault` is the chain's first bad event from the start given. */
  stopped: boolean;
  /** The last event that checked out, or the start when none did (null: the chain's start). */
  end: ChainPosition | null;
}

/**
 * SQLite pages as plain arrays from one prepared statement, which costs a fraction of building row
 * objects through the query builder. `hi` is the last seq to read.
 */
export function sqlitePages(
  database: BetterSqlite3.Database,
  tenant: string,
  node: string,
  hi: number,
): PageReader {
  const statement = database
    .prepare(
      `select ${SQLITE_VERIFY_COLUMNS} from ledger_events where tenant = ? and node = ? and seq > ? and seq <= ? order by seq limit ?`,
    )
    .raw(true);
  return (afterSeq) => statement.all(tenant, node, afterSeq, hi, PAGE) as VerifyRowTuple[];
}

/** Counts kept across checks in this thread (tests and the benchmark read them). */
export const bodyStats = { rebuilt: 0 };

/**
 * Pushes a chain's rows after `start` (or from its first) through `verifier` until they run out or
 * it finds a fault, reading the next page ahead while it hashes the current one (PostgreSQL works on
 * it in its own process meanwhile). A row whose store-built body does not hash to its hash is read
 * again whole and checked as stored, which finds the fault or clears it. One pass over a whole
 * chain, or one seq range of it in a worker.
 */
export async function verifyRows(
  verifier: ChainVerifier,
  start: ChainPosition | null,
  read: PageReader,
  readEvent: EventReader,
  onRows?: (rows: number) => void,
): Promise<RangeResult> {
  const { tenant, node } = verifier;
  let last: VerifyRowTuple | null = null;
  let stopped = false;
  let rebuilt = 0;
  let page: Promise<VerifyRowTuple[]> | null = Promise.resolve(read(start?.seq ?? 0));
  try {
    while (page) {
      const rows: VerifyRowTuple[] = await page;
      page = rows.length === PAGE ? Promise.resolve(read(Number(rows[rows.length - 1]![0]))) : null;
      for (const r of rows) {
        const seq = Number(r[0]);
        let ok = verifier.pushHashedBody({
          seq,
          hlc: r[1],
          prevHash: r[2],
          hash: r[3],
          body: r[4],
          registeredPayload: r[5],
        });
        if (ok === 'rebuild') {
          rebuilt++;
          const whole = await readEvent(seq);
          ok = verifier.push(whole ? storedEvent(tenant, node, whole) : vanishedEvent(tenant, node, r));
        }
        if (!ok) {
          stopped = true;
          break;
        }
        last = r;
      }
      onRows?.(rows.length);
      if (stopped) break;
      // SQLite reads synchronously, so without this a range would run to its end without letting
      // this thread hear its workers: a worker whose range was done would wait for its next one.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  } finally {
    // A page read ahead but not needed (a fault ended the chain, or onRows threw).
    if (page) await page.catch(() => undefined);
  }
  bodyStats.rebuilt += rebuilt;
  return {
    report: verifier.finish(),
    rebuilt,
    stopped,
    end: last ? { seq: Number(last[0]), hash: last[3], hlc: last[1] } : start,
  };
}

/** The stored event of a whole row (`EVENT_COLUMNS`) of a chain. */
function storedEvent(tenant: string, node: string, row: ChainRowTuple): StoredEvent {
  return {
    id: row[1],
    tenant,
    node,
    seq: Number(row[0]),
    hlc: row[2],
    type: row[3],
    v: Number(row[4]),
    actor: row[5],
    payloadJson: row[6],
    prevHash: row[7],
    hash: row[8],
  };
}

/**
 * A row gone between verify's two reads of it (only someone writing the store behind the ledger's
 * back removes one) is checked with empty columns, so its content does not match its hash and it is
 * reported as changed.
 */
function vanishedEvent(tenant: string, node: string, r: VerifyRowTuple): StoredEvent {
  return {
    id: '',
    tenant,
    node,
    seq: Number(r[0]),
    hlc: r[1],
    type: '',
    v: 0,
    actor: '',
    payloadJson: '',
    prevHash: r[2],
    hash: r[3],
  };
}

/** One seq range of a chain, checked on its own (in a worker, or by verify's own thread). */
export interface RangeTask {
  id: number;
  tenant: string;
  node: string;
  /** First and last seq of the range. */
  lo: number;
  hi: number;
  /** The tenant's node keys (node, public key), the node's own from its identity file. */
  keys: [string, string][];
  /** The chain's checkpoints at seqs in lo..hi (the chain's last range: from lo on). */
  checkpoints: Checkpoint[];
  selfKey?: string;
  /** The chain's last checkpoint seq before lo (0: none). */
  matchedBefore: number;
}

/** What a range's checker found, and where it started; null if the event before the range is absent. */
export type RangeAnswer = { start: ChainPosition | null; range: RangeResult } | null;

/** A store as a range's checker reads it. */
export interface RangeReader {
  /** The event at `seq` as stored (its hash and clock, unchecked), or null. */
  position(tenant: string, node: string, seq: number): Promise<ChainPosition | null>;
  pages(tenant: string, node: string, hi: number): PageReader;
  /** Whole events of a chain, by seq (for a row whose store-built body did not check out). */
  events(tenant: string, node: string): EventReader;
}

/**
 * Checks one range, starting from the event just before it as the store holds it (trusted here;
 * verify-parallel.ts checks that it is where the range before ended).
 */
export async function checkRange(
  crypto: LedgerCrypto,
  reader: RangeReader,
  task: RangeTask,
  onRows?: (rows: number) => void,
): Promise<RangeAnswer> {
  const { tenant, node, lo, hi } = task;
  const start = lo > 1 ? await reader.position(tenant, node, lo - 1) : null;
  if (lo > 1 && !start) return null;
  const verifier = new ChainVerifier(crypto, tenant, node, new Map(task.keys), task.checkpoints, {
    ...(task.selfKey !== undefined ? { selfKey: task.selfKey } : {}),
    ...(start ? { resumeAfter: { ...start, lastMatchedCheckpointSeq: task.matchedBefore } } : {}),
  });
  return {
    start,
    range: await verifyRows(
      verifier,
      start,
      reader.pages(tenant, node, hi),
      reader.events(tenant, node),
      onRows,
    ),
  };
}

/** Reads ranges from a SQLite database: verify's own handle, or a worker's read-only one. */
export function sqliteRangeReader(database: BetterSqlite3.Database): RangeReader {
  const at = database.prepare(
    'select hash, hlc from ledger_events where tenant = ? and node = ? and seq = ?',
  );
  return {
    position: async (tenant, node, seq) => {
      const row = at.get(tenant, node, seq) as { hash: string; hlc: string } | undefined;
      return row ? { seq, hash: row.hash, hlc: row.hlc } : null;
    },
    pages: (tenant, node, hi) => sqlitePages(database, tenant, node, hi),
    events: (tenant, node) => {
      const one = database
        .prepare(`select ${EVENT_COLUMNS} from ledger_events where tenant = ? and node = ? and seq = ?`)
        .raw(true);
      return (seq) => (one.get(tenant, node, seq) as ChainRowTuple | undefined) ?? null;
    },
  };
}

/**
 * Reads ranges from PostgreSQL on a connection of its own, in a REPEATABLE READ transaction on
 * `snapshot` (the coordinator's, exported) when given, so every reader sees one state. Rows come as
 * plain arrays from a named (prepared) statement, cheaper than row objects through the query builder.
 */
export async function openPostgresRangeReader(
  connectionString: string,
  snapshot: string | null,
): Promise<RangeReader & { close(): Promise<void> }> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString, application_name: 'holdfast verify' });
  client.on('error', () => undefined);
  await client.connect();
  await client.query('begin isolation level repeatable read read only');
  if (snapshot) {
    if (!/^[0-9A-Fa-f-]+$/.test(snapshot)) throw new Error('not a PostgreSQL snapshot id');
    await client.query(`set transaction snapshot '${snapshot}'`);
  }
  return {
    position: async (tenant, node, seq) => {
      const { rows } = await client.query<{ hash: string; hlc: string }>(
        'select hash, hlc from ledger_events where tenant = $1 and node = $2 and seq = $3',
        [tenant, node, seq],
      );
      return rows[0] ? { seq, hash: rows[0].hash, hlc: rows[0].hlc } : null;
    },
    pages: (tenant, node, hi) => async (afterSeq) =>
      (
        await client.query<ChainRowTuple>({
          name: 'holdfast-verify-page',
          text: `select ${EVENT_COLUMNS} from ledger_events where tenant = $1 and node = $2 and seq > $3 and seq <= $4 order by seq limit $5`,
          values: [tenant, node, afterSeq, hi, PAGE],
          rowMode: 'array',
        })
      ).rows.map((r) => postgresRow(tenant, node, r)),
    events: (tenant, node) => async (seq) =>
      (
        await client.query<ChainRowTuple>({
          text: `select ${EVENT_COLUMNS} from ledger_events where tenant = $1 and node = $2 and seq = $3`,
          values: [tenant, node, seq],
          rowMode: 'array',
        })
      ).rows[0] ?? null,
    close: async () => {
      await client.query('commit').catch(() => undefined);
      await client.end();
    },
  };
}
