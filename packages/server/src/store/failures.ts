/**
 * What went wrong when the store refused a write, in words an operator can act on. The database
 * drivers' own errors are read here and nowhere else: SQLite (better-sqlite3) names its result code
 * in `code`, PostgreSQL its SQLSTATE, and Node its errno name.
 *
 * Only the code and the driver's message are ever reported: PostgreSQL puts key values (which can
 * be patient data) in `detail`, never in `message`.
 */
export type StoreFailureKind = 'disk_full' | 'write_failed';

export interface StoreFailure {
  kind: StoreFailureKind;
  /** The driver's code: SQLITE_FULL, 53100, ENOSPC, SQLITE_CONSTRAINT_UNIQUE, 23505, … */
  code: string;
  /** The driver's message (no values from the rows). */
  message: string;
}

export const DISK_FULL_MESSAGE = 'the node cannot write: its disk is full';

/** SQLite's "database or disk is full", PostgreSQL's disk_full, and the file system's ENOSPC. */
const DISK_FULL_CODES = new Set(['SQLITE_FULL', '53100', 'ENOSPC']);

/** The store failure behind `error` (or its causes), or null when it is not a store error. */
export function storeFailureOf(error: unknown): StoreFailure | null {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code !== 'string') continue;
    if (DISK_FULL_CODES.has(code)) return { kind: 'disk_full', code, message: e.message };
    // SQLite result codes, and PostgreSQL SQLSTATE classes of data, resources, operator and system
    // trouble: 22 data exception, 23 integrity constraint, 25 transaction state, 40 rollback,
    // 53 insufficient resources, 57 operator intervention, 58 system error, XX internal.
    if (code.startsWith('SQLITE_') || /^(22|23|25|40|53|57|58|XX)[0-9A-Z]{3}$/.test(code))
      return { kind: 'write_failed', code, message: e.message };
  }
  return null;
}
