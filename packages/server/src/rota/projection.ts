import { sql } from 'kysely';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';
import type { MinimumSet, ShiftChanged, ShiftPlanned } from './events.ts';

/** Shifts and staffing minimums as rows; each row depends only on its own subject's events. */
export interface RotaShiftsTable {
  tenant: string;
  shift_id: string;
  user_id: string;
  user_name: string;
  role: string;
  location_kind: string;
  /** '' for the CAS (one per provider), so the column can be indexed and compared on both stores. */
  location_id: string;
  start_ms: number;
  end_ms: number;
  cancelled: number;
}

export interface RotaMinimumsTable {
  tenant: string;
  minimum_id: string;
  role: string;
  location_kind: string;
  location_id: string;
  minimum: number;
  from_local: string | null;
  to_local: string | null;
}

export type RotaTables = { rota_shifts: RotaShiftsTable; rota_minimums: RotaMinimumsTable };

export function rotaDb(db: Db | Tx) {
  return db.withTables<RotaTables>();
}

const folds = foldsTypes('rota.');

export const rotaProjection: Projection = {
  name: 'rota',
  version: 1,
  tables: ['rota_shifts', 'rota_minimums'],
  folds,
  async create(trx) {
    await sql`create table rota_shifts (
      tenant text not null,
      shift_id text not null,
      user_id text not null,
      user_name text not null,
      role text not null,
      location_kind text not null,
      location_id text not null,
      start_ms bigint not null,
      end_ms bigint not null,
      cancelled integer not null,
      primary key (tenant, shift_id)
    )`.execute(trx);
    await sql`create index rota_shifts_time on rota_shifts (tenant, end_ms, start_ms)`.execute(trx);
    await sql`create index rota_shifts_user on rota_shifts (tenant, user_id, end_ms)`.execute(trx);
    await sql`create table rota_minimums (
      tenant text not null,
      minimum_id text not null,
      role text not null,
      location_kind text not null,
      location_id text not null,
      minimum integer not null,
      from_local text,
      to_local text,
      primary key (tenant, minimum_id)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = rotaDb(trx);
    if (e.type === 'rota.shift_planned' || e.type === 'rota.shift_changed') {
      const p = e.payload as ShiftPlanned | ShiftChanged;
      const row = {
        user_id: p.userId,
        user_name: p.userName,
        role: p.role,
        location_kind: p.location.kind,
        location_id: p.location.id ?? '',
        start_ms: p.startMs,
        end_ms: p.endMs,
      };
      await db
        .insertInto('rota_shifts')
        .values({ tenant: e.tenant, shift_id: p.shiftId, ...row, cancelled: 0 })
        .onConflict((oc) => oc.columns(['tenant', 'shift_id']).doUpdateSet(row))
        .execute();
    } else if (e.type === 'rota.shift_cancelled') {
      const p = e.payload as { shiftId: string };
      await db
        .updateTable('rota_shifts')
        .set({ cancelled: 1 })
        .where('tenant', '=', e.tenant)
        .where('shift_id', '=', p.shiftId)
        .execute();
    } else if (e.type === 'rota.minimum_set') {
      const p = e.payload as MinimumSet;
      const row = {
        role: p.role,
        location_kind: p.location.kind,
        location_id: p.location.id ?? '',
        minimum: p.minimum,
        from_local: p.fromLocal,
        to_local: p.toLocal,
      };
      await db
        .insertInto('rota_minimums')
        .values({ tenant: e.tenant, minimum_id: p.minimumId, ...row })
        .onConflict((oc) => oc.columns(['tenant', 'minimum_id']).doUpdateSet(row))
        .execute();
    }
  },
  async resetSubject(trx, tenant, subject) {
    const db = rotaDb(trx);
    const [kind, id] = subject.split(':') as [string, string];
    if (kind === 'shift')
      await db.deleteFrom('rota_shifts').where('tenant', '=', tenant).where('shift_id', '=', id).execute();
    else if (kind === 'rota-minimum')
      await db
        .deleteFrom('rota_minimums')
        .where('tenant', '=', tenant)
        .where('minimum_id', '=', id)
        .execute();
  },
};
