import { canonicalJson } from '@holdfast/core';
import { sql } from 'kysely';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, StoreDialect, Tx } from '../store/store.ts';
import type {
  AllocationDecided,
  VehiclePositionReported,
  VehicleRegistered,
  VehicleStatusChanged,
  VisitAllocated,
  VisitOutcomeRecorded,
  VisitReallocated,
  VisitRequested,
} from './events.ts';

/**
 * Cars, their last positions, visits, every allocation (one row per allocation event: a set, so
 * which allocations collide is worked out from the rows alike on every node) and the decisions on
 * double allocations. Each row depends only on its own subject's events.
 */
export interface DispatchVehiclesTable {
  tenant: string;
  vehicle_id: string;
  /** The `vehicle.registered` payload, JSON. */
  registered: string;
  retired: number;
  status: string;
  status_visit_id: string | null;
  status_at_ms: number;
}

export interface DispatchPositionsTable {
  tenant: string;
  vehicle_id: string;
  lat: number;
  lon: number;
  accuracy_m: number;
  at_ms: number;
}

export interface DispatchVisitsTable {
  tenant: string;
  visit_id: string;
  case_id: string;
  site_id: string;
  /** The `visit.requested` payload, JSON. */
  requested: string;
  deadline_ms: number;
  priority: number;
  /** open, done (outcome recorded) or cancelled. */
  state: string;
  /** {outcome, note, vehicleId, byUserId, atMs} once recorded, or {reason, atMs} once cancelled, JSON. */
  ended: string | null;
  requested_hlc: string;
}

export interface DispatchAllocationsTable {
  tenant: string;
  allocation_id: string;
  event_id: string;
  hlc: string;
  node: string;
  seq: number;
  visit_id: string;
  vehicle_id: string;
  from_vehicle_id: string | null;
  visit_based_on: string | null;
  vehicle_based_on: string | null;
  by_user_id: string;
  reason: string | null;
  at_ms: number;
}

export interface DispatchDecisionsTable {
  tenant: string;
  item_id: string;
  keep_allocation_id: string;
  reason: string;
  actor: string;
  event_id: string;
  hlc: string;
}

export type DispatchTables = {
  dispatch_vehicles: DispatchVehiclesTable;
  dispatch_positions: DispatchPositionsTable;
  dispatch_visits: DispatchVisitsTable;
  dispatch_allocations: DispatchAllocationsTable;
  dispatch_decisions: DispatchDecisionsTable;
};

export function dispatchDb(db: Db | Tx) {
  return db.withTables<DispatchTables>();
}

const folds = foldsTypes('vehicle.', 'visit.');

