import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { type Clock, type EventRegistry, type IdGenerator } from '@holdfast/core';
import { accountsProjection } from '../accounts/projection.ts';
import { auditProjection } from '../audit/projection.ts';
import { patientsProjection } from '../patients/projection.ts';
import { casesProjection } from '../cases/projection.ts';
import { messagingProjection } from '../messaging/projection.ts';
import { inboundProjection } from '../inbound/projection.ts';
import { referralsProjection } from '../referrals/projection.ts';
import { prescribingProjection } from '../prescribing/projection.ts';
import { bookingProjection } from '../booking/projection.ts';
import { rotaProjection } from '../rota/projection.ts';
import { dispatchProjection } from '../dispatch/projection.ts';
import { telephonyProjection } from '../telephony/projection.ts';
import { providerSettingsProjection } from '../reports/provider-settings.ts';
import { directoryProjection } from '../directory/projection.ts';
import type { HoldfastConfig } from '../config.ts';
import type { HeadMark } from '../ledger/head-mark.ts';
import { Ledger, DEFAULT_LEDGER_OPTIONS, type LedgerOptions } from '../ledger/ledger.ts';
import { checkOwnChainsAtStart, openHeadMarkForReport } from '../ledger/own-chains.ts';
import { ProjectionEngine, type ProgressFn } from '../projections/engine.ts';
import { nodeKeysProjection } from '../projections/node-keys.ts';
import type { Projection } from '../projections/projection.ts';
import { Store, type StoreOptions } from '../store/store.ts';
import { ledgerCrypto } from './crypto.ts';
import { createServerRegistry } from './registry.ts';
import { refuseIfReadableByOthers } from './file-modes.ts';
import { PROVIDER_KEYS_FILE, ProviderKeys, type ProviderKeySet } from './provider-keys.ts';
import { systemClock, uuidV7Generator } from './ids.ts';
import { checkStoreKind, recordStoreKind, SQLITE_FILE } from './store-kind.ts';
import { acquireWriterLockWaiting, NodeBusyError, type WriterLock } from './writer-lock.ts';
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
  /**
   * 'write': this process holds the node's writer lock (the only writer of its chain). 'read': another
   * process is the writer; this one reads what it has committed and cannot append or sign.
   */
  access: 'write' | 'read';
  /** The node's record of its own chains' heads, outside the store (null: unreadable, report mode). */
  headMark: HeadMark | null;
  /** Why the head mark could not be read (report mode only; otherwise the node refused to open). */
  headMarkProblem: string | null;
  /** The keys that seal account secrets of each provider this node serves (a file beside node.key). */
  providerKeys: ProviderKeys;
  close(): Promise<void>;
}

export interface OpenNodeOptions {
  clock?: Clock;
  ids?: IdGenerator;
  /** Extra event types and projections (domain modules; tests). */
  registry?: EventRegistry;
  /**
   * Where `registry` comes from (a module and the name of its exported function that makes it):
   * import then checks a pushed backlog's lines in worker threads, which build the registry
   * themselves (ledger/import-parallel.ts). Without it a custom registry's lines are checked in
   * this thread; the server's own registry (the default) always has one.
   */
  registrySource?: { module: URL; name: string };
  projections?: readonly Projection[];
  ledger?: Partial<LedgerOptions>;
  onRebuildProgress?: ProgressFn;
  /**
   * 'write' (the default) takes the node's writer lock and fails with NodeBusyError if another
   * process holds it. 'read-if-busy' takes it when free and otherwise opens read-only: for commands
   * that only read (verify, export, backup) beside a running server.
   */
  access?: 'write' | 'read-if-busy';
  /** Who is writing, for the message another process gets: "holdfast serve", "holdfast users add". */
  purpose?: string;
  /** How long to wait while another one-off command holds the lock (a server's is refused at once). */
  waitForCommandMs?: number;
  /**
   * 'refuse' (default): before anything is rebuilt, served or signed, the node's own chains must match
   * its identity file and head mark, else OwnChainRefusal. 'report': open anyway, for a command that
   * only reports (`holdfast verify`, which checks the same things and names what is wrong).
   */
  ownChains?: 'refuse' | 'report';
}

