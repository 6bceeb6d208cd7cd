import { ChainVerifier, type ChainReport } from '@holdfast/core';
import { loadNodeKeys } from '../projections/node-keys.ts';
import type { Store } from '../store/store.ts';
import { rowToStored } from './rows.ts';
import type { NodeLedgerCrypto } from '../node/crypto.ts';

export interface VerifyReport {
  ok: boolean;
  chains: ChainReport[];
  eventsChecked: number;
  checkpointsChecked: number;
  /** The first bad event of every chain that has one, in tenant and node order. */
  faults: NonNullable<ChainReport['fault']>[];
}

const PAGE = 10_000;

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
    let afterSeq = 0;
    let going = true;
    while (going) {
      const rows = await db
        .selectFrom('ledger_events')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('node', '=', node)
        .where('seq', '>', afterSeq)
        .orderBy('seq')
        .limit(PAGE)
        .execute();
      for (const row of rows) {
        if (!verifier.push(rowToStored(row))) {
          going = false;
          break;
        }
      }
      done += rows.length;
      options.onProgress?.(done, total);
      if (rows.length < PAGE) break;
      afterSeq = Number(rows[rows.length - 1]!.seq);
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
