import { sql } from 'kysely';
import pg from 'pg';
import {
  COMMIT_CHANNEL,
  COMMIT_LOCK_PREFIX,
  COMMIT_NOTICE_PREFIX,
  LITERAL_TENANT,
} from '../store/held-begin.ts';
import type { StoreDialect, Tx } from '../store/store.ts';

/**
 * Several hub processes over one PostgreSQL database (each its own node, identity and chain) must
 * behave as one: every writing transaction on PostgreSQL (an append or an import) first waits for
 * the others writing the same providers, and its last statement tells every process what it commits.
 *
 * The wait is a transaction-level advisory lock per provider, taken first and in name order (so two
 * transactions never wait on each other): guards ("this case is still at the version I decided
 * on") and projections that read and then write see everything committed before them by any
 * process, exactly as the one-process write lock gives them inside a process.
 *
 * The notice is `pg_notify` inside the transaction, so PostgreSQL delivers it when, and only if, the
 * transaction commits. It names what committed, never what it says: provider, node, the seq range
 * of each chain and the event types (no payload, no patient data). Listeners read the events
 * themselves from the store (see `node/commit-fan-in.ts`). The channel's name is in
 * store/held-begin.ts, which sends the notice with the transaction's `commit`.
 */
export { COMMIT_CHANNEL };

/** PostgreSQL refuses a notification payload of 8000 bytes or more. */
const MAX_NOTICE_BYTES = 7900;

export interface CommittedChain {
  tenant: string;
  node: string;
  fromSeq: number;
  toSeq: number;
}

export interface CommitNotice {
  /** The ledger (one process) that committed: it has told its own listeners already. */
  origin: string;
  /** Null: too many to name; every listener reads every chain's new events. */
  chains: CommittedChain[] | null;
  /** Event types per provider (left out when the notice would not fit). */
  types: Record<string, string[]> | null;
}

interface EventPosition {
  tenant: string;
  node: string;
  seq: number;
  type: string;
}

export async function lockTenantsForCommit(
  trx: Tx,
  dialect: StoreDialect,
  tenants: Iterable<string>,
): Promise<void> {
  if (dialect !== 'postgres') return;
  const sorted = [...new Set(tenants)].sort();
  if (sorted.every((t) => LITERAL_TENANT.test(t))) {
    // Literals only (the providers' ids Holdfast makes): no parameters, so the statements travel
    // with the transaction's `begin` in one round trip (store/held-begin.ts), and in name order.
    const locks = sorted.map((t) => `${COMMIT_LOCK_PREFIX}'holdfast.commit:${t}', 0))`);
    await sql.raw(locks.join('; ')).execute(trx);
    return;
  }
  for (const tenant of sorted)
    await sql`select pg_advisory_xact_lock(hashtextextended(${`holdfast.commit:${tenant}`}, 0))`.execute(trx);
}

export async function announceCommit(
  trx: Tx,
  dialect: StoreDialect,
  origin: string,
  events: readonly EventPosition[],
): Promise<void> {
  if (dialect !== 'postgres' || events.length === 0) return;
  // Written as a literal so that it travels with the `commit` (store/held-begin.ts).
  await sql.raw(`${COMMIT_NOTICE_PREFIX}${pg.escapeLiteral(commitNoticeText(origin, events))})`).execute(trx);
}

/** The notice's text: chains and types; without the types if too long; "everything" if still too long. */
export function commitNoticeText(origin: string, events: readonly EventPosition[]): string {
  const chains = new Map<string, CommittedChain>();
  const types = new Map<string, Set<string>>();
  for (const e of events) {
    const key = `${e.tenant}\u0000${e.node}`;
    const c = chains.get(key);
    if (c) {
      c.fromSeq = Math.min(c.fromSeq, e.seq);
      c.toSeq = Math.max(c.toSeq, e.seq);
    } else chains.set(key, { tenant: e.tenant, node: e.node, fromSeq: e.seq, toSeq: e.seq });
    let t = types.get(e.tenant);
    if (!t) types.set(e.tenant, (t = new Set()));
    t.add(e.type);
  }
  const c = [...chains.values()].map((x) => [x.tenant, x.node, x.fromSeq, x.toSeq]);
  const full = JSON.stringify({
    o: origin,
    c,
    t: Object.fromEntries([...types].map(([tenant, set]) => [tenant, [...set].sort()])),
  });
  if (Buffer.byteLength(full) <= MAX_NOTICE_BYTES) return full;
  const chainsOnly = JSON.stringify({ o: origin, c });
  if (Buffer.byteLength(chainsOnly) <= MAX_NOTICE_BYTES) return chainsOnly;
  return JSON.stringify({ o: origin, all: true });
}

/** Reads a notice; null when it is not one (nothing else should speak on the channel). */
export function parseCommitNotice(text: string | undefined): CommitNotice | null {
  if (!text) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as { o?: unknown; c?: unknown; t?: unknown; all?: unknown };
  if (typeof r.o !== 'string') return null;
  if (r.all === true) return { origin: r.o, chains: null, types: null };
  if (!Array.isArray(r.c)) return null;
  const chains: CommittedChain[] = [];
  for (const item of r.c as unknown[]) {
    if (!Array.isArray(item) || item.length !== 4) return null;
    const [tenant, node, fromSeq, toSeq] = item as unknown[];
    if (typeof tenant !== 'string' || typeof node !== 'string') return null;
    if (!Number.isSafeInteger(fromSeq) || !Number.isSafeInteger(toSeq)) return null;
    chains.push({ tenant, node, fromSeq: fromSeq as number, toSeq: toSeq as number });
  }
  const types = typeof r.t === 'object' && r.t !== null ? (r.t as Record<string, string[]>) : null;
  return { origin: r.o, chains, types };
}
