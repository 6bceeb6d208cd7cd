import BetterSqlite3 from 'better-sqlite3';
import type { EventRegistry } from '@holdfast/core';
import { Kysely, SqliteDialect, sql, type Transaction } from 'kysely';
import { rowToStored } from '../ledger/rows.ts';
import type { CoreDatabase } from '../store/schema.ts';
import type { Store, Tx } from '../store/store.ts';
import { applyToFolding, toProjected, type Projection } from './projection.ts';

/** The first row where a live projection table differs from a fresh fold of the ledger. */
export interface ProjectionDifference {
  projection: string;
  table: string;
  /** Primary-key columns and values of the row (identifiers only, never field values). */
  key: Record<string, string>;
  /** The first differing column when both sides have the row; null when the row is missing or extra. */
  column: string | null;
  problem: string;
}

/** A stored `subject` column that is not the subject its payload names (it is outside the hash). */
export interface SubjectFault {
  tenant: string;
  node: string;
  seq: number;
  problem: string;
}

export interface ProjectionCheckReport {
  ok: boolean;
  eventsFolded: number;
  tablesCompared: number;
  subjectFault: SubjectFault | null;
  difference: ProjectionDifference | null;
  durationMs: number;
}

const FOLD_PAGE = 5000;

/** Thrown inside the scratch transaction to roll it back once the comparison is done. */
class RollBack extends Error {}

/**
 * Folds the whole ledger into scratch copies of every projection's tables and compares them, row by
 * row, with the live tables; also checks that every event's stored `subject` is the one its payload
 * names. A direct edit of a projection table (a user's roles, a case's state) or of a subject shows
 * up here, named by projection, table, key and column.
 *
 * Everything is read in one snapshot, so appends running meanwhile cannot cause false alarms:
 * - PostgreSQL: a repeatable-read transaction on the system pool with a scratch schema first in the
 *   search path (projection code names its tables unqualified), rolled back at the end.
 * - SQLite: a separate connection to a temporary database with the live file attached read-only as
 *   `live`, so the node's own connection is never held up; unqualified names find the scratch
 *   tables first and `ledger_events` in `live`.
 */
export async function checkProjections(
  store: Store,
  projections: readonly Projection[],
  registry: EventRegistry,
  options: { now?: () => number } = {},
): Promise<ProjectionCheckReport> {
  const now = options.now ?? (() => performance.now());
  const started = now();
  const result = await withScratch(store, async (trx, scratch, live) => {
    for (const p of projections) await p.create(trx, store.dialect);
    const fold = await foldLedger(trx, projections, registry);
    let difference: ProjectionDifference | null = null;
    let tablesCompared = 0;
    outer: for (const p of projections) {
      for (const table of p.tables) {
        tablesCompared++;
        difference = await firstDifference(trx, store.dialect, p.name, table, scratch, live);
        if (difference) break outer;
      }
    }
    return { ...fold, difference, tablesCompared };
  });
  return {
    ok: result.subjectFault === null && result.difference === null,
    eventsFolded: result.eventsFolded,
    tablesCompared: result.tablesCompared,
    subjectFault: result.subjectFault,
    difference: result.difference,
    durationMs: Math.round(now() - started),
  };
}

/** One line for logs and the CLI. */
export function describeProjectionCheck(r: ProjectionCheckReport): string {
  if (r.subjectFault) {
    const f = r.subjectFault;
    return `ledger event ${f.tenant} / ${f.node} seq ${f.seq}: ${f.problem}`;
  }
  if (r.difference) {
    const d = r.difference;
    const key = Object.entries(d.key)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    return `projection ${d.projection}, table ${d.table}, row (${key})${d.column ? `, column ${d.column}` : ''}: ${d.problem}`;
  }
  return `projections match the ledger (${r.eventsFolded} events folded, ${r.tablesCompared} tables compared)`;
}

async function withScratch<T>(
  store: Store,
  fn: (trx: Tx, scratch: string, live: string) => Promise<T>,
): Promise<T> {
  let result: T | undefined;
  if (store.dialect === 'postgres') {
    const schema = `holdfast_check_${process.pid}_${Math.floor(performance.now())}`;
    try {
      await store.db
        .transaction()
        .setIsolationLevel('repeatable read')
        .execute(async (trx) => {
          const live = (await sql<{ s: string }>`select current_schema() as s`.execute(trx)).rows[0]!.s;
          await sql`create schema ${sql.id(schema)}`.execute(trx);
          await sql`select set_config('search_path', ${`${schema}, ${live}`}, true)`.execute(trx);
          result = await fn(trx, schema, live);
          throw new RollBack();
        });
    } catch (error) {
      if (!(error instanceof RollBack)) throw error;
    }
    return result as T;
  }
  const liveFile = store.sqliteHandle()?.name;
  if (!liveFile) throw new Error('the SQLite store has no file to check against');
  // '' is an anonymous on-disk temporary database: a large audit log need not fit in memory.
  const database = new BetterSqlite3('');
  database.pragma('journal_mode = OFF');
  database.pragma('synchronous = OFF');
  database.pragma('cache_size = -65536'); // 64 MiB: the scratch tables are written once, then compared
  database.prepare('attach database ? as live').run(liveFile);
  const db = new Kysely<CoreDatabase>({ dialect: new SqliteDialect({ database }) });
  try {
    return await db.transaction().execute((trx: Transaction<CoreDatabase>) => fn(trx, 'main', 'live'));
  } finally {
    await db.destroy();
  }
}

