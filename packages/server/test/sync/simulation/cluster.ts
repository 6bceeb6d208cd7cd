import { randomUUID } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixedClock, type Role } from '@holdfast/core';
import { AccountsService } from '../../../src/accounts/service.ts';
import { Auditor } from '../../../src/audit/auditor.ts';
import { DEFAULT_SESSION_POLICY, SessionStore } from '../../../src/auth/sessions.ts';
import { CaseService } from '../../../src/cases/service.ts';
import type { RequestContext } from '../../../src/http/context.ts';
import { initNode, openNode, type HoldfastNode } from '../../../src/node/node.ts';
import { ReconciliationService } from '../../../src/reconciliation/service.ts';
import { registerPeerKey, SyncEngine } from '../../../src/sync/engine.ts';
import { MemoryTransport, type SyncInterceptor } from '../../../src/sync/memory-transport.ts';
import { freshStore, type StoreKind } from '../../support/databases.ts';

/**
 * A real node (store, ledger, projections) with the clinical services on it, driven directly
 * rather than over HTTP: the reconciliation tests and the simulation use it.
 */
export interface ClinicalNode {
  name: string;
  node: HoldfastNode;
  clock: FixedClock;
  cases: CaseService;
  reconciliation: ReconciliationService;
  config: { store: StoreKind; databaseUrl?: string; dataDir: string; checkpointEvery: number };
}

function withServices(
  name: string,
  node: HoldfastNode,
  clock: FixedClock,
  config: ClinicalNode['config'],
): ClinicalNode {
  const sessions = new SessionStore(node.store, clock, DEFAULT_SESSION_POLICY);
  const accounts = new AccountsService(node.store, node.ledger, sessions, node.providerKeys);
  const auditor = new Auditor(node.ledger);
  return {
    name,
    node,
    clock,
    config,
    cases: new CaseService(node.store, node.ledger, clock, accounts),
    reconciliation: new ReconciliationService(node.store, node.ledger, auditor),
  };
}

/** Prefers RAM-backed /dev/shm: the simulation fsyncs on every commit, as a real node does. */
export function simulationTmpDir(): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return mkdtempSync(join(base, 'holdfast-sim-'));
}

/** A node on a fresh store of `kind` (SQLite in `dir` when given). */
export async function startClinicalNode(
  kind: StoreKind,
  name: string,
  tenant: string,
  options: { role?: 'hub' | 'site'; startMs?: number; checkpointEvery?: number; dir?: string } = {},
): Promise<ClinicalNode & { destroy(): Promise<void> }> {
  const clock = new FixedClock(options.startMs ?? 1_764_000_000_000);
  let config: ClinicalNode['config'];
  let cleanup: () => Promise<void>;
  if (kind === 'sqlite' && options.dir) {
    const dataDir = join(options.dir, name);
    config = { store: 'sqlite', dataDir, checkpointEvery: options.checkpointEvery ?? 5 };
    cleanup = async () => rmSync(dataDir, { recursive: true, force: true });
  } else {
    const fresh = await freshStore(kind);
    config = { ...fresh.config, checkpointEvery: options.checkpointEvery ?? 5 };
    cleanup = fresh.cleanup;
  }
  const node = await initNode(config, { node: name, tenant, role: options.role ?? 'site' }, { clock });
  const n = withServices(name, node, clock, config);
  return {
    ...n,
    async destroy() {
      await n.node.close();
      await cleanup();
    },
  };
}

/**
 * A kill with work in flight: `work` is started on the node and not waited for (nobody is told it
 * happened), and after `turns` turns of the event loop the node's files are copied as they are at
 * that instant: what SIGKILL leaves behind, since the operating system keeps every write a process
 * made and nothing else. The killed incarnation is then shut (anything it does after the instant
 * goes to files that are thrown away), the copy takes the data directory's place, and the node is
 * opened from it as `holdfast serve` would. SQLite only: a PostgreSQL store is not in the directory.
 */
