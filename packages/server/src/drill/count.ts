import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import pg from 'pg';

/**
 * What a node's store holds, read straight from its tables with plain SQL (not through the code
 * under test), so the drill's count does not trust the software it is checking.
 */

export type StoreRef = { kind: 'sqlite'; file: string } | { kind: 'postgres'; url: string };

export interface StoreCount {
  /** Events per chain: node -> [count, highest seq]. */
  chains: Map<string, [number, number]>;
  events: number;
  /** Case ids of every case.opened event, with repeats. */
  openedCaseIds: string[];
  /** Event ids stored more than once (the unique index should make this 0). */
  duplicateEventIds: number;
  /** Open reconciliation items, or null when the store has no such table. */
  reconciliationItems: number | null;
  /**
   * A digest of what the projections say (each case's status, holder and version; each
   * reconciliation item's kind and status): equal on every node once they hold the same events.
   */
  projectionDigest: string;
}

type Query = (text: string, params?: unknown[]) => Promise<Record<string, unknown>[]>;

async function withQuery<T>(ref: StoreRef, fn: (q: Query) => Promise<T>): Promise<T> {
  if (ref.kind === 'sqlite') {
    const db = new Database(ref.file, { readonly: true, fileMustExist: true });
    // A writer may be committing: wait for its lock rather than failing the read.
    db.pragma('busy_timeout = 5000');
    try {
      return await fn(
        async (text, params = []) =>
          db.prepare(text.replace(/\$\d+/g, '?')).all(...params) as Record<string, unknown>[],
      );
    } finally {
      db.close();
    }
  }
  const client = new pg.Client({ connectionString: ref.url });
  await client.connect();
  try {
    return await fn(
      async (text, params = []) => (await client.query(text, params)).rows as Record<string, unknown>[],
    );
  } finally {
    await client.end();
  }
}

/** Per-chain counts only: cheap enough to poll while the nodes converge. */
export async function chainHeads(ref: StoreRef, tenant: string): Promise<Map<string, [number, number]>> {
  return withQuery(ref, async (q) => {
    const rows = await q(
      'select node, count(*) as n, max(seq) as s from ledger_events where tenant = $1 group by node',
      [tenant],
    );
    return new Map(rows.map((r) => [String(r.node), [Number(r.n), Number(r.s)] as [number, number]]));
  });
}

export async function countStore(ref: StoreRef, tenant: string): Promise<StoreCount> {
  const chains = await chainHeads(ref, tenant);
  return withQuery(ref, async (q) => {
    const opened = await q("select payload from ledger_events where tenant = $1 and type = 'case.opened'", [
      tenant,
    ]);
    const dup = await q(
      'select count(*) as n from (select id from ledger_events where tenant = $1 group by id having count(*) > 1) d',
      [tenant],
    );
    let reconciliationItems: number | null = null;
    try {
      const r = await q('select count(*) as n from reconciliation_items where tenant = $1', [tenant]);
      reconciliationItems = Number(r[0]?.n ?? 0);
    } catch {
      reconciliationItems = null;
    }
    const digest = createHash('sha256');
    const cases = await q(
      'select case_id, status, claimed_by, version from cases where tenant = $1 order by case_id',
      [tenant],
    );
    for (const r of cases)
      digest.update(
        `${String(r.case_id)}|${String(r.status)}|${String(r.claimed_by)}|${String(r.version)}\n`,
      );
    if (reconciliationItems !== null) {
      const items = await q(
        'select item_id, kind, status from reconciliation_items where tenant = $1 order by item_id',
        [tenant],
      );
      for (const r of items) digest.update(`${String(r.item_id)}|${String(r.kind)}|${String(r.status)}\n`);
    }
    return {
      projectionDigest: digest.digest('hex'),
      chains,
      events: [...chains.values()].reduce((s, [n]) => s + n, 0),
      openedCaseIds: opened.map((r) => (JSON.parse(String(r.payload)) as { caseId: string }).caseId),
      duplicateEventIds: Number(dup[0]?.n ?? 0),
      reconciliationItems,
    };
  });
}

/** Test-only fault: removes one case's case.opened event from a store, to prove the count can fail. */
export async function deleteCaseOpened(ref: StoreRef, tenant: string, caseId: string): Promise<number> {
  if (ref.kind !== 'sqlite') throw new Error('the injected loss is made on a site (SQLite)');
  const db = new Database(ref.file);
  try {
    const rows = db
      .prepare("select pos, payload from ledger_events where tenant = ? and type = 'case.opened'")
      .all(tenant) as { pos: number; payload: string }[];
    const target = rows.find((r) => (JSON.parse(r.payload) as { caseId: string }).caseId === caseId);
    if (!target) return 0;
    return db.prepare('delete from ledger_events where pos = ?').run(target.pos).changes;
  } finally {
    db.close();
  }
}

export function sameChains(a: Map<string, [number, number]>, b: Map<string, [number, number]>): boolean {
  if (a.size !== b.size) return false;
  for (const [node, [n, s]] of a) {
    const other = b.get(node);
    if (!other || other[0] !== n || other[1] !== s) return false;
  }
  return true;
}
