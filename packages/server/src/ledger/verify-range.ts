import type { LedgerCrypto } from '@holdfast/core';
// The chain module alone: verify's workers load this file, and a worker starts faster the less it loads.
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
 * A chain's row as verify reads it, as a plain array: seq, id, hlc, type, v, actor, payload,
 * prev_hash, hash. Only the columns the hash covers besides the chain key: the tenant and node are
 * the ones asked for, and every string column read costs time (verify is bound by reading and
 * hashing). PostgreSQL hands bigint columns over as strings.
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

/** The page of a chain's rows after `afterSeq`, in seq order, at most PAGE rows. */
export type PageReader = (afterSeq: number) => ChainRowTuple[] | Promise<ChainRowTuple[]>;

export const PAGE_COLUMNS = 'seq, id, hlc, type, v, actor, payload, prev_hash, hash';

/** A position in a chain: an event's seq, hash and clock. */
export interface ChainPosition {
  seq: number;
  hash: string;
  hlc: string;
}

export interface RangeResult {
  report: ChainReport;
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
      `select ${PAGE_COLUMNS} from ledger_events where tenant = ? and node = ? and seq > ? and seq <= ? order by seq limit ?`,
    )
    .raw(true);
  return (afterSeq) => statement.all(tenant, node, afterSeq, hi, PAGE) as ChainRowTuple[];
}

/**
 * Pushes a chain's rows after `start` (or from its first) through `verifier` until they run out or
 * it finds a fault, reading the next page ahead while it hashes the current one (PostgreSQL works on
 * it in its own process meanwhile). One pass over a whole chain, or one seq range of it in a worker.
 */
export async function verifyRows(
  verifier: ChainVerifier,
  start: ChainPosition | null,
  read: PageReader,
  onRows?: (rows: number) => void,
): Promise<RangeResult> {
  const { tenant, node } = verifier;
  let last: ChainRowTuple | null = null;
  let stopped = false;
  let page: Promise<ChainRowTuple[]> | null = Promise.resolve(read(start?.seq ?? 0));
  try {
    while (page) {
      const rows: ChainRowTuple[] = await page;
      page = rows.length === PAGE ? Promise.resolve(read(Number(rows[rows.length - 1]![0]))) : null;
      for (const r of rows) {
        const event = {
          id: r[1],
          tenant,
          node,
          seq: Number(r[0]),
          hlc: r[2],
          type: r[3],
          v: Number(r[4]),
          actor: r[5],
          payloadJson: r[6],
          prevHash: r[7],
          hash: r[8],
        };
        if (!verifier.push(event)) {
          stopped = true;
          break;
        }
        last = r;
      }
      onRows?.(rows.length);
      if (stopped) break;
    }
  } finally {
    // A page read ahead but not needed (a fault ended the chain, or onRows threw).
    if (page) await page.catch(() => undefined);
  }
  return {
    report: verifier.finish(),
    stopped,
    end: last ? { seq: Number(last[0]), hash: last[8], hlc: last[2] } : start,
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
  return { start, range: await verifyRows(verifier, start, reader.pages(tenant, node, hi), onRows) };
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
  };
}