export async function killAndReopen(
  n: ClinicalNode,
  work: (n: ClinicalNode) => Promise<unknown>,
  turns: number,
): Promise<void> {
  if (n.config.store !== 'sqlite') throw new Error('killAndReopen copies a SQLite data directory');
  const inFlight = work(n).catch(() => undefined);
  for (let i = 0; i < turns; i++) await new Promise<void>((r) => setImmediate(r));
  const image = `${n.config.dataDir}.killed`;
  rmSync(image, { recursive: true, force: true });
  cpSync(n.config.dataDir, image, { recursive: true });
  await inFlight;
  await n.node.close().catch(() => undefined);
  rmSync(n.config.dataDir, { recursive: true, force: true });
  renameSync(image, n.config.dataDir);
  const node = await openNode(n.config, { clock: n.clock });
  Object.assign(n, withServices(n.name, node, n.clock, n.config));
}

/**
 * A crash as the dispatch simulation makes it: the store is closed with no checkpoint signed and
 * nothing flushed by the node (work it started may be cut short), then the node is opened again from
 * its files as `holdfast serve` would.
 */
export async function crashAndReopen(n: ClinicalNode): Promise<void> {
  await n.node.close();
  const node = await openNode(n.config, { clock: n.clock });
  Object.assign(n, withServices(n.name, node, n.clock, n.config));
}

/** Keys of every node registered on every other node for `tenant` (what enrolment does). */
export async function enrolAll(nodes: readonly ClinicalNode[], tenant: string): Promise<void> {
  // Every node of a provider holds its key (a site receives it at enrolment).
  const holder = nodes.find((n) => n.node.providerKeys.has(tenant)) ?? nodes[0];
  if (holder) {
    holder.node.providerKeys.ensure(tenant);
    const set = holder.node.providerKeys.keySet(tenant);
    for (const n of nodes) n.node.providerKeys.adopt(tenant, set);
  }
  for (const a of nodes) {
    await a.node.ledger.registerSelf(tenant, a.node.identity.role === 'hub' ? 'hub' : 'site');
    for (const b of nodes) {
      if (a === b) continue;
      const role = b.node.identity.role === 'hub' ? 'hub' : 'site';
      await registerPeerKey(a.node, tenant, b.node.identity.node, b.node.identity.signer.publicKey, role);
    }
  }
}

/** A site of the provider, recorded on `n`; returns its id. */
export async function createSite(n: ClinicalNode, tenant: string, name: string): Promise<string> {
  const siteId = randomUUID();
  await n.node.ledger.append([
    { tenant, type: 'site.created', actor: 'user:sim-admin', payload: { siteId, name } },
  ]);
  return siteId;
}

export function ctxFor(
  tenant: string,
  userId: string,
  roles: Role[],
  siteIds: string[] = [],
): RequestContext {
  return {
    tenant,
    userId,
    username: `u-${userId.slice(0, 8)}`,
    roles,
    siteIds,
    sessionId: 'sim',
    address: '127.0.0.1',
  };
}

/** One sync round of `from` with `to`, optionally through a faulty network. */
export function syncOnce(
  from: ClinicalNode,
  to: ClinicalNode | (() => ClinicalNode),
  tenant: string,
  interceptor?: SyncInterceptor,
) {
  const target = typeof to === 'function' ? () => to().node : () => to.node;
  return new SyncEngine(from.node, tenant, new MemoryTransport(target, { interceptor }), {
    maxEventsPerRequest: 50,
    batchEvents: 20,
  }).syncOnce();
}

/** Every projection row a collision can touch, sorted, without store-local columns. */
export async function projectionDump(n: ClinicalNode, tenant: string) {
  const db = n.node.store.db as unknown as {
    selectFrom(t: string): {
      selectAll(): {
        where(c: string, op: string, v: string): { execute(): Promise<Record<string, unknown>[]> };
      };
    };
  };
  const rows = async (table: string, key: string) =>
    (await db.selectFrom(table).selectAll().where('tenant', '=', tenant).execute())
      .map((r) =>
        Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])),
      )
      .sort((a, b) => String(a[key]).localeCompare(String(b[key])));
  return {
    cases: await rows('cases', 'case_id'),
    reconciliation: await rows('reconciliation_items', 'item_id'),
    patients: await rows('patients', 'patient_id'),
    sites: await rows('sites', 'site_id'),
  };
}
