import { CompiledQuery, sql } from 'kysely';
import type { ProjectedEvent } from '../projections/projection.ts';
import type { Store, Tx } from '../store/store.ts';
import { insertEvents } from './ledger.ts';

const COLUMNS = 'tenant, node, seq, id, hlc, type, v, actor, payload, prev_hash, hash, subject';

/**
 * A session's staging table for imported events: COPY cannot write into ledger_events itself, whose
 * row-level security is forced (PostgreSQL refuses COPY FROM into such a table for any role that
 * does not bypass it), so the rows are copied here and moved with one INSERT … SELECT, which the
 * policies check as usual. Emptied at every commit; a rolled-back import leaves nothing in it.
 */
const STAGING = 'holdfast_import_events';

/**
 * Stores an import's events in its transaction. PostgreSQL: one COPY of the whole batch (text
 * format) into the staging table, then one INSERT … SELECT into ledger_events, instead of multi-row
 * INSERTs whose thousands of parameters the server must parse; the unique indexes check every row
 * as before. SQLite: the ledger's own inserts (prepared statements in process, nothing to gain).
 */
export async function copyEvents(store: Store, trx: Tx, events: readonly ProjectedEvent[]): Promise<void> {
  if (store.dialect !== 'postgres' || events.length === 0) return insertEvents(trx, events);
  await sql
    .raw(
      `create temporary table if not exists ${STAGING} (tenant text, node text, seq bigint, id text, hlc text,
        type text, v integer, actor text, payload text, prev_hash text, hash text, subject text) on commit delete rows`,
    )
    .execute(trx);
  let data = '';
  for (const e of events) {
    data +=
      `${field(e.tenant)}\t${field(e.node)}\t${e.seq}\t${field(e.id)}\t${field(e.hlc)}\t${field(e.type)}\t` +
      `${e.v}\t${field(e.actor)}\t${field(e.payloadJson)}\t${field(e.prevHash)}\t${field(e.hash)}\t` +
      `${e.subject === null ? '\\N' : field(e.subject)}\n`;
  }
  // store/primary.ts sends a `copy … from stdin` with its data as the one parameter.
  await trx.executeQuery(CompiledQuery.raw(`copy ${STAGING} (${COLUMNS}) from stdin`, [data]));
  await sql
    .raw(`insert into ledger_events (${COLUMNS}) select ${COLUMNS} from ${STAGING} order by node, seq`)
    .execute(trx);
}

/** A text value in COPY's text format: backslash, tab, newline and carriage return escaped. */
function field(value: string): string {
  return /[\\\t\n\r]/.test(value)
    ? value.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!)
    : value;
}
