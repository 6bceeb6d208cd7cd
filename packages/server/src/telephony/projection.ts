import { sql } from 'kysely';
import type { TelephonyCallEvent, TelephonyCallLinked } from '@holdfast/core';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

/**
 * One row per telephony call: when it was offered to the queue, answered or abandoned (epoch ms,
 * by the telephony's clock), the caller's line in digits, and the case it was tied to. A row depends
 * only on its own call's events (subject `telephony:<call id>`), which may arrive in any order; the
 * first time recorded for each event stands, and a call answered is never also abandoned.
 */
export interface TelephonyCallsTable {
  tenant: string;
  call_id: string;
  system_id: string | null;
  caller_line: string | null;
  offered_at: number | null;
  answered_at: number | null;
  abandoned_at: number | null;
  case_id: string | null;
  linked_by: string | null;
}

export type TelephonyTables = { telephony_calls: TelephonyCallsTable };

export function telephonyDb(db: Db | Tx) {
  return db.withTables<TelephonyTables>();
}

const COLUMN = { offered: 'offered_at', answered: 'answered_at', abandoned: 'abandoned_at' } as const;

const folds = foldsTypes('telephony.');

export const telephonyProjection: Projection = {
  name: 'telephony',
  version: 1,
  tables: ['telephony_calls'],
  folds,
  async create(trx) {
    await sql`create table telephony_calls (
      tenant text not null,
      call_id text not null,
      system_id text,
      caller_line text,
      offered_at bigint,
      answered_at bigint,
      abandoned_at bigint,
      case_id text,
      linked_by text,
      primary key (tenant, call_id)
    )`.execute(trx);
    await sql`create index telephony_calls_offered on telephony_calls (tenant, offered_at)`.execute(trx);
    await sql`create index telephony_calls_line on telephony_calls (tenant, caller_line, answered_at)`.execute(
      trx,
    );
    await sql`create index telephony_calls_case on telephony_calls (tenant, case_id)`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    if (e.type !== 'telephony.call_event' && e.type !== 'telephony.call_linked') return;
    const db = telephonyDb(trx);
    const callId = (e.payload as { callId: string }).callId;
    const row = await db
      .selectFrom('telephony_calls')
      .selectAll()
      .where('tenant', '=', e.tenant)
      .where('call_id', '=', callId)
      .executeTakeFirst();
    const current: TelephonyCallsTable = row ?? {
      tenant: e.tenant,
      call_id: callId,
      system_id: null,
      caller_line: null,
      offered_at: null,
      answered_at: null,
      abandoned_at: null,
      case_id: null,
      linked_by: null,
    };
    const next = { ...current };
    if (e.type === 'telephony.call_event') {
      const p = e.payload as TelephonyCallEvent;
      next.system_id ??= p.systemId;
      next.caller_line ??= p.callerLine;
      const column = COLUMN[p.event];
      // Answered and abandoned exclude each other: the first in ledger order stands.
      const ended =
        (p.event === 'answered' && current.abandoned_at !== null) ||
        (p.event === 'abandoned' && current.answered_at !== null);
      if (current[column] === null && !ended) next[column] = p.atMs;
    } else {
      const p = e.payload as TelephonyCallLinked;
      if (current.case_id === null) {
        next.case_id = p.caseId;
        next.linked_by = p.by;
      }
    }
    if (!row) await db.insertInto('telephony_calls').values(next).execute();
    else
      await db
        .updateTable('telephony_calls')
        .set(next)
        .where('tenant', '=', e.tenant)
        .where('call_id', '=', callId)
        .execute();
  },
  async resetSubject(trx, tenant, subject) {
    if (!subject.startsWith('telephony:')) return;
    await telephonyDb(trx)
      .deleteFrom('telephony_calls')
      .where('tenant', '=', tenant)
      .where('call_id', '=', subject.slice('telephony:'.length))
      .execute();
  },
};