export const dispatchProjection: Projection = {
  name: 'dispatch',
  version: 1,
  tables: [
    'dispatch_vehicles',
    'dispatch_positions',
    'dispatch_visits',
    'dispatch_allocations',
    'dispatch_decisions',
  ],
  folds,
  async create(trx, dialect: StoreDialect) {
    const real = dialect === 'sqlite' ? sql`real` : sql`double precision`;
    await sql`create table dispatch_vehicles (
      tenant text not null,
      vehicle_id text not null,
      registered text not null,
      retired integer not null,
      status text not null,
      status_visit_id text,
      status_at_ms bigint not null,
      primary key (tenant, vehicle_id)
    )`.execute(trx);
    await sql`create table dispatch_positions (
      tenant text not null,
      vehicle_id text not null,
      lat ${real} not null,
      lon ${real} not null,
      accuracy_m ${real} not null,
      at_ms bigint not null,
      primary key (tenant, vehicle_id)
    )`.execute(trx);
    await sql`create table dispatch_visits (
      tenant text not null,
      visit_id text not null,
      case_id text not null,
      site_id text not null,
      requested text not null,
      deadline_ms bigint not null,
      priority integer not null,
      state text not null,
      ended text,
      requested_hlc text not null,
      primary key (tenant, visit_id)
    )`.execute(trx);
    await sql`create index dispatch_visits_state on dispatch_visits (tenant, state, deadline_ms)`.execute(
      trx,
    );
    await sql`create index dispatch_visits_case on dispatch_visits (tenant, case_id)`.execute(trx);
    await sql`create table dispatch_allocations (
      tenant text not null,
      allocation_id text not null,
      event_id text not null,
      hlc text not null,
      node text not null,
      seq bigint not null,
      visit_id text not null,
      vehicle_id text not null,
      from_vehicle_id text,
      visit_based_on text,
      vehicle_based_on text,
      by_user_id text not null,
      reason text,
      at_ms bigint not null,
      primary key (tenant, allocation_id)
    )`.execute(trx);
    await sql`create index dispatch_allocations_visit on dispatch_allocations (tenant, visit_id)`.execute(
      trx,
    );
    await sql`create index dispatch_allocations_vehicle on dispatch_allocations (tenant, vehicle_id, hlc)`.execute(
      trx,
    );
    await sql`create table dispatch_decisions (
      tenant text not null,
      item_id text not null,
      keep_allocation_id text not null,
      reason text not null,
      actor text not null,
      event_id text not null,
      hlc text not null,
      primary key (tenant, item_id)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = dispatchDb(trx);
    switch (e.type) {
      case 'vehicle.registered': {
        const p = e.payload as VehicleRegistered;
        await db
          .insertInto('dispatch_vehicles')
          .values({
            tenant: e.tenant,
            vehicle_id: p.vehicleId,
            registered: canonicalJson(p),
            retired: 0,
            // A new car waits at its base until its crew says otherwise.
            status: 'back_at_base',
            status_visit_id: null,
            status_at_ms: 0,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
        return;
      }
      case 'vehicle.retired':
        await db
          .updateTable('dispatch_vehicles')
          .set({ retired: 1 })
          .where('tenant', '=', e.tenant)
          .where('vehicle_id', '=', (e.payload as { vehicleId: string }).vehicleId)
          .execute();
        return;
      case 'vehicle.status_changed': {
        // Applied in ledger order within the car's subject: the last status in that order stands.
        const p = e.payload as VehicleStatusChanged;
        await db
          .updateTable('dispatch_vehicles')
          .set({ status: p.status, status_visit_id: p.visitId, status_at_ms: p.atMs })
          .where('tenant', '=', e.tenant)
          .where('vehicle_id', '=', p.vehicleId)
          .execute();
        return;
      }
      case 'vehicle.position_reported': {
        const p = e.payload as VehiclePositionReported;
        const row = { lat: p.lat, lon: p.lon, accuracy_m: p.accuracyM, at_ms: p.atMs };
        const current = await db
          .selectFrom('dispatch_positions')
          .select('at_ms')
          .where('tenant', '=', e.tenant)
          .where('vehicle_id', '=', p.vehicleId)
          .executeTakeFirst();
        if (!current)
          await db
            .insertInto('dispatch_positions')
            .values({ tenant: e.tenant, vehicle_id: p.vehicleId, ...row })
            .execute();
        // The newest report by the phone's time stands, whatever order reports arrive in.
        else if (Number(current.at_ms) < p.atMs)
          await db
            .updateTable('dispatch_positions')
            .set(row)
            .where('tenant', '=', e.tenant)
            .where('vehicle_id', '=', p.vehicleId)
            .execute();
        return;
      }
      case 'visit.requested': {
        const p = e.payload as VisitRequested;
        await db
          .insertInto('dispatch_visits')
          .values({
            tenant: e.tenant,
            visit_id: p.visitId,
            case_id: p.caseId,
            site_id: p.siteId,
            requested: canonicalJson(p),
            deadline_ms: p.deadlineMs,
            priority: p.priority,
            state: 'open',
            ended: null,
            requested_hlc: e.hlc,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
        return;
      }
      case 'visit.allocated':
      case 'visit.reallocated': {
        const p = e.payload as VisitAllocated & Partial<Pick<VisitReallocated, 'fromVehicleId' | 'reason'>>;
        await db
          .insertInto('dispatch_allocations')
          .values({
            tenant: e.tenant,
            allocation_id: p.allocationId,
            event_id: e.id,
            hlc: e.hlc,
            node: e.node,
            seq: e.seq,
            visit_id: p.visitId,
            vehicle_id: p.vehicleId,
            from_vehicle_id: p.fromVehicleId ?? null,
            visit_based_on: p.visitBasedOn,
            vehicle_based_on: p.vehicleBasedOn,
            by_user_id: p.byUserId,
            reason: p.reason ?? null,
            at_ms: p.atMs,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
        return;
      }
      case 'visit.outcome_recorded':
      case 'visit.cancelled': {
        const p = e.payload as VisitOutcomeRecorded | { visitId: string; reason: string; atMs: number };
        // The first end in ledger order stands (an outcome and a cancellation on two nodes apart).
        await db
          .updateTable('dispatch_visits')
          .set({
            state: e.type === 'visit.cancelled' ? 'cancelled' : 'done',
            ended: canonicalJson({ ...p, actor: e.actor }),
          })
          .where('tenant', '=', e.tenant)
          .where('visit_id', '=', p.visitId)
          .where('state', '=', 'open')
          .execute();
        return;
      }
      case 'visit.allocation_decided': {
        const p = e.payload as AllocationDecided;
        await db
          .insertInto('dispatch_decisions')
          .values({
            tenant: e.tenant,
            item_id: p.itemId,
            keep_allocation_id: p.keepAllocationId,
            reason: p.reason,
            actor: e.actor,
            event_id: e.id,
            hlc: e.hlc,
          })
          .onConflict((oc) => oc.doNothing())
          .execute();
        return;
      }
      default:
        return;
    }
  },
  async resetSubject(trx, tenant, subject) {
    const db = dispatchDb(trx);
    const i = subject.indexOf(':');
    const kind = subject.slice(0, i);
    const id = subject.slice(i + 1);
    if (kind === 'vehicle')
      await db
        .deleteFrom('dispatch_vehicles')
        .where('tenant', '=', tenant)
        .where('vehicle_id', '=', id)
        .execute();
    else if (kind === 'vehicle-position')
      await db
        .deleteFrom('dispatch_positions')
        .where('tenant', '=', tenant)
        .where('vehicle_id', '=', id)
        .execute();
    else if (kind === 'visit') {
      await db
        .deleteFrom('dispatch_visits')
        .where('tenant', '=', tenant)
        .where('visit_id', '=', id)
        .execute();
      await db
        .deleteFrom('dispatch_allocations')
        .where('tenant', '=', tenant)
        .where('visit_id', '=', id)
        .execute();
    } else if (kind === 'dispatch-item')
      await db
        .deleteFrom('dispatch_decisions')
        .where('tenant', '=', tenant)
        .where('item_id', '=', id)
        .execute();
  },
};
