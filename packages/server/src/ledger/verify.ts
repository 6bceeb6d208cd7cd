import { ChainVerifier, type ChainFault, type ChainReport } from '@holdfast/core';
import type { Selectable } from 'kysely';
import { loadNodeKeys } from '../projections/node-keys.ts';
import type { LedgerEventsTable } from '../store/schema.ts';
import type { Db, Store } from '../store/store.ts';
import type { NodeLedgerCrypto } from '../node/crypto.ts';
import type { HeadMarkEntry } from './head-mark.ts';

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
 * Rows per read: a page and the one read ahead stay small (a few MB, short-lived for the garbage
 * collector) while the per-query cost stays noise. 1,000-2,000 measured at least as fast as 10,000
 * (bench/ledger.ts).
 */
const PAGE = 2_000;

type ChainRow = Pick<
  Selectable<LedgerEventsTable>,
  'seq' | 'id' | 'hlc' | 'type' | 'v' | 'actor' | 'payload' | 'prev_hash' | 'hash'
>;

/**
 * One page of a chain, in seq order: only the columns the hash covers besides the chain key. The
 * tenant and node of every row are the ones asked for (the query selects by them), so they are not
 * read back: every string column read costs time, and verify is bound by reading and hashing.
 */
function readChainPage(db: Db, tenant: string, node: string, afterSeq: number): Promise<ChainRow[]> {
  return db
    .selectFrom('ledger_events')
    .select(['seq', 'id', 'hlc', 'type', 'v', 'actor', 'payload', 'prev_hash', 'hash'])
    .where('tenant', '=', tenant)
    .where('node', '=', node)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .limit(PAGE)
    .execute();
}

/**
 * Re-hashes every chain in the store (or one tenant's), checks every link and every checkpoint
 * signature against the tenant's registered keys, and names the first bad event of each chain.
 */
export async function verifyStore(
  store: Store,
  crypto: NodeLedgerCrypto,
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const db = store.db;
  let chainQuery = db.selectFrom('ledger_events').select(['tenant', 'node']).distinct();
  let cpChainQuery = db.selectFrom('checkpoints').select(['tenant', 'node']).distinct();
  let countQuery = db.selectFrom('ledger_events').select((eb) => eb.fn.countAll<number>().as('n'));
  if (options.tenant) {
    chainQuery = chainQuery.where('tenant', '=', options.tenant);
    cpChainQuery = cpChainQuery.where('tenant', '=', options.tenant);
    countQuery = countQuery.where('tenant', '=', options.tenant);
  }
  if (options.node) {
    chainQuery = chainQuery.where('node', '=', options.node);
    cpChainQuery = cpChainQuery.where('node', '=', options.node);
    countQuery = countQuery.where('node', '=', options.node);
  }
  // A chain whose events were all deleted still has checkpoints, or a line in the head mark: it must
  // be checked too.
  const chainKeys = new Map<string, { tenant: string; node: string }>();
  for (const r of [...(await chainQuery.execute()), ...(await cpChainQuery.execute())])
    chainKeys.set(`${r.tenant}\u0000${r.node}`, r);
  const own = options.own;
  if (own?.mark && (!options.node || options.node === own.node)) {
    for (const tenant of own.mark.keys())
      if (!options.tenant || options.tenant === tenant)
        chainKeys.set(`${tenant}\u0000${own.node}`, { tenant, node: own.node });
  }
  const chains = [...chainKeys.values()].sort(
    (a, b) => a.tenant.localeCompare(b.tenant) || a.node.localeCompare(b.node),
  );
  const total = Number((await countQuery.executeTakeFirstOrThrow()).n);
  let done = 0;
  options.onProgress?.(0, total);

  const keysByTenant = new Map<string, Map<string, string>>();
  const reports: ChainReport[] = [];
  for (const { tenant, node } of chains) {
    let keys = keysByTenant.get(tenant);
    if (!keys) {
      keys = await loadNodeKeys(db, tenant);
      // The node's own key comes from its identity file, never from the store.
      if (own) keys.set(own.node, own.publicKey);
      keysByTenant.set(tenant, keys);
    }
    const isOwn = own !== undefined && node === own.node;
    const checkpoints = (
      await db
        .selectFrom('checkpoints')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .execute()
    ).map((c) => ({ ...c, seq: Number(c.seq) }));
    const verifier = new ChainVerifier(
      crypto,
      tenant,
      node,
      keys,
      checkpoints,
      isOwn ? { selfKey: own.publicKey } : {},
    );
    const sqlite = store.sqliteHandle();
    if (sqlite) {
      // SQLite is in this process: read pages as plain arrays from one prepared statement, which
      // costs a fraction of building row objects through the query builder.
      const statement = sqlite
        .prepare(
          'select seq, id, hlc, type, v, actor, payload, prev_hash, hash from ledger_events where tenant = ? and node = ? and seq > ? order by seq limit ?',
        )
        .raw(true);
      let afterSeq = 0;
      for (;;) {
        const rows = statement.all(tenant, node, afterSeq, PAGE) as [
          number,
          string,
          string,
          string,
          number,
          string,
          string,
          string,
          string,
        ][];
        let going = true;
        for (const r of rows) {
          const event = {
            id: r[1],
            tenant,
            node,
            seq: r[0],
            hlc: r[2],
            type: r[3],
            v: r[4],
            actor: r[5],
            payloadJson: r[6],
            prevHash: r[7],
            hash: r[8],
          };
          if (!verifier.push(event)) {
            going = false;
            break;
          }
        }
        done += rows.length;
        options.onProgress?.(done, total);
        if (!going || rows.length < PAGE) break;
        afterSeq = rows[rows.length - 1]![0];
      }
      reports.push(await checkTail(db, verifier.finish(), isOwn ? own : undefined, options.maxUnsealed));
      continue;
    }
    let page: Promise<ChainRow[]> | null = readChainPage(db, tenant, node, 0);
    try {
      while (page) {
        const rows: ChainRow[] = await page;
        // Read ahead: the store works on the next page while this one is hashed (PostgreSQL runs
        // the query in its own process; on SQLite it simply runs next).
        page =
          rows.length === PAGE ? readChainPage(db, tenant, node, Number(rows[rows.length - 1]!.seq)) : null;
        let going = true;
        for (const row of rows) {
          const event = {
            id: row.id,
            tenant,
            node,
            seq: Number(row.seq),
            hlc: row.hlc,
            type: row.type,
            v: Number(row.v),
            actor: row.actor,
            payloadJson: row.payload,
            prevHash: row.prev_hash,
            hash: row.hash,
          };
          if (!verifier.push(event)) {
            going = false;
            break;
          }
        }
        done += rows.length;
        options.onProgress?.(done, total);
        if (!going) break;
      }
    } finally {
      // A page read ahead but not needed (a fault ended the chain, or onProgress threw).
      if (page) await page.catch(() => undefined);
    }
    reports.push(await checkTail(db, verifier.finish(), isOwn ? own : undefined, options.maxUnsealed));
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
