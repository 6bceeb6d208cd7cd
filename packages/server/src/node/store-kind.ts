import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HoldfastConfig } from '../config.ts';
import { NODE_FILE } from './identity.ts';

/**
 * A data directory records which store its node uses (`store.json`) and refuses another. Without
 * this, a command on a PostgreSQL hub run without HOLDFAST_STORE would quietly create an empty
 * SQLite store beside the hub's key, write to it, and print results (an enrolment token, a new
 * user) that the running hub never sees.
 */
export const STORE_KIND_FILE = 'store.json';
export const SQLITE_FILE = 'holdfast.sqlite';

type StoreKind = HoldfastConfig['store'];

export class StoreKindMismatchError extends Error {
  constructor(dataDir: string, recorded: StoreKind) {
    super(
      recorded === 'postgres'
        ? `the node in ${dataDir} keeps its data in PostgreSQL, but this command was configured for SQLite: set HOLDFAST_STORE=postgres and HOLDFAST_DATABASE_URL (or "store" and "databaseUrl" in the config file) as the node's server has them. Nothing was written.`
        : `the node in ${dataDir} keeps its data in SQLite (${join(dataDir, SQLITE_FILE)}), but this command was configured for PostgreSQL: leave HOLDFAST_STORE unset (or set it to sqlite). Nothing was written.`,
    );
    this.name = 'StoreKindMismatchError';
  }
}

function readRecordedKind(dataDir: string): StoreKind | null {
  const path = join(dataDir, STORE_KIND_FILE);
  if (!existsSync(path)) return null;
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { store?: unknown };
  if (parsed.store !== 'sqlite' && parsed.store !== 'postgres')
    throw new Error(`${path} does not name a store ("sqlite" or "postgres")`);
  return parsed.store;
}

/**
 * Checks the configured store against the one the data directory records, and records it the first
 * time. A directory made before this file existed is judged by what it holds: a node with no SQLite
 * file is not a SQLite node.
 */
export function checkStoreKind(config: Pick<HoldfastConfig, 'dataDir' | 'store'>): void {
  const recorded = readRecordedKind(config.dataDir);
  if (recorded !== null) {
    if (recorded !== config.store) throw new StoreKindMismatchError(config.dataDir, recorded);
    return;
  }
  const initialised = existsSync(join(config.dataDir, NODE_FILE));
  const hasSqlite = existsSync(join(config.dataDir, SQLITE_FILE));
  if (initialised && config.store === 'sqlite' && !hasSqlite)
    throw new StoreKindMismatchError(config.dataDir, 'postgres');
  if (initialised && config.store === 'postgres' && hasSqlite)
    throw new StoreKindMismatchError(config.dataDir, 'sqlite');
  recordStoreKind(config);
}

/** Records the store of a node being created (init, restore, enrolment), before its store opens. */
export function recordStoreKind(config: Pick<HoldfastConfig, 'dataDir' | 'store'>): void {
  writeFileSync(join(config.dataDir, STORE_KIND_FILE), JSON.stringify({ store: config.store }) + '\n', {
    mode: 0o600,
  });
}
