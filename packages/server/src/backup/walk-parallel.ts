import { startWorker } from '../node/threads.ts';
import { ChainFaultError } from './chain-check.ts';
import { BackupFormatError, decodeEventsChunk, type Manifest } from './format.ts';
import type { BackupKeys } from './keys.ts';
import type { WalkMessage } from './walk-worker.ts';
import { walkManifest, type WalkReport, type WalkSink } from './walk.ts';

/**
 * walkManifest with its checking (decrypt, address, hashes, links, clocks, checkpoints) in a worker
 * thread, so that on two cores the checks of one chunk overlap with the main thread inserting the
 * previous one. Same sink calls in the same order; the first problem is thrown as the same error.
 * HOLDFAST_RESTORE_WORKER=0 keeps everything on the main thread.
 */
export async function walkManifestParallel(
  dir: string,
  keys: BackupKeys,
  manifest: Manifest,
  sink: WalkSink,
): Promise<WalkReport> {
  if (process.env.HOLDFAST_RESTORE_WORKER === '0') return walkManifest(dir, keys, manifest, sink);
  const worker = startWorker(new URL('./walk-worker.ts', import.meta.url), {
    dir,
    manifest,
    keys: {
      keyId: keys.keyId,
      tenant: keys.tenant,
      encryptionKey: new Uint8Array(keys.encryptionKey),
      addressKey: new Uint8Array(keys.addressKey),
    },
  });
  try {
    return await new Promise<WalkReport>((resolve, reject) => {
      let chain = Promise.resolve();
      let settled = false;
      const fail = (error: unknown) => {
        if (settled) return;
        settled = true;
        reject(error);
      };
      const handle = async (m: WalkMessage): Promise<void> => {
        if (settled) return;
        switch (m.type) {
          case 'identity':
            return sink.identity?.(m.identity);
          case 'chunk': {
            const plaintext = Buffer.from(m.plaintext.buffer, m.plaintext.byteOffset, m.plaintext.byteLength);
            await sink.events?.(decodeEventsChunk(m.file, plaintext).events);
            worker.postMessage({ type: 'ack' });
            return;
          }
          case 'checkpoints':
            return sink.checkpoints?.(m.checkpoints);
          case 'progress':
            sink.progress?.(m.done, m.total);
            return;
          case 'done':
            settled = true;
            resolve(m.report);
            return;
          case 'error': {
            const e = m.error;
            if (e.kind === 'format') {
              const error = new BackupFormatError(e.file, '');
              error.message = e.message;
              throw error;
            }
            if (e.kind === 'chain') throw new ChainFaultError(e.tenant, e.node, e.seq, e.problem, e.where);
            throw new Error(e.message);
          }
        }
      };
      worker.on('message', (m: WalkMessage) => {
        chain = chain.then(() => handle(m)).catch(fail);
      });
      worker.on('error', fail);
      worker.on('exit', (code) => {
        void chain.then(() =>
          fail(new Error(`the restore worker stopped (exit code ${code}) before finishing`)),
        );
      });
    });
  } finally {
    await worker.terminate();
  }
}
