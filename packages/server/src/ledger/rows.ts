import type { StoredEvent } from '@holdfast/core';
import type { Selectable } from 'kysely';
import type { LedgerEventsTable } from '../store/schema.ts';
import type { Db, Tx } from '../store/store.ts';

export function rowToStored(row: Selectable<LedgerEventsTable>): StoredEvent {
  return {
    id: row.id,
    tenant: row.tenant,
    node: row.node,
    seq: Number(row.seq),
    hlc: row.hlc,
    type: row.type,
    v: Number(row.v),
    actor: row.actor,
    payloadJson: row.payload,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

export function storedToRow(e: StoredEvent, subject: string | null): Omit<LedgerEventsTable, 'pos'> {
  return {
    tenant: e.tenant,
    node: e.node,
    seq: e.seq,
    id: e.id,
    hlc: e.hlc,
    type: e.type,
    v: e.v,
    actor: e.actor,
    payload: e.payloadJson,
    prev_hash: e.prevHash,
    hash: e.hash,
    subject,
  };
}

/** The highest seq stored for one chain, 0 when it has none (one index probe on (tenant, node, seq)). */
export async function storedChainHead(db: Db | Tx, tenant: string, node: string): Promise<number> {
  const row = await db
    .selectFrom('ledger_events')
    .select('seq')
    .where('tenant', '=', tenant)
    .where('node', '=', node)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row ? Number(row.seq) : 0;
}
