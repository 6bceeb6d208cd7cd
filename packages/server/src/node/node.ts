import { join } from 'node:path';
import {
  ACCOUNT_EVENT_TYPES,
  CASE_FACT_EVENT_TYPES,
  CASE_LIFECYCLE_EVENT_TYPES,
  createEventRegistry,
  PATIENT_EVENT_TYPES,
  RECONCILIATION_EVENT_TYPES,
  type Clock,
  type EventRegistry,
  type IdGenerator,
} from '@holdfast/core';
import { accountsProjection } from '../accounts/projection.ts';
import { auditProjection } from '../audit/projection.ts';
import { patientsProjection } from '../patients/projection.ts';
import { casesProjection } from '../cases/projection.ts';
import type { HoldfastConfig } from '../config.ts';
import { Ledger, type LedgerOptions } from '../ledger/ledger.ts';
import { ProjectionEngine, type ProgressFn } from '../projections/engine.ts';
import { nodeKeysProjection } from '../projections/node-keys.ts';
import type { Projection } from '../projections/projection.ts';
import { Store, type StoreOptions } from '../store/store.ts';
import { ledgerCrypto } from './crypto.ts';
import { systemClock, uuidV7Generator } from './ids.ts';
import {
  createIdentity,
  identityExists,
  loadIdentity,
  type NodeFile,
  type NodeIdentity,
} from './identity.ts';

/** Everything one running node is made of. Tests build several in one process. */
export interface HoldfastNode {
  identity: NodeIdentity;
  store: Store;
  registry: EventRegistry;
  projections: ProjectionEngine;
  ledger: Ledger;
  clock: Clock;
  close(): Promise<void>;
}

export interface OpenNodeOptions {
  clock?: Clock;
  ids?: IdGenerator;
  /** Extra event types and projections (domain modules; tests). */
  registry?: EventRegistry;
  projections?: readonly Projection[];
  ledger?: Partial<LedgerOptions>;
  onRebuildProgress?: ProgressFn;
}

export const BUILTIN_PROJECTIONS: readonly Projection[] = [
  nodeKeysProjection,
  accountsProjection,
  auditProjection,
  patientsProjection,
  casesProjection,
];

/** Every event type the server's modules define. */
export function createServerRegistry(): EventRegistry {
  return createEventRegistry().register(
    ...ACCOUNT_EVENT_TYPES,
    ...PATIENT_EVENT_TYPES,
    ...CASE_FACT_EVENT_TYPES,
    ...CASE_LIFECYCLE_EVENT_TYPES,
    ...RECONCILIATION_EVENT_TYPES,
  );
}

export function storeOptionsFor(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir'>,
): StoreOptions {
  if (config.store === 'postgres') {
    if (!config.databaseUrl) throw new Error('databaseUrl is required for the postgres store');
    return { dialect: 'postgres', connectionString: config.databaseUrl };
  }
  return { dialect: 'sqlite', file: join(config.dataDir, 'holdfast.sqlite') };
}

/**
 * Creates a node's identity and store and writes the first event of its chain: its own key
 * registration. Refuses if the data directory is initialised already.
 */
export async function initNode(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir' | 'checkpointEvery'>,
  fields: { node: string; tenant: string; role: NodeFile['role']; hub?: NodeFile['hub'] },
  options: OpenNodeOptions & { keyPair?: Parameters<typeof createIdentity>[2] } = {},
): Promise<HoldfastNode> {
  const clock = options.clock ?? systemClock;
  createIdentity(
    config.dataDir,
    { ...fields, createdAt: new Date(clock.nowMs()).toISOString() },
    options.keyPair,
  );
  const node = await openNode(config, options);
  await node.ledger.registerSelf(fields.tenant, fields.role);
  return node;
}

export async function openNode(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir' | 'checkpointEvery'>,
  options: OpenNodeOptions = {},
): Promise<HoldfastNode> {
  const identity = loadIdentity(config.dataDir);
  const clock = options.clock ?? systemClock;
  const store = await Store.open(storeOptionsFor(config));
  try {
    const registry = options.registry ?? createServerRegistry();
    const projections = new ProjectionEngine(
      store,
      [...BUILTIN_PROJECTIONS, ...(options.projections ?? [])],
      () => new Date(clock.nowMs()).toISOString(),
      (type, v, payload) => registry.subjectOf(type, v, payload),
    );
    await projections.ensureUpToDate(options.onRebuildProgress);
    const ledger = await Ledger.open({
      store,
      registry,
      crypto: ledgerCrypto,
      signer: identity.signer,
      projections,
      ids: options.ids ?? uuidV7Generator,
      clock,
      options: { checkpointEvery: config.checkpointEvery, ...options.ledger },
    });
    return { identity, store, registry, projections, ledger, clock, close: () => store.close() };
  } catch (error) {
    await store.close();
    throw error;
  }
}

export { identityExists };
