import { parentPort } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';
import { ledgerCrypto } from '../node/crypto.ts';
import type { WorkerStoreSource } from '../store/store.ts';
import {
  checkRange,
  openPostgresRangeReader,
  sqliteRangeReader,
  type RangeAnswer,
  type RangeReader,
  type RangeTask,
} from './verify-range.ts';

/**
 * One of verify's worker threads (verify-parallel.ts keeps them between checks). For each check it
 * opens the store itself (SQLite: a read-only handle on the file; PostgreSQL: its own connection in
 * a REPEATABLE READ transaction on the coordinator's exported snapshot, so every reader sees one
 * state), checks the seq ranges it is handed one at a time, and closes it again.
 */
export type ToVerifyWorker =
  | { type: 'open'; source: WorkerStoreSource; snapshot: string | null }
  | { type: 'task'; task: RangeTask }
  | { type: 'close' };

export type FromVerifyWorker =
  | { type: 'booted' }
  | { type: 'ready' }
  | { type: 'rows'; rows: number }
  | { type: 'result'; id: number; answer: RangeAnswer }
  | { type: 'closed' }
  | { type: 'error'; message: string };

async function openReader(
  source: WorkerStoreSource,
  snapshot: string | null,
): Promise<RangeReader & { close(): Promise<void> }> {
  if (source.dialect === 'postgres') return openPostgresRangeReader(source.connectionString, snapshot);
  const database = new BetterSqlite3(source.file, { readonly: true, fileMustExist: true });
  return {
    ...sqliteRangeReader(database),
    close: async () => {
      database.close();
    },
  };
}

const port = parentPort!;
const post = (m: FromVerifyWorker) => port.postMessage(m);
let reader: (RangeReader & { close(): Promise<void> }) | null = null;
let queue = Promise.resolve();
port.on('message', (m: ToVerifyWorker) => {
  queue = queue
    .then(async () => {
      switch (m.type) {
        case 'open':
          reader = await openReader(m.source, m.snapshot);
          return post({ type: 'ready' });
        case 'task': {
          const answer = await checkRange(ledgerCrypto, reader!, m.task, (rows) =>
            post({ type: 'rows', rows }),
          );
          return post({ type: 'result', id: m.task.id, answer });
        }
        case 'close':
          await reader?.close();
          reader = null;
          return post({ type: 'closed' });
      }
    })
    .catch((error: unknown) => post({ type: 'error', message: (error as Error).message }));
});
post({ type: 'booted' });
