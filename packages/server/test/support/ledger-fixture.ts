import {
  canonicalJson,
  createEventRegistry,
  defineEventType,
  formatHlc,
  GENESIS_HASH,
  sealEvent,
  signCheckpoint,
  type Checkpoint,
  type EventRegistry,
  type StoredEvent,
} from '@holdfast/core';
import { sql } from 'kysely';
import { z } from 'zod';
import { Ed25519Signer } from '../../src/node/crypto.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { storedToRow } from '../../src/ledger/rows.ts';
import type { Projection } from '../../src/projections/projection.ts';
import type { Store, Tx } from '../../src/store/store.ts';

/** Event types used only by tests: notes and statuses on an item (the subject). */
export const itemNoted = defineEventType({
  type: 'test.item.noted',
  v: 1,
  schema: z.strictObject({ item: z.string().min(1).max(50), text: z.string().max(200) }),
  subjectOf: (p) => `item:${p.item}`,
});
export const itemStatus = defineEventType({
  type: 'test.item.status',
  v: 1,
  schema: z.strictObject({ item: z.string().min(1).max(50), status: z.enum(['open', 'waiting', 'closed']) }),
  subjectOf: (p) => `item:${p.item}`,
});
/** No subject: folded in arrival order by an order-insensitive counter. */
export const tick = defineEventType({
  type: 'test.tick',
  v: 1,
  schema: z.strictObject({ n: z.number().int() }),
});

export function testRegistry(): EventRegistry {
  return createEventRegistry().register(itemNoted, itemStatus, tick);
}

interface TestItemsTable {
  tenant: string;
  item: string;
  status: string;
  history: string;
  notes: number;
}
interface TestTicksTable {
  tenant: string;
  type: string;
  n: number;
}
type TestTables = { test_items: TestItemsTable; test_ticks: TestTicksTable };

/**
 * An order-sensitive projection: `history` is every fact about the item in ledger order, so it
 * diverges unless the engine folds in (hlc, node, seq) order, whatever order events arrive in.
 */
export const testItemsProjection: Projection = {
  name: 'test_items',
  version: 1,
  tables: ['test_items', 'test_ticks'],
  async create(trx) {
    await sql`create table test_items (tenant text not null, item text not null, status text not null, history text not null, notes integer not null, primary key (tenant, item))`.execute(
      trx,
    );
    await sql`create table test_ticks (tenant text not null, type text not null, n integer not null, primary key (tenant, type))`.execute(
      trx,
    );
  },
  async apply(trx, e) {
    const db = trx.withTables<TestTables>();
    if (e.type === 'test.tick') {
      await db
        .insertInto('test_ticks')
        .values({ tenant: e.tenant, type: e.type, n: 1 })
        .onConflict((oc) => oc.columns(['tenant', 'type']).doUpdateSet({ n: sql`test_ticks.n + 1` }))
        .execute();
      return;
    }
    if (e.type !== 'test.item.noted' && e.type !== 'test.item.status') return;
    const p = e.payload as { item: string; text?: string; status?: string };
    const fact = e.type === 'test.item.noted' ? `note:${p.text}` : `status:${p.status}`;
    const current = await db
      .selectFrom('test_items')
      .selectAll()
      .where('tenant', '=', e.tenant)
      .where('item', '=', p.item)
      .executeTakeFirst();
    if (!current) {
      await db
        .insertInto('test_items')
        .values({
          tenant: e.tenant,
          item: p.item,
          status: p.status ?? 'open',
          history: fact,
          notes: p.text !== undefined ? 1 : 0,
        })
        .execute();
      return;
    }
    await db
      .updateTable('test_items')
      .set({
        status: p.status ?? current.status,
        history: `${current.history}|${fact}`,
        notes: Number(current.notes) + (p.text !== undefined ? 1 : 0),
      })
      .where('tenant', '=', e.tenant)
      .where('item', '=', p.item)
      .execute();
  },
  async resetSubject(trx, tenant, subject) {
    if (!subject.startsWith('item:')) return;
    await trx
      .withTables<TestTables>()
      .deleteFrom('test_items')
      .where('tenant', '=', tenant)
      .where('item', '=', subject.slice(5))
      .execute();
  },
};

