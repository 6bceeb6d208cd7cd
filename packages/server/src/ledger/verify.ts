import { availableParallelism } from 'node:os';
import { ChainVerifier, type ChainFault, type ChainReport, type Checkpoint } from '@holdfast/core';
import { sql, type Selectable } from 'kysely';
import { loadNodeKeys } from '../projections/node-keys.ts';
import type { Db, Store } from '../store/store.ts';
import type { LedgerEventsTable } from '../store/schema.ts';
import type { NodeLedgerCrypto } from '../node/crypto.ts';
import type { HeadMarkEntry } from './head-mark.ts';
import {
  lastCheckpointUpTo,
  verifyInWorkers,
  type ChainInput,
  type CheckHere,
  type WorkerPlan,
} from './verify-parallel.ts';
import {
  NO_END,
  openPostgresRangeReader,
  PAGE,
  sqliteRangeReader,
  verifyRows,
  postgresRow,
  type ChainPosition,
  type ChainRowTuple,
  type EventReader,
  type PageReader,
  type RangeReader,
  type RangeResult,
} from './verify-range.ts';

/**
 * What the node running verify knows about its own chains from outside the store: its key (the
 * identity file) and its head mark (`chain-head.json`). A store edited by someone without the data
 * directory cannot match both.
 */
export interface OwnChains {
  node: string;
  publicKey: string;
  /** Null when the node has no mark yet (a store from before marks, or nothing written). */
  mark: ReadonlyMap<string, HeadMarkEntry> | null;
}

export interface VerifyOptions {
  tenant?: string;
  /** Only this node's chains (the start-up check reads the node's own chains only). */
  node?: string;
  own?: OwnChains;
  /**
   * A chain's events not sealed by a checkpoint of its own node, at most: a node signs a checkpoint
   * in the same commit as soon as `checkpointEvery` events are unsealed, so a longer unsealed tail
   * was not written by a node. Applies to chains the head mark does not cover.
   */
  maxUnsealed?: number;
  onProgress?: (done: number, total: number) => void;
  /**
   * Threads that check chains and seq ranges at once (default: the cores available; 1: all in this
   * thread). Fewer are used on a small store: at most one per `minEventsPerWorker` events.
   */
  workers?: number;
  minEventsPerWorker?: number;
  /** Events per seq range handed to a worker (default: an eighth of each thread's share). */
  rangeEvents?: number;
}

export interface VerifyReport {
  ok: boolean;
  chains: ChainReport[];
  eventsChecked: number;
  checkpointsChecked: number;
  /** The first bad event of every chain that has one, in tenant and node order. */
  faults: NonNullable<ChainReport['fault']>[];
}

/**
 * Re-hashes every chain in the store (or one tenant's), checks every link and every checkpoint
 * signature against the tenant's registered keys, and names the first bad event of each chain.
 * With `workers` above 1 (default: the cores available) and a large enough store, chains and seq
 * ranges of long chains are checked in worker threads (verify-parallel.ts); the report is the same.
 */
export async function verifyStore(
  store: Store,
  crypto: NodeLedgerCrypto,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const workers = Math.max(1, Math.floor(options.workers ?? defaultVerifyWorkers()));
  const source = workers > 1 ? store.workerSource() : null;
  if (source?.dialect === 'postgres') {
    // Everything the coordinator reads, and every worker, sees the state of one snapshot.
    return store.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute(async (trx) => {
        const { rows } = await sql<{ snapshot: string }>`select pg_export_snapshot() as snapshot`.execute(
          trx,
        );
        return verifyIn(trx, store, crypto, options, { workers, source, snapshot: rows[0]!.snapshot });
      });
  }
  return verifyIn(store.db, store, crypto, options, source ? { workers, source, snapshot: null } : null);
}

/**
 * verify's thread count when none is given: HOLDFAST_VERIFY_WORKERS (the `verifyWorkers` setting,
 * for callers that do not read the config), else the cores this process may use.
 */
export function defaultVerifyWorkers(): number {
  const set = Number(process.env.HOLDFAST_VERIFY_WORKERS);
  return Number.isInteger(set) && set >= 1 ? set : availableParallelism();
}

/** Below this many events per worker, starting workers costs more than it saves. */
export const MIN_EVENTS_PER_WORKER = 10_000;

