import { canonicalBody } from '@holdfast/core';
import { sql } from 'kysely';
import { rowToStored } from '../ledger/rows.ts';
import { ledgerCrypto } from '../node/crypto.ts';
import { foldsTypes, type Projection } from './projection.ts';
import type { Db, Tx } from '../store/store.ts';

export interface NodeKeysTable {
  tenant: string;
  node: string;
  public_key: string;
  role: string;
  registered_by: string;
  hlc: string;
}

type WithNodeKeys = { node_keys: NodeKeysTable };

/** The registry of node public keys per tenant, folded from `node.registered` events. */
const folds = foldsTypes('node.registered');

export const nodeKeysProjection: Projection = {
  name: 'node_keys',
  version: 1,
  tables: ['node_keys'],
  folds,
  async create(trx) {
    await sql`create table node_keys (
      tenant text not null,
      node text not null,
      public_key text not null,
      role text not null,
      registered_by text not null,
      hlc text not null,
      primary key (tenant, node)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const p = e.payload as { node: string; publicKey: string; role: string };
    // Key rotation is a later registration: the newest in ledger order is the current key.
    await trx
      .withTables<WithNodeKeys>()
      .insertInto('node_keys')
      .values({
        tenant: e.tenant,
        node: p.node,
        public_key: p.publicKey,
        role: p.role,
        registered_by: e.node,
        hlc: e.hlc,
      })
      .onConflict((oc) =>
        oc
          .columns(['tenant', 'node'])
          .doUpdateSet({ public_key: p.publicKey, role: p.role, registered_by: e.node, hlc: e.hlc }),
      )
      .execute();
  },
  async resetSubject(trx, tenant, subject) {
    if (!subject.startsWith('node:')) return;
    await trx
      .withTables<WithNodeKeys>()
      .deleteFrom('node_keys')
      .where('tenant', '=', tenant)
      .where('node', '=', subject.slice(5))
      .execute();
  },
};

export async function loadNodeKeys(db: Db | Tx, tenant: string): Promise<Map<string, string>> {
  const rows = await db
    .withTables<WithNodeKeys>()
    .selectFrom('node_keys')
    .select(['node', 'public_key'])
    .where('tenant', '=', tenant)
    .execute();
  return new Map(rows.map((r) => [r.node, r.public_key]));
}

/**
 * The tenant's node keys folded straight from the `node.registered` events (found through the
 * subject index, each re-hashed and its subject re-derived from the payload), not from the
 * `node_keys` table: for deciding whom to trust on the network, a key planted in the table must
 * not count. Registrations are few, so this is one small indexed read.
 */
export async function loadCheckedNodeKeys(db: Db | Tx, tenant: string): Promise<Map<string, string>> {
  const rows = await db
    .selectFrom('ledger_events')
    .selectAll()
    .where('tenant', '=', tenant)
    .where('subject', '>=', 'node:')
    .where('subject', '<', 'node;')
    .where('type', '=', 'node.registered')
    .orderBy('hlc')
    .orderBy('node')
    .orderBy('seq')
    .execute();
  const keys = new Map<string, string>();
  for (const row of rows) {
    const e = rowToStored(row);
    // An edited registration is no registration (verify names it).
    if (ledgerCrypto.sha256Hex(canonicalBody(e)) !== e.hash) continue;
    const p = JSON.parse(e.payloadJson) as { node: string; publicKey: string };
    if (row.subject !== `node:${p.node}`) continue;
    keys.set(p.node, p.publicKey);
  }
  return keys;
}

/**
 * The key of `node` if `endorser` (a site's pinned hub) registered it as a hub process of the
 * provider in its own chain: the only way a site comes to believe a second hub process behind the
 * same address. Read from the hashed events, like `loadCheckedNodeKeys`; the newest registration
 * counts, and one that no longer says "hub" ends the endorsement.
 */
export async function loadEndorsedHubKey(
  db: Db | Tx,
  tenant: string,
  endorser: string,
  node: string,
): Promise<string | null> {
  const rows = await db
    .selectFrom('ledger_events')
    .selectAll()
    .where('tenant', '=', tenant)
    .where('subject', '=', `node:${node}`)
    .where('node', '=', endorser)
    .where('type', '=', 'node.registered')
    .orderBy('seq', 'desc')
    .limit(1)
    .execute();
  const row = rows[0];
  if (!row) return null;
  const e = rowToStored(row);
  if (ledgerCrypto.sha256Hex(canonicalBody(e)) !== e.hash) return null;
  const p = JSON.parse(e.payloadJson) as { node?: unknown; publicKey?: unknown; role?: unknown };
  if (p.node !== node || p.role !== 'hub' || typeof p.publicKey !== 'string') return null;
  return p.publicKey;
}
