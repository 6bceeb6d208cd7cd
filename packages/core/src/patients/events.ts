import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { normaliseNhsNumber } from './nhs-number.ts';

export const nhsNumberSchema = z.string().transform((value, ctx) => {
  const r = normaliseNhsNumber(value);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.value;
});

export const SPECIAL_NOTE_KINDS = ['end_of_life', 'dnacpr', 'safeguarding', 'care_plan', 'other'] as const;

const text = (max: number) => z.string().trim().max(max);

/** The demographic and protected parts of a patient record (the clinical core extends this). */
export const patientRecordSchema = z.strictObject({
  nhsNumber: z
    .string()
    .regex(/^\d{10}$/)
    .optional(),
  givenName: text(100).min(1),
  familyName: text(100).min(1),
  dateOfBirth: z.iso.date(),
  sex: z.enum(['female', 'male', 'other', 'unknown']),
  phone: text(30).optional(),
  address: text(300).optional(),
  postcode: text(10).optional(),
  specialNotes: z
    .array(z.strictObject({ kind: z.enum(SPECIAL_NOTE_KINDS), text: text(2000).min(1) }))
    .max(20),
  clinicalNotes: text(10_000).optional(),
  accessInstructions: text(1000).optional(),
});
export type PatientRecord = z.infer<typeof patientRecordSchema>;

export const patientRegistered = defineEventType({
  type: 'patient.registered',
  v: 1,
  schema: z.strictObject({
    patientId: z.string().uuid(),
    homeSiteId: z.string().uuid(),
    record: patientRecordSchema,
  }),
  subjectOf: (p) => `patient:${p.patientId}`,
});

export const PATIENT_EVENT_TYPES = [patientRegistered];
