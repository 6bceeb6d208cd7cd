import { FixedClock } from '@holdfast/core';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { exportBatches } from '../../src/ledger/export.ts';
import { freshStore, type StoreKind } from './databases.ts';
import { testItemsProjection, testRegistry } from './ledger-fixture.ts';

export interface TestNode extends HoldfastNode {
  clock: FixedClock;
  /** The config the node was opened with, to reopen it. */
  config: { store: StoreKind; databaseUrl?: string; dataDir: string; checkpointEvery: number };
  /** Closes the node and removes its store. */
  destroy(): Promise<void>;
  /** Removes the store of a node the test closed itself. */
  removeStore(): Promise<void>;
}

/** A real node (identity files, store, ledger, projections) with a fixed clock tests move by hand. */
export async function startTestNode(
  kind: StoreKind,
  fields: { node: string; tenant: string; role?: 'hub' | 'site' | 'single' },
  options: {
    checkpointEvery?: number;
    startMs?: number;
    /** Import checks pushed backlogs in worker threads that build the test registry themselves. */
    importWorkers?: boolean;
  } = {},
): Promise<TestNode> {
  const fresh = await freshStore(kind);
  const clock = new FixedClock(options.startMs ?? 1_764_000_000_000);
  const config = { ...fresh.config, checkpointEvery: options.checkpointEvery ?? 5 };
  const node = await initNode(
    config,
    { node: fields.node, tenant: fields.tenant, role: fields.role ?? 'site' },
    {
      clock,
      registry: testRegistry(),
      ...(options.importWorkers
        ? {
            registrySource: { module: new URL('./ledger-fixture.ts', import.meta.url), name: 'testRegistry' },
          }
        : {}),
      projections: [testItemsProjection],
    },
  );
  return {
    ...node,
    clock,
    config,
    async destroy() {
      await node.close();
      await fresh.cleanup();
    },
    removeStore: () => fresh.cleanup(),
  };
}

/** `to` vouches for `from`'s key in `tenant` (what an enrolment does). */
export async function registerPeer(to: HoldfastNode, from: HoldfastNode, tenant: string): Promise<void> {
  await to.ledger.append([
    {
      tenant,
      type: 'node.registered',
      actor: 'user:test-admin',
      payload: {
        node: from.identity.node,
        publicKey: from.identity.signer.publicKey,
        role: from.identity.role,
      },
    },
  ]);
}

export async function collectBatches(
  node: HoldfastNode,
  tenant: string,
  maxEvents: number,
  nodes?: string[],
): Promise<string[][]> {
  const batches: string[][] = [];
  for await (const batch of exportBatches(node.ledger, tenant, { maxEvents, nodes })) batches.push(batch);
  return batches;
}

export function toNumbered(lines: readonly string[]): { lineNo: number; text: string }[] {
  return lines.map((text, i) => ({ lineNo: i + 1, text }));
}

/** Every stored event of a tenant, as comparable plain rows (no store-local position). */
export async function ledgerRows(node: HoldfastNode, tenant: string): Promise<unknown[]> {
  const rows = await node.store.db
    .selectFrom('ledger_events')
    .select([
      'tenant',
      'node',
      'seq',
      'id',
      'hlc',
      'type',
      'v',
      'actor',
      'payload',
      'prev_hash',
      'hash',
      'subject',
    ])
    .where('tenant', '=', tenant)
    .orderBy('node')
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({ ...r, seq: Number(r.seq), v: Number(r.v) }));
}