export const BUILTIN_PROJECTIONS: readonly Projection[] = [
  nodeKeysProjection,
  accountsProjection,
  auditProjection,
  patientsProjection,
  casesProjection,
  messagingProjection,
  inboundProjection,
  referralsProjection,
  prescribingProjection,
  bookingProjection,
  telephonyProjection,
  providerSettingsProjection,
  directoryProjection,
  rotaProjection,
  dispatchProjection,
];

export { createServerRegistry };

export function storeOptionsFor(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir'>,
): StoreOptions {
  if (config.store === 'postgres') {
    if (!config.databaseUrl) throw new Error('databaseUrl is required for the postgres store');
    return { dialect: 'postgres', connectionString: config.databaseUrl };
  }
  return { dialect: 'sqlite', file: join(config.dataDir, SQLITE_FILE) };
}

/**
 * Creates a node's identity and store and writes the first event of its chain: its own key
 * registration. Refuses if the data directory is initialised already.
 */
export async function initNode(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir' | 'checkpointEvery'>,
  fields: { node: string; tenant: string; role: NodeFile['role']; hub?: NodeFile['hub'] },
  options: OpenNodeOptions & {
    keyPair?: Parameters<typeof createIdentity>[2];
    /** A site's provider key set, received at enrolment (a hub or single node makes its own). */
    providerKeySet?: ProviderKeySet;
  } = {},
): Promise<HoldfastNode> {
  const clock = options.clock ?? systemClock;
  if (fields.role !== 'site' && !options.providerKeySet)
    await refuseSecondHubWithoutProviderKeys(config, fields.tenant);
  createIdentity(
    config.dataDir,
    { ...fields, createdAt: new Date(clock.nowMs()).toISOString() },
    options.keyPair,
  );
  recordStoreKind(config);
  const keys = ProviderKeys.load(config.dataDir);
  if (options.providerKeySet) keys.adopt(fields.tenant, options.providerKeySet);
  else if (fields.role !== 'site') keys.ensure(fields.tenant);
  const node = await openNode(config, options);
  await node.ledger.registerSelf(fields.tenant, fields.role);
  return node;
}