async function verifyIn(
  db: Db,
  store: Store,
  crypto: NodeLedgerCrypto,
  options: VerifyOptions,
  pool: WorkerPlan | null,
): Promise<VerifyReport> {
  // Checkpoints before events: a checkpoint is committed with the events it seals, so every one
  // read here is covered by the events read after it, even while the node appends.
  let cpQuery = db.selectFrom('checkpoints').selectAll();
  if (options.tenant) cpQuery = cpQuery.where('tenant', '=', options.tenant);
  if (options.node) cpQuery = cpQuery.where('node', '=', options.node);
  const checkpointsOf = new Map<string, Checkpoint[]>();
  for (const c of await cpQuery.execute()) {
    const key = chainKey(c);
    const list = checkpointsOf.get(key) ?? [];
    list.push({ ...c, seq: Number(c.seq) });
    checkpointsOf.set(key, list);
  }
  // A chain whose events were all deleted still has checkpoints, or a line in the head mark: it must
  // be checked too.
  const chainKeys = new Map<string, { tenant: string; node: string; top: number }>();
  // Events to read, for progress and for sharing out the work: each chain's highest seq (more than
  // its events only where some are missing, which verify reports).
  let total = 0;
  for (const chain of await chainsWithEvents(db, options)) {
    total += chain.top;
    chainKeys.set(chainKey(chain), chain);
  }
  for (const [key, list] of checkpointsOf)
    if (!chainKeys.has(key)) chainKeys.set(key, { tenant: list[0]!.tenant, node: list[0]!.node, top: 0 });
  const own = options.own;
  if (own?.mark && (!options.node || options.node === own.node)) {
    for (const tenant of own.mark.keys()) {
      const key = chainKey({ tenant, node: own.node });
      if ((!options.tenant || options.tenant === tenant) && !chainKeys.has(key))
        chainKeys.set(key, { tenant, node: own.node, top: 0 });
    }
  }
  const chains = [...chainKeys.values()].sort(
    (a, b) => a.tenant.localeCompare(b.tenant) || a.node.localeCompare(b.node),
  );
  let done = 0;
  options.onProgress?.(0, total);
  const onRows = (rows: number) => {
    done += rows;
    options.onProgress?.(done, total);
  };

  const keysByTenant = new Map<string, Map<string, string>>();
  const toCheck: ChainInput[] = [];
  for (const chain of chains) {
    let keys = keysByTenant.get(chain.tenant);
    if (!keys) {
      keys = await loadNodeKeys(db, chain.tenant);
      // The node's own key comes from its identity file, never from the store.
      if (own) keys.set(own.node, own.publicKey);
      keysByTenant.set(chain.tenant, keys);
    }
    toCheck.push({
      ...chain,
      keys,
      checkpoints: checkpointsOf.get(chainKey(chain)) ?? [],
      selfKey: own !== undefined && chain.node === own.node ? own.publicKey : undefined,
    });
  }

  const workers = pool
    ? Math.min(pool.workers, Math.floor(total / (options.minEventsPerWorker ?? MIN_EVENTS_PER_WORKER)))
    : 1;
  // With workers on PostgreSQL this thread reads on a connection of its own on the same snapshot,
  // as the workers do: plain arrays from a prepared statement rather than the query builder's rows.
  const inWorkers = pool !== null && workers > 1;
  const ownConnection =
    inWorkers && pool.source.dialect === 'postgres' && pool.snapshot
      ? await openPostgresRangeReader(pool.source.connectionString, pool.snapshot)
      : null;
  const local = ownConnection ?? localRanges(db, store);
  const here: CheckHere = (chain, start, hi) =>
    verifyChainFrom(
      crypto,
      chain,
      start,
      local.pages(chain.tenant, chain.node, hi),
      local.events(chain.tenant, chain.node),
      onRows,
    );
  let results: RangeResult[];
  try {
    results = inWorkers
      ? await verifyInWorkers(
          {
            ...pool,
            workers,
            rangeEvents: options.rangeEvents ?? Math.max(1_000, Math.ceil(total / (workers * 8))),
          },
          toCheck,
          crypto,
          local,
          here,
          onRows,
        )
      : await inTurn(toCheck, (chain) => here(chain, null, NO_END));
  } finally {
    await ownConnection?.close();
  }

  const reports: ChainReport[] = [];
  for (const [i, result] of results.entries()) {
    const isOwn = toCheck[i]!.selfKey !== undefined;
    reports.push(await checkTail(db, result.report, isOwn ? own : undefined, options.maxUnsealed));
  }
  const faults = reports.flatMap((r) => (r.fault ? [r.fault] : []));
  return {
    ok: faults.length === 0,
    chains: reports,
    eventsChecked: reports.reduce((n, r) => n + r.eventsChecked, 0),
    checkpointsChecked: reports.reduce((n, r) => n + r.checkpointsChecked, 0),
    faults,
  };
}

