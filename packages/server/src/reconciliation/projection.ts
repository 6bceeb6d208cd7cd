import { canonicalJson, type ReconciliationItem } from '@holdfast/core';
import { sql } from 'kysely';
import type { Db, Tx } from '../store/store.ts';

/**
 * Reconciliation items as rows. They are written by the cases projection in the same fold as the
 * case they belong to (core `foldCaseEvent`), because whether an event collides depends on the
 * case's state at that point of the ledger order. The table belongs to that projection: refolding a
 * case deletes and rebuilds its items, so each collision has exactly one row.
 */
export interface ReconciliationItemsTable {
  tenant: string;
  item_id: string;
  case_id: string;
  site_id: string;
  kind: string;
  status: string;
  detected_hlc: string;
  /** The core `ReconciliationItem` as JSON: held events, claimants, outcomes, resolution. */
  item: string;
  resolved_hlc: string | null;
}

export type ReconciliationTables = { reconciliation_items: ReconciliationItemsTable };

export function reconciliationDb(db: Db | Tx) {
  return db.withTables<ReconciliationTables>();
}

export async function createReconciliationTable(trx: Tx): Promise<void> {
  await sql`create table reconciliation_items (
    tenant text not null,
    item_id text not null,
    case_id text not null,
    site_id text not null,
    kind text not null,
    status text not null,
    detected_hlc text not null,
    item text not null,
    resolved_hlc text,
    primary key (tenant, item_id)
  )`.execute(trx);
  await sql`create index reconciliation_items_status on reconciliation_items (tenant, status, detected_hlc)`.execute(
    trx,
  );
  await sql`create index reconciliation_items_case on reconciliation_items (tenant, case_id)`.execute(trx);
}

/** Inserts or replaces the rows of items a fold step created or changed. */
export async function writeReconciliationItems(
  trx: Tx,
  tenant: string,
  siteId: string,
  items: readonly ReconciliationItem[],
): Promise<void> {
  const db = reconciliationDb(trx);
  for (const item of items) {
    const row: ReconciliationItemsTable = {
      tenant,
      item_id: item.itemId,
      case_id: item.caseId,
      site_id: siteId,
      kind: item.kind,
      status: item.status,
      detected_hlc: item.detectedHlc,
      // Canonical: held payloads come in schema key order from a local append, sorted from an import.
      item: canonicalJson(item),
      resolved_hlc: item.resolution?.hlc ?? null,
    };
    await db
      .insertInto('reconciliation_items')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['tenant', 'item_id']).doUpdateSet({
          status: row.status,
          item: row.item,
          resolved_hlc: row.resolved_hlc,
        }),
      )
      .execute();
  }
}

export async function deleteReconciliationItemsOfCase(
  trx: Tx,
  tenant: string,
  caseId: string,
): Promise<void> {
  await reconciliationDb(trx)
    .deleteFrom('reconciliation_items')
    .where('tenant', '=', tenant)
    .where('case_id', '=', caseId)
    .execute();
}
