import {
  canonicalJson,
  foldText,
  normalisePostcode,
  type PatientRecord,
  type RestrictedPart,
} from '@holdfast/core';
import { sql } from 'kysely';
import type { Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';

export interface PatientsTable {
  tenant: string;
  patient_id: string;
  home_site_id: string;
  nhs_number: string | null;
  /** `foldText` of the family name (accents, case, apostrophes and invisible characters folded). */
  family_name_folded: string;
  given_name_folded: string;
  date_of_birth: string;
  /** Every known postcode, compact (`normalisePostcode`), space-separated; main address first. */
  postcodes: string;
  /** The whole record as JSON: field-level rules decide per role what leaves the service. */
  record: string;
}

/**
 * The fields a restricted (R) or very restricted (V) record withholds (address, telephone, practice,
 * pharmacy, contacts), kept apart from `patients.record`: the general record, search results and the
 * downtime pack read `patients` only. Only `PatientService.readRestricted` (break-glass, with a
 * reason, audited) reads this table.
 */
export interface PatientRestrictedTable {
  tenant: string;
  patient_id: string;
  /** The withheld fields as JSON (canonical). */
  fields: string;
}

export type PatientTables = { patients: PatientsTable; patient_restricted: PatientRestrictedTable };

export function patientsDb(db: Db | Tx) {
  return db.withTables<PatientTables>();
}

/** Every postcode of a record (main address first), compact. */
export function postcodesOf(record: Pick<PatientRecord, 'postcode' | 'otherAddresses'>): string[] {
  const all = [record.postcode, ...(record.otherAddresses ?? []).map((a) => a.postcode)]
    .filter((p): p is string => p !== undefined)
    .map(normalisePostcode)
    .filter((p) => p !== '');
  return [...new Set(all)];
}

export const patientsProjection: Projection = {
  name: 'patients',
  // 2: folded given name and postcodes; search by date of birth (fuzzy name matching in the service).
  // 4: restricted records' withheld fields apart, in patient_restricted.
  version: 4,
  tables: ['patients', 'patient_restricted'],
  async create(trx) {
    await sql`create table patients (
      tenant text not null,
      patient_id text not null,
      home_site_id text not null,
      nhs_number text,
      family_name_folded text not null,
      given_name_folded text not null,
      date_of_birth text not null,
      postcodes text not null,
      record text not null,
      primary key (tenant, patient_id)
    )`.execute(trx);
    await sql`create index patients_nhs on patients (tenant, nhs_number)`.execute(trx);
    await sql`create index patients_dob on patients (tenant, date_of_birth)`.execute(trx);
    await sql`create table patient_restricted (
      tenant text not null,
      patient_id text not null,
      fields text not null,
      primary key (tenant, patient_id)
    )`.execute(trx);
  },
  async apply(trx, e) {
    if (e.type !== 'patient.registered') return;
    // v1 and v2 records are v3 records without the optional fields. A v3 event of a restricted
    // record carries the withheld fields apart, in `restricted`.
    const p = e.payload as {
      patientId: string;
      homeSiteId: string;
      record: PatientRecord;
      restricted?: RestrictedPart;
    };
    if (p.restricted)
      await patientsDb(trx)
        .insertInto('patient_restricted')
        .values({ tenant: e.tenant, patient_id: p.patientId, fields: canonicalJson(p.restricted) })
        .execute();
    await patientsDb(trx)
      .insertInto('patients')
      .values({
        tenant: e.tenant,
        patient_id: p.patientId,
        home_site_id: p.homeSiteId,
        nhs_number: p.record.nhsNumber ?? null,
        family_name_folded: foldText(p.record.familyName),
        given_name_folded: foldText(p.record.givenName),
        date_of_birth: p.record.dateOfBirth,
        postcodes: postcodesOf(p.record).join(' '),
        // Canonical: a local append hands the record over in schema key order, a rebuild or an import
        // in sorted order; the row must be the same either way (the projection check compares them).
        record: canonicalJson(p.record),
      })
      .execute();
  },
  async resetSubject(trx, tenant, subject) {
    if (!subject.startsWith('patient:')) return;
    await patientsDb(trx)
      .deleteFrom('patient_restricted')
      .where('tenant', '=', tenant)
      .where('patient_id', '=', subject.slice(8))
      .execute();
    await patientsDb(trx)
      .deleteFrom('patients')
      .where('tenant', '=', tenant)
      .where('patient_id', '=', subject.slice(8))
      .execute();
  },
};
