import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes a backup file without ever replacing one: the bytes go to a fresh temporary name (opened
 * with 'wx') and are fsynced, then hard-linked to the final name, which fails if that name exists,
 * so an earlier file is never overwritten, not even by a crash or a racing backup. The directory is
 * fsynced so the new name survives a power loss. Returns false (writing nothing) when the name exists.
 */
export function writeFileNoReplace(path: string, data: Buffer | string, mode = 0o600): boolean {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    const buffer = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let offset = 0;
    while (offset < buffer.length) offset += writeSync(fd, buffer, offset, buffer.length - offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  let written = true;
  try {
    linkSync(tmp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      unlinkSync(tmp);
      throw error;
    }
    written = false;
  }
  unlinkSync(tmp);
  if (written) fsyncDir(dir);
  return written;
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
