import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

/**
 * One chain, one writer. A node's chain (and its projections) may be written by exactly one process
 * at a time: `holdfast serve` while it runs, or one CLI command while it does not. Two writers each
 * cache the chain's head, so the second one's appends collide on seq and every later save fails.
 *
 * The lock is an operating-system file lock on `writer.lock` in the data directory, taken through
 * SQLite's own locking (an exclusive transaction held open on a tiny database file): the kernel
 * drops it when the process ends however it ends, kill -9 included, so a crashed server never leaves
 * a stale lock behind. `writer.json` beside it says who holds it, for the message a refused command
 * prints; it is informational only (the lock is the file lock).
 */
export const WRITER_LOCK_FILE = 'writer.lock';
export const WRITER_HOLDER_FILE = 'writer.json';

export interface WriterHolder {
  pid: number;
  host: string;
  /** What holds it: "holdfast serve", "holdfast users add", a test. */
  purpose: string;
  since: string;
}

/** Another process is the node's writer. Its message says who, and what to do instead. */
export class NodeBusyError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: WriterHolder | null,
    /** What to do instead while that process runs (the same through the running server). */
    readonly instead?: string,
  ) {
    const who = holder
      ? `${holder.purpose} (process ${holder.pid} on ${holder.host}, since ${holder.since})`
      : 'another process';
    super(
      `${who} is the writer of the node in ${dataDir}: a node's chain has exactly one writer, so this command did not start and nothing was written.` +
        (instead ? `\n${instead}` : ''),
    );
    this.name = 'NodeBusyError';
  }
}

export interface WriterLock {
  readonly dataDir: string;
  release(): void;
}

/**
 * Takes the node's writer lock or throws NodeBusyError at once (it never waits: an operator should
 * hear straight away that a server is running). `clock` gives the holder's start time.
 */
export function acquireWriterLock(dataDir: string, purpose: string, nowMs: () => number): WriterLock {
  const lockPath = join(dataDir, WRITER_LOCK_FILE);
  const database = new BetterSqlite3(lockPath);
  try {
    database.pragma('busy_timeout = 0');
    // EXCLUSIVE locking mode keeps the lock after the statement: it is held until the handle closes.
    database.pragma('locking_mode = EXCLUSIVE');
    database.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    database.close();
    if (
      (error as { code?: string }).code === 'SQLITE_BUSY' ||
      (error as { code?: string }).code === 'SQLITE_LOCKED'
    )
      throw new NodeBusyError(dataDir, readWriterHolder(dataDir));
    throw error;
  }
  const holder: WriterHolder = {
    pid: process.pid,
    host: hostname(),
    purpose,
    since: new Date(nowMs()).toISOString(),
  };
  const holderPath = join(dataDir, WRITER_HOLDER_FILE);
  writeFileSync(holderPath, JSON.stringify(holder, null, 2) + '\n', { mode: 0o600 });
  let released = false;
  return {
    dataDir,
    release() {
      if (released) return;
      released = true;
      // Remove the note first: once the lock is free, the next holder writes its own.
      const current = readWriterHolder(dataDir);
      if (current && current.pid === holder.pid && current.since === holder.since)
        rmSync(holderPath, { force: true });
      database.close();
    },
  };
}

/** A server holds its node for as long as it runs: waiting for it would only hang the command. */
function isServer(holder: WriterHolder): boolean {
  return /\b(serve|start)\b/.test(holder.purpose);
}

/**
 * How long a lock with no readable holder note is waited for. The holder writes writer.json just
 * after it takes the lock, so for a moment the lock is held and the note is missing or half written;
 * two one-off commands started together (a script, or the test harness) would otherwise refuse each
 * other. A server whose note stays unreadable is refused after this.
 */
const UNKNOWN_HOLDER_GRACE_MS = 1_000;

/**
 * Like acquireWriterLock, but waits up to `waitMs` while another one-off command holds the lock
 * (two operators' commands, or a script running two at once, take turns). A server's lock is
 * refused at once.
 */
export async function acquireWriterLockWaiting(
  dataDir: string,
  purpose: string,
  nowMs: () => number,
  waitMs: number,
): Promise<WriterLock> {
  const deadline = Date.now() + waitMs;
  let unknownSince: number | null = null;
  for (;;) {
    try {
      return acquireWriterLock(dataDir, purpose, nowMs);
    } catch (error) {
      if (!(error instanceof NodeBusyError) || Date.now() >= deadline) throw error;
      if (error.holder === null) {
        unknownSince ??= Date.now();
        if (Date.now() - unknownSince >= UNKNOWN_HOLDER_GRACE_MS) throw error;
      } else {
        unknownSince = null;
        if (isServer(error.holder)) throw error;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Who holds (or last held) the lock, from writer.json; null when absent or unreadable. */
export function readWriterHolder(dataDir: string): WriterHolder | null {
  const path = join(dataDir, WRITER_HOLDER_FILE);
  if (!existsSync(path)) return null;
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<WriterHolder>;
    if (typeof parsed.pid !== 'number' || typeof parsed.purpose !== 'string') return null;
    return {
      pid: parsed.pid,
      host: String(parsed.host ?? ''),
      purpose: parsed.purpose,
      since: String(parsed.since ?? ''),
    };
  } catch {
    return null;
  }
}