/**
 * The chains that have events, with each one's highest seq. It steps through the chain index
 * (tenant, node, seq) with a few short queries per chain instead of one query that grouped and
 * counted every event, whose time grew with the store (16 ms of a 260 ms check of 120,000 events
 * here). A row without a tenant or node (the columns are NOT NULL; only someone rebuilding the table
 * could write one) belongs to no chain: its chain is checked without it, and reported short.
 */
async function chainsWithEvents(
  db: Db,
  only: { tenant?: string; node?: string },
): Promise<{ tenant: string; node: string; top: number }[]> {
  const events = () => db.selectFrom('ledger_events');
  /** Every value of `column` in the index, in order, one short query each (within `tenant` for nodes). */
  const stepThrough = async (column: 'tenant' | 'node', tenant?: string): Promise<string[]> => {
    const values: string[] = [];
    for (;;) {
      let next = events()
        .select((eb) => eb.ref(column).as('value'))
        .where(column, 'is not', null)
        .orderBy(column)
        .limit(1);
      if (tenant !== undefined) next = next.where('tenant', '=', tenant);
      if (values.length > 0) next = next.where(column, '>', values[values.length - 1]!);
      const row = await next.executeTakeFirst();
      if (!row) return values;
      values.push(row.value);
    }
  };
  const chains: { tenant: string; node: string; top: number }[] = [];
  for (const tenant of only.tenant ? [only.tenant] : await stepThrough('tenant')) {
    for (const node of only.node ? [only.node] : await stepThrough('node', tenant)) {
      const { top } = await events()
        .select((eb) => eb.fn.max('seq').as('top'))
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .executeTakeFirstOrThrow();
      if (top !== null) chains.push({ tenant, node, top: Number(top) });
    }
  }
  return chains;
}

function chainKey(c: { tenant: string; node: string }): string {
  return `${c.tenant}\u0000${c.node}`;
}

async function inTurn<T, R>(items: readonly T[], run: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (const item of items) out.push(await run(item));
  return out;
}

/**
 * Checks one chain in this thread after `start` (from its first event when null) up to seq `hi`:
 * one pass over a whole chain, or what follows the last range that checked out in
 * verify-parallel.ts.
 */
function verifyChainFrom(
  crypto: NodeLedgerCrypto,
  chain: ChainInput,
  start: ChainPosition | null,
  read: PageReader,
  readEvent: EventReader,
  onRows: (rows: number) => void,
): Promise<RangeResult> {
  const after = start?.seq ?? 0;
  const verifier = new ChainVerifier(
    crypto,
    chain.tenant,
    chain.node,
    chain.keys,
    start ? chain.checkpoints.filter((c) => c.seq > after) : chain.checkpoints,
    {
      ...(chain.selfKey !== undefined ? { selfKey: chain.selfKey } : {}),
      ...(start
        ? {
            resumeAfter: { ...start, lastMatchedCheckpointSeq: lastCheckpointUpTo(chain.checkpoints, after) },
          }
        : {}),
    },
  );
  return verifyRows(verifier, start, read, readEvent, onRows);
}

/** The columns of a `ChainRowTuple` (`EVENT_COLUMNS`), for the query builder. */
const EVENT_FIELDS = ['seq', 'id', 'hlc', 'type', 'v', 'actor', 'payload', 'prev_hash', 'hash'] as const;

function eventTuple(r: Pick<Selectable<LedgerEventsTable>, (typeof EVENT_FIELDS)[number]>): ChainRowTuple {
  return [r.seq, r.id, r.hlc, r.type, r.v, r.actor, r.payload, r.prev_hash, r.hash];
}

/** This thread's own reading of the store: chains' pages and single positions. */
function localRanges(db: Db, store: Store): RangeReader {
  const sqlite = store.sqliteHandle();
  if (sqlite) return sqliteRangeReader(sqlite);
  return {
    position: async (tenant, node, seq) => {
      const row = await db
        .selectFrom('ledger_events')
        .select(['hash', 'hlc'])
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', seq)
        .executeTakeFirst();
      return row ? { seq, hash: row.hash, hlc: row.hlc } : null;
    },
    pages: (tenant, node, hi) => async (afterSeq) =>
      (
        await db
          .selectFrom('ledger_events')
          .select(EVENT_FIELDS)
          .where('tenant', '=', tenant)
          .where('node', '=', node)
          .where('seq', '>', afterSeq)
          .where('seq', '<=', hi)
          .orderBy('seq')
          .limit(PAGE)
          .execute()
      ).map((r) => postgresRow(tenant, node, eventTuple(r))),
    events: (tenant, node) => async (seq) => {
      const r = await db
        .selectFrom('ledger_events')
        .select(EVENT_FIELDS)
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '=', seq)
        .executeTakeFirst();
      return r ? eventTuple(r) : null;
    },
  };
}

