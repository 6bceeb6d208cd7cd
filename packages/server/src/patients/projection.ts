import { sql } from 'kysely';
import type { PatientRecord } from '@holdfast/core';
import type { Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

export interface PatientsTable {
  tenant: string;
  patient_id: string;
  home_site_id: string;
  nhs_number: string | null;
  family_name_folded: string;
  date_of_birth: string;
  /** The whole record as JSON: field-level rules decide per role what leaves the service. */
  record: string;
}

export type PatientTables = { patients: PatientsTable };

export function patientsDb(db: Db | Tx) {
  return db.withTables<PatientTables>();
}

/** Case- and accent-insensitive form for name search. */
export function foldName(name: string): string {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .replace(/[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '')
    .toLowerCase()
    .trim();
}

export const patientsProjection: Projection = {
  name: 'patients',
  version: 1,
  tables: ['patients'],
  async create(trx) {
    await sql`create table patients (
      tenant text not null,
      patient_id text not null,
      home_site_id text not null,
      nhs_number text,
      family_name_folded text not null,
      date_of_birth text not null,
      record text not null,
      primary key (tenant, patient_id)
    )`.execute(trx);
    await sql`create index patients_nhs on patients (tenant, nhs_number)`.execute(trx);
    await sql`create index patients_name on patients (tenant, family_name_folded, date_of_birth)`.execute(
      trx,
    );
  },
  async apply(trx, e) {
    if (e.type !== 'patient.registered') return;
    const p = e.payload as { patientId: string; homeSiteId: string; record: PatientRecord };
    await patientsDb(trx)
      .insertInto('patients')
      .values({
        tenant: e.tenant,
        patient_id: p.patientId,
        home_site_id: p.homeSiteId,
        nhs_number: p.record.nhsNumber ?? null,
        family_name_folded: foldName(p.record.familyName),
        date_of_birth: p.record.dateOfBirth,
        record: JSON.stringify(p.record),
      })
      .execute();
  },
  async resetSubject(trx, tenant, subject) {
    if (!subject.startsWith('patient:')) return;
    await patientsDb(trx)
      .deleteFrom('patients')
      .where('tenant', '=', tenant)
      .where('patient_id', '=', subject.slice(8))
      .execute();
  },
};
