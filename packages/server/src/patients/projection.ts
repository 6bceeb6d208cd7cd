import {
  canonicalJson,
  foldText,
  normalisePostcode,
  type PatientChanges,
  type PatientRecord,
  type RestrictedPart,
} from '@holdfast/core';
import { sql } from 'kysely';
import { foldsTypes, type Projection } from '../projections/projection.ts';
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
  /** 1 at registration, one more for each change or note: an edit names the version it was made on. */
  version: number;
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

const folds = foldsTypes('patient.');

export const patientsProjection: Projection = {
  name: 'patients',
  // 2: folded given name and postcodes; search by date of birth (fuzzy name matching in the service).
  // 4: restricted records' withheld fields apart, in patient_restricted.
  // 5: edits and special notes after registration (patient.details_changed, special_note_added) and
  //    the record's version.
  version: 5,
  tables: ['patients', 'patient_restricted'],
  folds,
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
      version integer not null,
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
    if (!folds(e.type)) return;
    if (e.type === 'patient.details_changed') return applyChanges(trx, e.tenant, e.payload as DetailsChanged);
    if (e.type === 'patient.special_note_added') return addNote(trx, e.tenant, e.payload as NoteAdded);
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
        version: 1,
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

type DetailsChanged = { patientId: string; changes: PatientChanges; restricted?: RestrictedPart };
type NoteAdded = { patientId: string; note: PatientRecord['specialNotes'][number] };

async function currentRow(trx: Tx, tenant: string, patientId: string) {
  return patientsDb(trx)
    .selectFrom('patients')
    .select(['record', 'version'])
    .where('tenant', '=', tenant)
    .where('patient_id', '=', patientId)
    .executeTakeFirst();
}

/**
 * Folds an edit into the record. A new address or practice replaces the dated history the national
 * record came with (`addresses`, `practices`): otherwise the history would still decide the current
 * one when the record is read. The history stays in the ledger (the record's history view).
 */
function withChanges<R extends Record<string, unknown>>(record: R, changes: Record<string, unknown>): R {
  const out: Record<string, unknown> = { ...record, ...changes };
  if (changes.address !== undefined || changes.postcode !== undefined) delete out.addresses;
  if (changes.registeredPractice !== undefined) delete out.practices;
  return out as R;
}

async function applyChanges(trx: Tx, tenant: string, p: DetailsChanged): Promise<void> {
  const row = await currentRow(trx, tenant, p.patientId);
  if (!row) return; // not registered on this node yet: refolded when the registration arrives
  const record = withChanges(JSON.parse(row.record) as Record<string, unknown>, p.changes);
  if (p.restricted) {
    const part = await patientsDb(trx)
      .selectFrom('patient_restricted')
      .select('fields')
      .where('tenant', '=', tenant)
      .where('patient_id', '=', p.patientId)
      .executeTakeFirst();
    const fields = canonicalJson(
      withChanges(part ? (JSON.parse(part.fields) as Record<string, unknown>) : {}, p.restricted),
    );
    if (part)
      await patientsDb(trx)
        .updateTable('patient_restricted')
        .set({ fields })
        .where('tenant', '=', tenant)
        .where('patient_id', '=', p.patientId)
        .execute();
    else
      await patientsDb(trx)
        .insertInto('patient_restricted')
        .values({ tenant, patient_id: p.patientId, fields })
        .execute();
  }
  await patientsDb(trx)
    .updateTable('patients')
    .set({
      record: canonicalJson(record),
      postcodes: postcodesOf(record as PatientRecord).join(' '),
      version: Number(row.version) + 1,
    })
    .where('tenant', '=', tenant)
    .where('patient_id', '=', p.patientId)
    .execute();
}

async function addNote(trx: Tx, tenant: string, p: NoteAdded): Promise<void> {
  const row = await currentRow(trx, tenant, p.patientId);
  if (!row) return;
  const record = JSON.parse(row.record) as PatientRecord;
  record.specialNotes = [...record.specialNotes, p.note];
  await patientsDb(trx)
    .updateTable('patients')
    .set({ record: canonicalJson(record), version: Number(row.version) + 1 })
    .where('tenant', '=', tenant)
    .where('patient_id', '=', p.patientId)
    .execute();
}