/**
 * The end of a chain, which hashes and links cannot vouch for: events removed from the end, or
 * appended or re-hashed after the last checkpoint, leave a chain that is whole in itself. The node's
 * own chains are held against its head mark; other chains (and own chains without a mark) against the
 * bound on unsealed events.
 */
async function checkTail(
  db: Db,
  report: ChainReport,
  own: OwnChains | undefined,
  maxUnsealed: number | undefined,
): Promise<ChainReport> {
  if (report.fault) return report;
  const fault =
    own?.mark != null
      ? await compareWithHeadMark(db, report, own.mark.get(report.tenant))
      : unsealedBeyondBound(report, maxUnsealed);
  return fault ? { ...report, fault } : report;
}

function unsealedBeyondBound(report: ChainReport, maxUnsealed: number | undefined): ChainFault | null {
  const unsealed = report.lastSeq - report.sealedSeq;
  if (maxUnsealed === undefined || unsealed <= maxUnsealed) return null;
  return {
    tenant: report.tenant,
    node: report.node,
    seq: report.sealedSeq + 1,
    fromSeq: report.sealedSeq + 1,
    problem: `seq ${report.sealedSeq + 1}-${report.lastSeq}: ${unsealed} events not sealed by a checkpoint of node ${report.node}, more than a node leaves unsealed (${maxUnsealed}): appended outside the node`,
  };
}

export async function compareWithHeadMark(
  db: Db,
  report: Pick<ChainReport, 'tenant' | 'node' | 'lastSeq' | 'sealedSeq'>,
  entry: HeadMarkEntry | undefined,
): Promise<ChainFault | null> {
  const { tenant, node, lastSeq, sealedSeq } = report;
  const fault = (seq: number, problem: string): ChainFault => ({ tenant, node, seq, fromSeq: seq, problem });
  if (!entry) {
    if (lastSeq === 0) return null;
    return fault(
      1,
      `seq 1-${lastSeq}: this node's head mark (chain-head.json) has no chain for tenant ${tenant}: these events were written outside this node`,
    );
  }
  const { committed, pending } = entry;
  const seqs = pending ? [committed.seq, pending.seq] : [committed.seq];
  const rows = await db
    .selectFrom('ledger_events')
    .select(['seq', 'hash'])
    .where('tenant', '=', tenant)
    .where('node', '=', node)
    .where('seq', 'in', seqs)
    .execute();
  const hashAt = new Map(rows.map((r) => [Number(r.seq), r.hash]));
  hashAt.set(0, committed.seq === 0 ? committed.hash : '');
  const matches = (h: { seq: number; hash: string }) => lastSeq === h.seq && hashAt.get(h.seq) === h.hash;
  // The store ends where the last commit left it, or where the one under way at a crash would have.
  if (matches(committed) || (pending && matches(pending))) return null;
  if (lastSeq < committed.seq) {
    return fault(
      lastSeq + 1,
      `seq ${lastSeq + 1}-${committed.seq} missing: this node's head mark says its chain reached seq ${committed.seq}, the store ends at seq ${lastSeq} (events were removed from the end)`,
    );
  }
  if (committed.seq > 0 && hashAt.get(committed.seq) !== committed.hash) {
    const from = Math.min(sealedSeq, committed.seq - 1) + 1;
    return fault(
      from,
      `seq ${from}-${committed.seq}: the event at seq ${committed.seq} is not the one this node's head mark records: the history after the last checkpoint (seq ${sealedSeq}) was rewritten and re-hashed`,
    );
  }
  // Beyond the mark only what this node signed can be its own (events a restored node pulled back
  // from its peers arrive sealed by its checkpoints).
  if (sealedSeq >= lastSeq) return null;
  const from = Math.max(committed.seq, sealedSeq) + 1;
  return fault(
    from,
    `seq ${from}-${lastSeq}: events beyond this node's head mark (seq ${committed.seq}) not sealed by its key: appended to its chain outside this node`,
  );
}
