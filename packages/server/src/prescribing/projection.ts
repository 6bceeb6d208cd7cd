import { sql } from 'kysely';
import { foldsTypes, type Projection } from '../projections/projection.ts';
import type { Db, Tx } from '../store/store.ts';
import type { AllergyRecorded, MedicationRecorded, PrescriptionIssued } from './events.ts';

/**
 * Allergies, current medication and prescriptions as rows. Each row depends only on its own
 * subject's events; a prescription's message state is the outbox's, read beside the row.
 */
export interface AllergiesTable {
  tenant: string;
  allergy_id: string;
  patient_id: string;
  /** The `patient.allergy_recorded` payload, JSON. */
  recorded: string;
  recorded_by: string;
  /** {reason, atMs, actor} once removed, JSON. */
  removed: string | null;
}

export interface MedicationTable {
  tenant: string;
  medication_id: string;
  patient_id: string;
  recorded: string;
  recorded_by: string;
  stopped: string | null;
}

export interface PrescriptionsTable {
  tenant: string;
  prescription_id: string;
  case_id: string;
  patient_id: string;
  message_id: string | null;
  /** The `prescription.issued` payload, JSON. */
  issued: string;
  issued_hlc: string;
  /** JSON of the later facts, once each happened: {…payload, actor}. */
  cancelled: string | null;
  printed: string | null;
  dispensed: string | null;
}

export type PrescribingTables = {
  patient_allergies: AllergiesTable;
  patient_medication: MedicationTable;
  prescriptions: PrescriptionsTable;
};

export function prescribingDb(db: Db | Tx) {
  return db.withTables<PrescribingTables>();
}

const LATER: Record<string, 'cancelled' | 'printed' | 'dispensed'> = {
  'prescription.cancelled': 'cancelled',
  'prescription.printed': 'printed',
  'prescription.dispensed': 'dispensed',
};

const folds = foldsTypes('patient.', 'prescription.');

export const prescribingProjection: Projection = {
  name: 'prescribing',
  version: 1,
  tables: ['patient_allergies', 'patient_medication', 'prescriptions'],
  folds,
  async create(trx) {
    await sql`create table patient_allergies (
      tenant text not null,
      allergy_id text not null,
      patient_id text not null,
      recorded text not null,
      recorded_by text not null,
      removed text,
      primary key (tenant, allergy_id)
    )`.execute(trx);
    await sql`create index patient_allergies_patient on patient_allergies (tenant, patient_id)`.execute(trx);
    await sql`create table patient_medication (
      tenant text not null,
      medication_id text not null,
      patient_id text not null,
      recorded text not null,
      recorded_by text not null,
      stopped text,
      primary key (tenant, medication_id)
    )`.execute(trx);
    await sql`create index patient_medication_patient on patient_medication (tenant, patient_id)`.execute(
      trx,
    );
    await sql`create table prescriptions (
      tenant text not null,
      prescription_id text not null,
      case_id text not null,
      patient_id text not null,
      message_id text,
      issued text not null,
      issued_hlc text not null,
      cancelled text,
      printed text,
      dispensed text,
      primary key (tenant, prescription_id)
    )`.execute(trx);
    await sql`create index prescriptions_case on prescriptions (tenant, case_id)`.execute(trx);
    await sql`create index prescriptions_message on prescriptions (tenant, message_id)`.execute(trx);
  },
  async apply(trx, e) {
    if (!folds(e.type)) return;
    const db = prescribingDb(trx);
    if (e.type === 'patient.allergy_recorded') {
      const p = e.payload as AllergyRecorded;
      await db
        .insertInto('patient_allergies')
        .values({
          tenant: e.tenant,
          allergy_id: p.allergyId,
          patient_id: p.patientId,
          recorded: JSON.stringify(p),
          recorded_by: e.actor,
          removed: null,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    } else if (e.type === 'patient.allergy_removed') {
      const p = e.payload as { allergyId: string; reason: string; atMs: number };
      await db
        .updateTable('patient_allergies')
        .set({ removed: JSON.stringify({ reason: p.reason, atMs: p.atMs, actor: e.actor }) })
        .where('tenant', '=', e.tenant)
        .where('allergy_id', '=', p.allergyId)
        .where('removed', 'is', null)
        .execute();
    } else if (e.type === 'patient.medication_recorded') {
      const p = e.payload as MedicationRecorded;
      await db
        .insertInto('patient_medication')
        .values({
          tenant: e.tenant,
          medication_id: p.medicationId,
          patient_id: p.patientId,
          recorded: JSON.stringify(p),
          recorded_by: e.actor,
          stopped: null,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    } else if (e.type === 'patient.medication_stopped') {
      const p = e.payload as { medicationId: string; reason: string; atMs: number };
      await db
        .updateTable('patient_medication')
        .set({ stopped: JSON.stringify({ reason: p.reason, atMs: p.atMs, actor: e.actor }) })
        .where('tenant', '=', e.tenant)
        .where('medication_id', '=', p.medicationId)
        .where('stopped', 'is', null)
        .execute();
    } else if (e.type === 'prescription.issued') {
      const p = e.payload as PrescriptionIssued;
      await db
        .insertInto('prescriptions')
        .values({
          tenant: e.tenant,
          prescription_id: p.prescriptionId,
          case_id: p.caseId,
          patient_id: p.patientId,
          message_id: p.messageId,
          issued: JSON.stringify(p),
          issued_hlc: e.hlc,
          cancelled: null,
          printed: null,
          dispensed: null,
        })
        .onConflict((oc) => oc.doNothing())
        .execute();
    } else if (LATER[e.type]) {
      const column = LATER[e.type]!;
      const p = e.payload as { prescriptionId: string };
      // The first of each stands (two nodes may each have recorded one while apart).
      await db
        .updateTable('prescriptions')
        .set({ [column]: JSON.stringify({ ...p, actor: e.actor }) })
        .where('tenant', '=', e.tenant)
        .where('prescription_id', '=', p.prescriptionId)
        .where(column, 'is', null)
        .execute();
    }
  },
  async resetSubject(trx, tenant, subject) {
    const db = prescribingDb(trx);
    const [kind, id] = subject.split(':') as [string, string];
    if (kind === 'allergy')
      await db
        .deleteFrom('patient_allergies')
        .where('tenant', '=', tenant)
        .where('allergy_id', '=', id)
        .execute();
    else if (kind === 'medication')
      await db
        .deleteFrom('patient_medication')
        .where('tenant', '=', tenant)
        .where('medication_id', '=', id)
        .execute();
    else if (kind === 'prescription')
      await db
        .deleteFrom('prescriptions')
        .where('tenant', '=', tenant)
        .where('prescription_id', '=', id)
        .execute();
  },
};
