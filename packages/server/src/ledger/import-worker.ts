import { parentPort } from 'node:worker_threads';
import { ImportRefusedError, type EventRegistry, type FieldIssue } from '@holdfast/core';
import { ledgerCrypto } from '../node/crypto.ts';
import { parseLines, toWire, type WireBatch } from './import-parse.ts';

/**
 * One of import's worker threads (import-parallel.ts): checks batches' lines on their own (JSON,
 * schemas, canonical payload, hash) with the node's event registry, which it builds itself at start
 * (threads.ts bundles the registry's module with this one), and sends back the checked events or the
 * problems that refuse the batch.
 */
export type ToImportWorker = { type: 'parse'; id: number; tenant: string; lines: string[] };

export type FromImportWorker =
  | { type: 'booted' }
  | { type: 'parsed'; id: number; batch: WireBatch }
  | { type: 'refused'; id: number; issues: FieldIssue[] }
  | { type: 'error'; id: number; message: string };

export function run(registry: EventRegistry): void {
  const port = parentPort!;
  const checker = { registry, crypto: ledgerCrypto };
  const post = (m: FromImportWorker) => port.postMessage(m);
  port.on('message', (m: ToImportWorker) => {
    try {
      const numbered = m.lines.map((text, i) => ({ lineNo: i + 1, text }));
      post({ type: 'parsed', id: m.id, batch: toWire(parseLines(checker, m.tenant, numbered)) });
    } catch (error) {
      if (error instanceof ImportRefusedError) post({ type: 'refused', id: m.id, issues: error.issues });
      else post({ type: 'error', id: m.id, message: (error as Error).message });
    }
  });
  post({ type: 'booted' });
}
