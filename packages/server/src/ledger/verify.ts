import { ChainVerifier, type ChainReport } from '@holdfast/core';
import type { Selectable } from 'kysely';
import { loadNodeKeys } from '../projections/node-keys.ts';
import type { LedgerEventsTable } from '../store/schema.ts';
import type { Db, Store } from '../store/store.ts';
import type { NodeLedgerCrypto } from '../node/crypto.ts';

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
  options: { tenant?: string; onProgress?: (done: number, total: number) => void } = {},
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
  // A chain whose events were all deleted still has checkpoints: it must be checked too.
  const chainKeys = new Map<string, { tenant: string; node: string }>();
  for (const r of [...(await chainQuery.execute()), ...(await cpChainQuery.execute())])
    chainKeys.set(`${r.tenant}\u0000${r.node}`, r);
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
      keysByTenant.set(tenant, keys);
    }
    const checkpoints = (
      await db
        .selectFrom('checkpoints')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .execute()
    ).map((c) => ({ ...c, seq: Number(c.seq) }));
    const verifier = new ChainVerifier(crypto, tenant, node, keys, checkpoints);
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
      reports.push(verifier.finish());
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
    reports.push(verifier.finish());
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
