import type { Worker } from 'node:worker_threads';
import { ImportRefusedError } from '@holdfast/core';
import { startBundledWorker } from '../node/threads.ts';
import { fromWire, parseLines, type LineChecker, type ParsedBatch } from './import-parse.ts';
import type { FromImportWorker, ToImportWorker } from './import-worker.ts';

/**
 * Import's first step (each line checked on its own, import-parse.ts) in worker threads, so that a
 * push of many batches is checked ahead while the calling thread writes the batches before it (a
 * hub taking a site's backlog after an outage). The workers need the node's event registry: they
 * build it themselves from `registry`, a module and the name of its function that makes it.
 *
 * Workers start on first use and are kept (idle ones do not keep the process alive). A batch never
 * waits for a worker still starting, and a batch whose worker fails is checked in the calling
 * thread instead: the result is always the one the calling thread would have reached.
 */
export interface ImportWorkers {
  registry: { module: URL; name: string };
  /** Worker threads at most. */
  threads: number;
}

interface PoolWorker {
  worker: Worker | null;
  booted: boolean;
  /** Batches sent and not answered, by id. */
  waiting: Map<number, (m: FromImportWorker | null) => void>;
}

const pools = new Map<string, Set<PoolWorker>>();
let nextId = 1;

/** For tests: batches checked by import's worker threads since the process started. */
export const importWorkerStats = { batches: 0 };

function poolFor(options: ImportWorkers): Set<PoolWorker> {
  const key = `${options.registry.module.href}#${options.registry.name}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new Set();
    pools.set(key, pool);
  }
  while (pool.size < options.threads) startPoolWorker(options, pool);
  return pool;
}

function startPoolWorker(options: ImportWorkers, pool: Set<PoolWorker>): PoolWorker {
  const entry: PoolWorker = { worker: null, booted: false, waiting: new Map() };
  pool.add(entry);
  const gone = () => {
    pool.delete(entry);
    for (const answer of entry.waiting.values()) answer(null);
    entry.waiting.clear();
  };
  startBundledWorker(new URL('./import-worker.ts', import.meta.url), null, options.registry).then(
    (worker) => {
      entry.worker = worker;
      worker.unref();
      worker.on('error', gone);
      worker.once('exit', gone);
      worker.on('message', (m: FromImportWorker) => {
        if (m.type === 'booted') {
          entry.booted = true;
          return;
        }
        const answer = entry.waiting.get(m.id);
        entry.waiting.delete(m.id);
        if (entry.waiting.size === 0) worker.unref();
        answer?.(m);
      });
    },
    gone,
  );
  return entry;
}

/** Starts the workers and settles once they have booted (tests, and a hub that expects a backlog). */
export async function startImportWorkers(options: ImportWorkers, timeoutMs = 30_000): Promise<void> {
  const pool = poolFor(options);
  const until = Date.now() + timeoutMs;
  while ([...pool].some((w) => !w.booted) && Date.now() < until && pool.size > 0)
    await new Promise((r) => setTimeout(r, 20));
}

/**
 * Checks each batch's lines (as importSyncBatch numbers them: from 1) in a booted worker, the least
 * busy; null for a batch when no worker is ready, which the caller then checks itself. Each promise
 * settles with the parsed batch or rejects with the ImportRefusedError the calling thread would
 * have thrown.
 */
export function parseInWorkers(
  options: ImportWorkers,
  checker: LineChecker,
  tenant: string,
  batches: readonly (readonly string[])[],
): (Promise<ParsedBatch> | null)[] {
  const pool = poolFor(options);
  return batches.map((lines) => {
    const ready = [...pool].filter((w) => w.booted && w.worker);
    if (ready.length === 0) return null;
    const parsed = sendTo(ready, checker, tenant, lines);
    // A batch after a refused one is never awaited: its refusal must not go unhandled.
    parsed.catch(() => undefined);
    return parsed;
  });
}

function sendTo(
  ready: readonly PoolWorker[],
  checker: LineChecker,
  tenant: string,
  lines: readonly string[],
): Promise<ParsedBatch> {
  {
    const entry = ready.reduce((a, b) => (b.waiting.size < a.waiting.size ? b : a));
    const id = nextId++;
    return new Promise<ParsedBatch>((resolve, reject) => {
      const inThread = () => {
        try {
          resolve(parseLines(checker, tenant, numbered(lines)));
        } catch (error) {
          reject(error as Error);
        }
      };
      entry.waiting.set(id, (m) => {
        if (m?.type === 'parsed') {
          importWorkerStats.batches++;
          resolve(fromWire(tenant, m.batch));
        } else if (m?.type === 'refused') {
          importWorkerStats.batches++;
          reject(new ImportRefusedError(m.issues));
        } else inThread();
      });
      entry.worker!.ref();
      const message: ToImportWorker = { type: 'parse', id, tenant, lines: lines as string[] };
      entry.worker!.postMessage(message);
    });
  }
}

function numbered(lines: readonly string[]): { lineNo: number; text: string }[] {
  return lines.map((text, i) => ({ lineNo: i + 1, text }));
}
