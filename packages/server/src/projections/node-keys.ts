import { sql } from 'kysely';
import type { Projection } from './projection.ts';
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
export const nodeKeysProjection: Projection = {
  name: 'node_keys',
  version: 1,
  tables: ['node_keys'],
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
    if (e.type !== 'node.registered') return;
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
