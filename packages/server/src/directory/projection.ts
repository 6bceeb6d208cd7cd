import { sql } from 'kysely';
import {
  canonicalJson,
  parseHlc,
  type DirectoryCapacitySet,
  type DirectoryService,
  type DirectoryServiceDefinition,
  type DirectoryServiceRemoved,
  type DirectoryServiceSet,
} from '@holdfast/core';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

/**
 * One row per service of a provider's directory: its definition as last set (JSON), its version,
 * its capacity (JSON, with who set it and when, from the event's envelope), and whether it was
 * removed (the row stays, so a service added again continues its version numbers). A row depends
 * only on its own service's events (subject `directory-service:<id>`).
 */
export interface DirectoryServicesTable {
  tenant: string;
  service_id: string;
  version: number;
  definition: string;
  capacity: string | null;
  removed: number;
}

export type DirectoryTables = { directory_services: DirectoryServicesTable };

export function directoryDb(db: Db | Tx) {
  return db.withTables<DirectoryTables>();
}

export function serviceOf(row: Pick<DirectoryServicesTable, 'definition' | 'capacity'>): DirectoryService {
  const definition = JSON.parse(row.definition) as DirectoryServiceDefinition;
  return {
    ...definition,
    capacity: row.capacity ? (JSON.parse(row.capacity) as DirectoryService['capacity']) : null,
  };
}

const folds = foldsTypes('directory.');

export const directoryProjection: Projection = {
  name: 'directory',
  version: 2,
  tables: ['directory_services'],
  folds,
  async create(trx) {
    await sql`create table directory_services (
      tenant text not null,
      service_id text not null,
      version integer not null,
      definition text not null,
      capacity text,
      removed integer not null default 0,
      primary key (tenant, service_id)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = directoryDb(trx);
    const serviceId =
      e.type === 'directory.service_set'
        ? (e.payload as DirectoryServiceSet).service.serviceId
        : (e.payload as { serviceId: string }).serviceId;
    const row = await db
      .selectFrom('directory_services')
      .selectAll()
      .where('tenant', '=', e.tenant)
      .where('service_id', '=', serviceId)
      .executeTakeFirst();
    if (e.type === 'directory.service_set') {
      const p = e.payload as DirectoryServiceSet;
      // Canonical JSON: the same text whether the payload comes from an append or a refold of the
      // stored event (the start-up integrity check compares them).
      const values = { version: p.version, definition: canonicalJson(p.service), removed: 0 };
      if (row)
        await db
          .updateTable('directory_services')
          .set(values)
          .where('tenant', '=', e.tenant)
          .where('service_id', '=', serviceId)
          .execute();
      else
        await db
          .insertInto('directory_services')
          .values({ tenant: e.tenant, service_id: serviceId, capacity: null, ...values })
          .execute();
      return;
    }
    if (!row) return;
    if (e.type === 'directory.service_removed') {
      void (e.payload as DirectoryServiceRemoved);
      await db
        .updateTable('directory_services')
        .set({ removed: 1 })
        .where('tenant', '=', e.tenant)
        .where('service_id', '=', serviceId)
        .execute();
    } else if (e.type === 'directory.capacity_set') {
      const p = e.payload as DirectoryCapacitySet;
      const capacity: NonNullable<DirectoryService['capacity']> = {
        status: p.status,
        setAtMs: parseHlc(e.hlc).wallMs,
        setBy: e.actor,
        ...(p.note ? { note: p.note } : {}),
      };
      await db
        .updateTable('directory_services')
        .set({ capacity: canonicalJson(capacity) })
        .where('tenant', '=', e.tenant)
        .where('service_id', '=', serviceId)
        .execute();
    }
  },
  async resetSubject(trx, tenant, subject) {
    if (!subject.startsWith('directory-service:')) return;
    await directoryDb(trx)
      .deleteFrom('directory_services')
      .where('tenant', '=', tenant)
      .where('service_id', '=', subject.slice('directory-service:'.length))
      .execute();
  },
};
