import { parentPort, workerData } from 'node:worker_threads';
import { ChainFaultError } from './chain-check.ts';
import { BackupFormatError, type Manifest } from './format.ts';
import type { BackupKeys } from './keys.ts';
import { walkManifest } from './walk.ts';

/**
 * The checking half of a restore, in a worker thread: decrypts every chunk, matches it to its
 * address, re-hashes every event and checks links, clocks and checkpoints (walkManifest), and hands
 * each checked chunk's plaintext to the main thread, which inserts it. At most MAX_AHEAD chunks wait
 * for the main thread, so memory stays bounded whatever the backup's size.
 */
export type WalkMessage =
  | {
      type: 'identity';
      identity: { kind: 'identity'; nodeJson: string; nodeKey: string; providerKeys?: string };
    }
  | { type: 'chunk'; plaintext: Uint8Array; file: string }
  | { type: 'checkpoints'; checkpoints: import('@holdfast/core').Checkpoint[] }
  | { type: 'progress'; done: number; total: number }
  | { type: 'done'; report: import('./walk.ts').WalkReport }
  | {
      type: 'error';
      error:
        | { kind: 'format'; file: string; message: string }
        | { kind: 'chain'; tenant: string; node: string; seq: number; problem: string; where: string }
        | { kind: 'other'; message: string };
    };

const MAX_AHEAD = 3;
const port = parentPort!;
const data = (workerData as { data: unknown }).data as {
  dir: string;
  manifest: Manifest;
  keys: { keyId: string; tenant: string; encryptionKey: Uint8Array; addressKey: Uint8Array };
};
const keys: BackupKeys = {
  keyId: data.keys.keyId,
  tenant: data.keys.tenant,
  encryptionKey: Buffer.from(data.keys.encryptionKey),
  addressKey: Buffer.from(data.keys.addressKey),
};

let inFlight = 0;
let wake: (() => void) | null = null;
port.on('message', (m: { type: 'ack' }) => {
  if (m.type === 'ack') {
    inFlight--;
    wake?.();
    wake = null;
  }
});

const post = (m: WalkMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

try {
  const report = await walkManifest(data.dir, keys, data.manifest, {
    identity: (identity) => post({ type: 'identity', identity }),
    eventsPlaintext: async (plaintext, file) => {
      while (inFlight >= MAX_AHEAD) await new Promise<void>((r) => (wake = r));
      inFlight++;
      const own = plaintext.byteOffset === 0 && plaintext.byteLength === plaintext.buffer.byteLength;
      const bytes = own ? plaintext : Uint8Array.prototype.slice.call(plaintext);
      post({ type: 'chunk', plaintext: bytes, file }, [bytes.buffer as ArrayBuffer]);
    },
    checkpoints: (checkpoints) => post({ type: 'checkpoints', checkpoints }),
    progress: (done, total) => post({ type: 'progress', done, total }),
  });
  while (inFlight > 0) await new Promise<void>((r) => (wake = r));
  post({ type: 'done', report });
} catch (error) {
  if (error instanceof BackupFormatError)
    post({ type: 'error', error: { kind: 'format', file: error.file, message: error.message } });
  else if (error instanceof ChainFaultError)
    post({
      type: 'error',
      error: {
        kind: 'chain',
        tenant: error.tenant,
        node: error.node,
        seq: error.seq,
        problem: error.problem,
        where: error.where,
      },
    });
  else post({ type: 'error', error: { kind: 'other', message: (error as Error).message } });
}
port.close();
