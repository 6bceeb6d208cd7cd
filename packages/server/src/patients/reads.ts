import { currentRecord, type PatientRecord } from '@holdfast/core';
import type { Tx } from '../store/store.ts';
import { patientsDb } from './projection.ts';

/**
 * What other modules may read of the patient index, each read a function over the caller's
 * transaction. Modules never query `patients` themselves (the architecture test enforces it); access
 * rules on what a reader may see are the caller's (these reads serve server-side checks and the
 * downtime pack, whose own rules apply).
 */

/** Whether the patient is in the provider's index, and whether their record says they have died. */
export async function patientOnFile(
  trx: Tx,
  tenant: string,
  patientId: string,
): Promise<{ deceased: boolean } | null> {
  const row = await patientsDb(trx)
    .selectFrom('patients')
    .select('record')
    .where('tenant', '=', tenant)
    .where('patient_id', '=', patientId)
    .executeTakeFirst();
  if (!row) return null;
  return { deceased: (JSON.parse(row.record) as { deceasedAt?: string }).deceasedAt !== undefined };
}

/** The current records (names with history resolved at `nowMs`) of `patientIds`, read 500 at a time. */
export async function currentRecordsOf(
  trx: Tx,
  tenant: string,
  patientIds: readonly string[],
  nowMs: number,
): Promise<Map<string, PatientRecord>> {
  const records = new Map<string, PatientRecord>();
  for (let i = 0; i < patientIds.length; i += 500) {
    const found = await patientsDb(trx)
      .selectFrom('patients')
      .select(['patient_id', 'record'])
      .where('tenant', '=', tenant)
      .where('patient_id', 'in', patientIds.slice(i, i + 500))
      .execute();
    for (const p of found)
      records.set(p.patient_id, currentRecord(JSON.parse(p.record) as PatientRecord, nowMs));
  }
  return records;
}
