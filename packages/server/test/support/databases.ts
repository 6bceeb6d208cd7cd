import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { inject } from 'vitest';
import type { StoreOptions } from '../../src/store/store.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
  }
}

/** Creates an empty PostgreSQL database on the test server; returns its URL. */
export async function createPgDatabase(
  adminUrl: string = inject('pgAdminUrl'),
  /** Keep the database's files in this tablespace (a small file system, say). */
  tablespace?: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `hf_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database ${name}${tablespace ? ` tablespace ${tablespace}` : ''}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        // Dropping a database asks for a checkpoint of the whole server, which every test shares.
        // While another test holds its own tablespace's small file system full (disk-full.test.ts),
        // that checkpoint can fail ("checkpoint request failed"): try again once that test has
        // freed the space, rather than failing this test's clean-up for another's deliberate fault.
        for (let attempt = 1; ; attempt++) {
          try {
            await c.query(`drop database if exists ${name} with (force)`);
            return;
          } catch (error) {
            const checkpointFailed =
              error instanceof Error && /checkpoint request failed/.test(error.message);
            if (!checkpointFailed || attempt >= DROP_ATTEMPTS) throw error;
            await new Promise((resolve) => setTimeout(resolve, 1000));
          }
        }
      } finally {
        await c.end();
      }
    },
  };
}

/** Tries at dropping a test database while the shared server's checkpoints fail, a second apart. */
const DROP_ATTEMPTS = 120;

export type StoreKind = 'sqlite' | 'postgres';
export const STORE_KINDS: StoreKind[] = ['sqlite', 'postgres'];

/** A fresh, empty store location of the given kind, plus a data directory for node files. */
export async function freshStore(
  kind: StoreKind,
  options: {
    /** Put the node's files here (a small file system, say) instead of a new temporary directory; kept at cleanup. */
    dataDir?: string;
    /** PostgreSQL: create the database in this tablespace. */
    pgTablespace?: string;
  } = {},
): Promise<{
  dataDir: string;
  storeOptions: StoreOptions;
  config: { store: StoreKind; databaseUrl?: string; dataDir: string; checkpointEvery: number };
  cleanup(): Promise<void>;
}> {
  const givenDataDir = options.dataDir;
  const dataDir = givenDataDir ?? mkdtempSync(join(tmpdir(), 'holdfast-test-'));
  const removeDataDir = () => {
    if (!givenDataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  if (kind === 'sqlite') {
    return {
      dataDir,
      storeOptions: { dialect: 'sqlite', file: join(dataDir, 'holdfast.sqlite') },
      config: { store: 'sqlite', dataDir, checkpointEvery: 100 },
      cleanup: async () => removeDataDir(),
    };
  }
  const database = await createPgDatabase(undefined, options.pgTablespace);
  return {
    dataDir,
    storeOptions: { dialect: 'postgres', connectionString: database.url },
    config: { store: 'postgres', databaseUrl: database.url, dataDir, checkpointEvery: 100 },
    cleanup: async () => {
      await database.drop();
      removeDataDir();
    },
  };
}