/** Folds every event in ledger order, with the subject derived from the payload (never the column). */
async function foldLedger(
  trx: Tx,
  projections: readonly Projection[],
  registry: EventRegistry,
): Promise<{ eventsFolded: number; subjectFault: SubjectFault | null }> {
  let eventsFolded = 0;
  let subjectFault: SubjectFault | null = null;
  let after: { tenant: string; hlc: string; node: string; seq: number } | null = null;
  for (;;) {
    let q = trx.selectFrom('ledger_events').selectAll();
    if (after) {
      const a: { tenant: string; hlc: string; node: string; seq: number } = after;
      q = q.where(sql<boolean>`(tenant, hlc, node, seq) > (${a.tenant}, ${a.hlc}, ${a.node}, ${a.seq})`);
    }
    const rows = await q
      .orderBy('tenant')
      .orderBy('hlc')
      .orderBy('node')
      .orderBy('seq')
      .limit(FOLD_PAGE)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      const stored = rowToStored(row);
      const payload = JSON.parse(stored.payloadJson) as Record<string, unknown>;
      const subject = registry.subjectOf(stored.type, stored.v, payload);
      if (subject !== row.subject && subjectFault === null) {
        subjectFault = {
          tenant: stored.tenant,
          node: stored.node,
          seq: stored.seq,
          problem: `stored subject ${JSON.stringify(row.subject)} is not the event's subject ${JSON.stringify(subject)} (the subject column was edited)`,
        };
      }
      const event = { ...toProjected(stored, subject), payload };
      await applyToFolding(projections, trx, event);
      eventsFolded++;
    }
    const last = rows[rows.length - 1]!;
    after = { tenant: last.tenant, hlc: last.hlc, node: last.node, seq: Number(last.seq) };
  }
  return { eventsFolded, subjectFault };
}

async function columnsOf(trx: Tx, dialect: Store['dialect'], schema: string, table: string) {
  if (dialect === 'sqlite') {
    const rows = await sql<{
      name: string;
      pk: number;
    }>`select name, pk from pragma_table_info(${table}, ${schema}) order by cid`.execute(trx);
    const key = rows.rows
      .filter((r) => r.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((r) => r.name);
    return { columns: rows.rows.map((r) => r.name), key };
  }
  const columns = await sql<{ name: string }>`
    select column_name as name from information_schema.columns
    where table_schema = ${schema} and table_name = ${table} order by ordinal_position`.execute(trx);
  const key = await sql<{ name: string }>`
    select a.attname as name
    from pg_index i
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
    where i.indrelid = ${`${schema}.${table}`}::regclass and i.indisprimary
    order by array_position(i.indkey, a.attnum)`.execute(trx);
  return { columns: columns.rows.map((r) => r.name), key: key.rows.map((r) => r.name) };
}

async function firstDifference(
  trx: Tx,
  dialect: Store['dialect'],
  projection: string,
  table: string,
  scratch: string,
  live: string,
): Promise<ProjectionDifference | null> {
  const { columns, key: pk } = await columnsOf(trx, dialect, scratch, table);
  const key = pk.length > 0 ? pk : columns;
  const cols = sql.join(columns.map((c) => sql.ref(c)));
  const order = sql.join(key.map((c) => sql.ref(c)));
  const fromLedger = sql.id(scratch, table);
  const fromLive = sql.id(live, table);
  // Set difference both ways in the store: only the differing rows come back.
  const onlyFolded = (
    await sql<
      Record<string, unknown>
    >`select ${cols} from ${fromLedger} except select ${cols} from ${fromLive} order by ${order} limit 1`.execute(
      trx,
    )
  ).rows[0];
  const onlyLive = (
    await sql<
      Record<string, unknown>
    >`select ${cols} from ${fromLive} except select ${cols} from ${fromLedger} order by ${order} limit 1`.execute(
      trx,
    )
  ).rows[0];
  if (!onlyFolded && !onlyLive) return null;
  const keyOf = (row: Record<string, unknown>) =>
    Object.fromEntries(key.map((c) => [c, String(row[c])])) as Record<string, string>;
  if (onlyFolded) {
    const keyMatch = sql.join(
      key.map((c) => sql`${sql.ref(c)} = ${onlyFolded[c] as string | number}`),
      sql` and `,
    );
    const liveRow = (
      await sql<Record<string, unknown>>`select ${cols} from ${fromLive} where ${keyMatch}`.execute(trx)
    ).rows[0];
    if (liveRow) {
      const column = columns.find((c) => String(onlyFolded[c]) !== String(liveRow[c])) ?? null;
      return {
        projection,
        table,
        key: keyOf(onlyFolded),
        column,
        problem: 'the live value is not what the ledger folds to (the table was edited)',
      };
    }
  }
  if (onlyFolded) {
    return {
      projection,
      table,
      key: keyOf(onlyFolded),
      column: null,
      problem: 'the ledger folds to this row but the live table lacks it (or holds it under another key)',
    };
  }
  return {
    projection,
    table,
    key: keyOf(onlyLive!),
    column: null,
    problem: 'the live table holds this row but the ledger does not produce it',
  };
}