export async function openNode(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir' | 'checkpointEvery'>,
  options: OpenNodeOptions = {},
): Promise<HoldfastNode> {
  const identity = loadIdentity(config.dataDir);
  const providerKeys = ProviderKeys.load(config.dataDir);
  // The data folder and the SQLite store hold every account's secrets and every patient's record.
  refuseIfReadableByOthers(config.dataDir, 'folder');
  if (config.store === 'sqlite') {
    const file = join(config.dataDir, SQLITE_FILE);
    for (const f of [file, `${file}-wal`, `${file}-shm`]) refuseIfReadableByOthers(f, 'file');
  }
  const clock = options.clock ?? systemClock;
  checkStoreKind(config);
  const defaultPurpose = describeProcess();
  let lock: WriterLock | null = null;
  try {
    lock = await acquireWriterLockWaiting(
      config.dataDir,
      options.purpose ?? defaultPurpose,
      () => clock.nowMs(),
      options.waitForCommandMs ?? 30_000,
    );
  } catch (error) {
    if (!(error instanceof NodeBusyError) || options.access !== 'read-if-busy') throw error;
  }
  const store = await Store.open(storeOptionsFor(config)).catch((error: unknown) => {
    lock?.release();
    throw error;
  });
  let releaseChainLock: (() => Promise<void>) | null = null;
  let headMark: HeadMark | null = null;
  try {
    if (lock) {
      // On PostgreSQL the chain lives in a database other machines can reach: a second data
      // directory with the same identity (a copied node) must not write it either.
      releaseChainLock = await store.lockChain(
        identity.tenant,
        identity.node,
        options.purpose ?? defaultPurpose,
      );
    }
    const registrySource =
      options.registrySource ??
      (options.registry
        ? undefined
        : { module: new URL('./registry.ts', import.meta.url), name: 'createServerRegistry' });
    const ledgerOptions: Partial<LedgerOptions> = {
      checkpointEvery: config.checkpointEvery,
      ...(registrySource ? { importWorkers: { registry: registrySource, threads: importThreads() } } : {}),
      ...options.ledger,
    };
    let headMarkProblem: string | null = null;
    // A reader beside the running writer only reports: the head mark is the writer's to keep.
    const report = options.ownChains === 'report' || !lock;
    if (report) {
      ({ mark: headMark, problem: headMarkProblem } = openHeadMarkForReport(config.dataDir, identity));
    } else {
      headMark = await checkOwnChainsAtStart(
        store,
        identity,
        config.dataDir,
        ledgerOptions.checkpointEvery ?? DEFAULT_LEDGER_OPTIONS.checkpointEvery,
      );
    }
    const registry = options.registry ?? createServerRegistry();
    const projections = new ProjectionEngine(
      store,
      [...BUILTIN_PROJECTIONS, ...(options.projections ?? [])],
      () => new Date(clock.nowMs()).toISOString(),
      (type, v, payload) => registry.subjectOf(type, v, payload),
    );
    // A reader never rebuilds: the projections belong to the writer.
    if (lock) await projections.ensureUpToDate(options.onRebuildProgress);
    const ledger = await Ledger.open({
      store,
      registry,
      crypto: ledgerCrypto,
      signer: identity.signer,
      projections,
      ids: options.ids ?? uuidV7Generator,
      clock,
      options: ledgerOptions,
      ...(headMark && !report ? { headMark } : {}),
    });
    if (!lock) ledger.makeReadOnly(`${config.dataDir} is being written by another process`);
    const heldLock = lock;
    const chainLock = releaseChainLock;
    const mark = headMark;
    return {
      identity,
      store,
      registry,
      projections,
      ledger,
      clock,
      access: heldLock ? 'write' : 'read',
      headMark,
      headMarkProblem,
      providerKeys,
      close: async () => {
        try {
          await mark?.close();
          await chainLock?.();
          await store.close();
        } finally {
          heldLock?.release();
        }
      },
    };
  } catch (error) {
    await headMark?.close();
    await releaseChainLock?.().catch(() => undefined);
    await store.close();
    lock?.release();
    throw error;
  }
}

/**
 * A second hub process over a PostgreSQL database that holds the provider already must seal and
 * open account secrets with the provider's key, not a new one of its own: without it, a user
 * added through one process could not sign in through the other. Its data directory gets the
 * first hub's `provider-keys.json` before `holdfast init` (docs/OPERATIONS.md).
 */
async function refuseSecondHubWithoutProviderKeys(
  config: Pick<HoldfastConfig, 'store' | 'databaseUrl' | 'dataDir'>,
  tenant: string,
): Promise<void> {
  if (config.store !== 'postgres' || ProviderKeys.load(config.dataDir).has(tenant)) return;
  const store = await Store.open(storeOptionsFor(config));
  try {
    const held = await store.db
      .selectFrom('ledger_events')
      .select('node')
      .where('tenant', '=', tenant)
      .limit(1)
      .executeTakeFirst();
    if (held)
      throw new Error(
        `provider ${tenant} is in this PostgreSQL database already (node ${held.node} writes it): a second hub process needs the provider's keys. Copy ${PROVIDER_KEYS_FILE} from that node's data directory into ${config.dataDir} (mode 0600) and run this again. Nothing was written.`,
      );
  } finally {
    await store.close();
  }
}

function describeProcess(): string {
  // Never the command line itself: it can hold a secret (an enrolment token).
  return 'a Holdfast process';
}

export { identityExists };

/** Import's worker threads: one core is left to the thread that writes (and to PostgreSQL). */
function importThreads(): number {
  return Math.max(1, Math.min(2, availableParallelism() - 1));
}
