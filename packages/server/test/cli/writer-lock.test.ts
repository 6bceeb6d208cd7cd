import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  acquireWriterLock,
  acquireWriterLockWaiting,
  NodeBusyError,
  WRITER_HOLDER_FILE,
} from '../../src/node/writer-lock.ts';

/**
 * The writer lock's waiting rules, in one process (SQLite's locks conflict between two handles of
 * one process as they do between processes). One-off commands take turns; a server is refused at
 * once; a holder whose note is not yet written (the moment after it takes the lock) is waited for.
 */
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-lock-'));
  dirs.push(dir);
  return dir;
}
const now = () => Date.parse('2026-12-05T04:00:00Z');

describe('the writer lock', () => {
  it('a one-off command waits for another one-off command, then takes the lock', async () => {
    const dir = dataDir();
    const first = acquireWriterLock(dir, 'holdfast users add', now);
    setTimeout(() => first.release(), 300);
    const second = await acquireWriterLockWaiting(dir, 'holdfast nodes enrol-token', now, 5_000);
    second.release();
  });

  it('a holder whose note is not written yet is waited for, not taken for a server', async () => {
    const dir = dataDir();
    const first = acquireWriterLock(dir, 'holdfast nodes enrol-token', now);
    // The instant between taking the lock and writing writer.json.
    rmSync(join(dir, WRITER_HOLDER_FILE));
    setTimeout(() => first.release(), 300);
    const second = await acquireWriterLockWaiting(dir, 'holdfast nodes enrol-token', now, 5_000);
    second.release();
  });

  it('a half-written note is waited for in the same way', async () => {
    const dir = dataDir();
    const first = acquireWriterLock(dir, 'holdfast nodes enrol-token', now);
    writeFileSync(join(dir, WRITER_HOLDER_FILE), '{"pid": 12');
    setTimeout(() => first.release(), 300);
    const second = await acquireWriterLockWaiting(dir, 'holdfast users add', now, 5_000);
    second.release();
  });

  it('a running server is refused at once, naming it', async () => {
    const dir = dataDir();
    const server = acquireWriterLock(dir, 'holdfast serve', now);
    const started = Date.now();
    const refused = await acquireWriterLockWaiting(dir, 'holdfast users add', now, 5_000).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(NodeBusyError);
    expect((refused as Error).message).toContain('holdfast serve');
    expect(Date.now() - started).toBeLessThan(500);
    server.release();
  });

  it('a holder whose note never appears is refused after a short grace, not after the whole wait', async () => {
    const dir = dataDir();
    const holder = acquireWriterLock(dir, 'holdfast serve', now);
    rmSync(join(dir, WRITER_HOLDER_FILE));
    const started = Date.now();
    const refused = await acquireWriterLockWaiting(dir, 'holdfast users add', now, 10_000).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(NodeBusyError);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(900);
    expect(waited).toBeLessThan(5_000);
    holder.release();
  });
});