export async function snapshotTestTables(
  db: Store['db'] | Tx,
): Promise<{ items: unknown[]; ticks: unknown[] }> {
  const t = db.withTables<TestTables>();
  const items = (
    await t.selectFrom('test_items').selectAll().orderBy('tenant').orderBy('item').execute()
  ).map((r) => ({ ...r, notes: Number(r.notes) }));
  const ticks = (
    await t.selectFrom('test_ticks').selectAll().orderBy('tenant').orderBy('type').execute()
  ).map((r) => ({ ...r, n: Number(r.n) }));
  return { items, ticks };
}

/** Deterministic UUIDv7-shaped ids for fixtures. */
export function fixtureId(n: number): string {
  const hex = n.toString(16).padStart(20, '0');
  return `00000000-0000-7${hex.slice(0, 3)}-8${hex.slice(3, 6)}-${hex.slice(8, 20)}`;
}

export interface FixtureChain {
  tenant: string;
  node: string;
  signer: Ed25519Signer;
  events: StoredEvent[];
  checkpoints: Checkpoint[];
}

let idCounter = 1;
const signerCache = new Map<string, Ed25519Signer>();

/** A node signer, reused across fast-check runs (key generation is not what is being tested). */
export function fixtureSigner(node: string): Ed25519Signer {
  let s = signerCache.get(node);
  if (!s) {
    s = Ed25519Signer.generate(node).signer;
    signerCache.set(node, s);
  }
  return s;
}

/**
 * Builds one node's chain purely from the core functions: a self-registration, then `count` test
 * events, a signed checkpoint every `checkpointEvery` events and always one at the end.
 */
export function buildChain(opts: {
  tenant: string;
  node: string;
  count: number;
  checkpointEvery: number;
  startMs: number;
  items?: number;
}): FixtureChain {
  const signer = fixtureSigner(opts.node);
  const events: StoredEvent[] = [];
  const checkpoints: Checkpoint[] = [];
  let prevHash = GENESIS_HASH;
  for (let seq = 1; seq <= opts.count + 1; seq++) {
    const payload =
      seq === 1
        ? { node: opts.node, publicKey: signer.publicKey, role: 'site' }
        : seq % 3 === 0
          ? { item: `i${seq % (opts.items ?? 4)}`, status: (['open', 'waiting', 'closed'] as const)[seq % 3] }
          : { item: `i${seq % (opts.items ?? 4)}`, text: `note ${seq} from ${opts.node}` };
    const type = seq === 1 ? 'node.registered' : seq % 3 === 0 ? 'test.item.status' : 'test.item.noted';
    const e = sealEvent(ledgerCrypto, {
      id: fixtureId(idCounter++),
      tenant: opts.tenant,
      node: opts.node,
      seq,
      hlc: formatHlc({ wallMs: opts.startMs + seq * 7, counter: seq % 2 }),
      type,
      v: 1,
      actor: `node:${opts.node}`,
      payloadJson: canonicalJson(payload),
      prevHash,
    });
    events.push(e);
    prevHash = e.hash;
    if (seq % opts.checkpointEvery === 0 || seq === opts.count + 1)
      checkpoints.push(signCheckpoint(signer, e));
  }
  return { tenant: opts.tenant, node: opts.node, signer, events, checkpoints };
}

/** Writes fixture chains straight into a store (no checks), with their keys registered. */
export async function insertFixture(store: Store, chains: readonly FixtureChain[]): Promise<void> {
  await store.transaction(async (trx) => {
    for (const c of chains) {
      await trx
        .insertInto('ledger_events')
        .values(c.events.map((e) => storedToRow(e, null)))
        .execute();
      if (c.checkpoints.length) await trx.insertInto('checkpoints').values(c.checkpoints).execute();
      await trx
        .withTables<{
          node_keys: {
            tenant: string;
            node: string;
            public_key: string;
            role: string;
            registered_by: string;
            hlc: string;
          };
        }>()
        .insertInto('node_keys')
        .values({
          tenant: c.tenant,
          node: c.node,
          public_key: c.signer.publicKey,
          role: 'site',
          registered_by: c.node,
          hlc: c.events[0]!.hlc,
        })
        .execute();
    }
  });
}
