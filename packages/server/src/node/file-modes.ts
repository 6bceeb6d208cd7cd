import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * Owner-only files and folders. A node's data folder holds its keys, its SQLite store (every
 * patient's record, every account event) and what `ledger export` writes: none of it may be
 * readable by other accounts on the machine. New files are made 0600 and folders 0700; a node
 * refuses to start on a folder or store file that others can read, as it does for `node.key`.
 */
export const OWNER_FILE_MODE = 0o600;
export const OWNER_DIR_MODE = 0o700;

/** Makes `dir` (and its parents, as mkdir -p) and narrows it to 0700. */
export function makeOwnerOnlyDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: OWNER_DIR_MODE });
  chmodSync(dir, OWNER_DIR_MODE);
}

/** Creates `file` empty and 0600 if it does not exist (so the program that fills it never widens it). */
export function createOwnerOnlyFile(file: string): void {
  if (existsSync(file)) return;
  closeSync(openSync(file, 'a', OWNER_FILE_MODE));
  chmodSync(file, OWNER_FILE_MODE); // the umask may have narrowed it further; never wider
}

/** The refusal for a file or folder other accounts can read, with the command that fixes it. */
export class ReadableByOthersError extends Error {
  constructor(
    readonly path: string,
    readonly mode: number,
    kind: 'file' | 'folder',
  ) {
    const fix = kind === 'folder' ? `chmod 700 ${path}` : `chmod 600 ${path}`;
    super(
      `refusing to start: the ${kind} ${path} is readable by other accounts on this machine (mode ${mode.toString(8)}); it holds the node's keys or data. Run: ${fix}`,
    );
    this.name = 'ReadableByOthersError';
  }
}

/** Throws ReadableByOthersError when `path` exists and grants its group or others any access. */
export function refuseIfReadableByOthers(path: string, kind: 'file' | 'folder'): void {
  if (!existsSync(path)) return;
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o077) !== 0) throw new ReadableByOthersError(path, mode, kind);
}
