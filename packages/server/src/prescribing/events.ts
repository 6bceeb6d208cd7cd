import { defineEventType, PRESCRIPTION_CHECKS } from '@holdfast/core';
import { z } from 'zod';

/**
 * Allergies, current medication and prescriptions (C9) as ledger facts. (h18-web's thin stand-in of
 * CONTRACT-18's events; h18-server's fuller module replaces it.) Allergies and medication are on a
 * subject keyed by the patient; a prescription's facts on one keyed by its case, so the case's list
 * depends on its own events only. Sending is a `message.queued` (kind `prescription`) in the same commit.
 */
const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const uuid = z.string().uuid();
const words = z.string().trim().min(1).max(2000);
export const FACT_SOURCES = ['caller', 'record', 'clinician'] as const;

export const allergyRecorded = defineEventType({
  type: 'patient.allergy_recorded',
  v: 1,
  description: 'An allergy of the patient, with where it came from and who said so.',
  schema: z.strictObject({
    allergyId: uuid,
    patientId: uuid,
    allergen: z.string().trim().min(1).max(200),
    allergyClass: z.string().trim().min(1).max(60).nullable(),
    reaction: z.string().trim().min(1).max(500).nullable(),
    source: z.enum(FACT_SOURCES),
    reportedBy: z.string().trim().min(1).max(200),
    atMs: ms,
  }),
  subjectOf: (p) => `prescribing:${p.patientId}`,
});

export const allergyRemoved = defineEventType({
  type: 'patient.allergy_removed',
  v: 1,
  description: 'An allergy recorded in error was removed, with a reason.',
  schema: z.strictObject({ allergyId: uuid, patientId: uuid, reason: words, atMs: ms }),
  subjectOf: (p) => `prescribing:${p.patientId}`,
});

export const medicationRecorded = defineEventType({
  type: 'patient.medication_recorded',
  v: 1,
  description: 'A medicine the patient takes now, with where it came from and who said so.',
  schema: z.strictObject({
    medicationId: uuid,
    patientId: uuid,
    name: z.string().trim().min(1).max(200),
    code: z
      .string()
      .regex(/^\d{6,18}$/)
      .nullable(),
    dose: z.string().trim().min(1).max(200).nullable(),
    source: z.enum(FACT_SOURCES),
    reportedBy: z.string().trim().min(1).max(200),
    atMs: ms,
  }),
  subjectOf: (p) => `prescribing:${p.patientId}`,
});

export const medicationStopped = defineEventType({
  type: 'patient.medication_stopped',
  v: 1,
  description: 'A current medicine was stopped (or recorded in error), with a reason.',
  schema: z.strictObject({ medicationId: uuid, patientId: uuid, reason: words, atMs: ms }),
  subjectOf: (p) => `prescribing:${p.patientId}`,
});

const check = z.enum(PRESCRIPTION_CHECKS);

export const prescriptionIssued = defineEventType({
  type: 'prescription.issued',
  v: 1,
  description: 'A prescriber issued a prescription from a consultation, with the checks and any overrides.',
  schema: z.strictObject({
    prescriptionId: uuid,
    caseId: uuid,
    patientId: uuid,
    shortFormId: z.string().regex(/^[0-9A-F]{6}-[0-9A-Z]{6}-[0-9A-F]{5}[0-9A-Z+]$/),
    medicine: z.strictObject({
      code: z.string().regex(/^\d{6,18}$/),
      name: z.string().max(200),
      form: z.string().max(100),
      strength: z.string().max(100),
      route: z.string().max(60),
      schedule: z.number().int().min(2).max(5).nullable(),
    }),
    draft: z.strictObject({
      medicineCode: z.string(),
      doseMg: z.number(),
      frequencyPerDay: z.number(),
      durationDays: z.number(),
      quantity: z.number(),
      quantityWords: z.string().max(200).nullable(),
      directions: z.string().max(2000),
    }),
    checks: z.array(
      z.strictObject({
        check,
        outcome: z.enum(['pass', 'warning', 'hard_stop']),
        message: z.string().max(2000),
      }),
    ),
    overrides: z.array(z.strictObject({ check, reason: words })),
    pharmacy: z.strictObject({
      odsCode: z.string().max(20),
      name: z.string().max(200),
      endpointId: z.string().max(64).nullable(),
    }),
    route: z.enum(['message', 'paper']),
    messageId: uuid.nullable(),
    formulary: z.strictObject({ id: z.string().max(100), version: z.string().max(40) }),
    prescriberId: uuid,
    atMs: ms,
  }),
  subjectOf: (p) => `prescriptions:${p.caseId}`,
});

export const prescriptionCancelled = defineEventType({
  type: 'prescription.cancelled',
  v: 1,
  description: 'A prescription was cancelled before dispensing, with a reason.',
  schema: z.strictObject({
    prescriptionId: uuid,
    caseId: uuid,
    reason: words,
    cancelMessageId: uuid.nullable(),
    atMs: ms,
  }),
  subjectOf: (p) => `prescriptions:${p.caseId}`,
});

export const prescriptionPrinted = defineEventType({
  type: 'prescription.printed',
  v: 1,
  description: 'A prescription whose message could not go was printed on paper instead.',
  schema: z.strictObject({ prescriptionId: uuid, caseId: uuid, reason: words, atMs: ms }),
  subjectOf: (p) => `prescriptions:${p.caseId}`,
});

export const PRESCRIBING_EVENT_TYPES = [
  allergyRecorded,
  allergyRemoved,
  medicationRecorded,
  medicationStopped,
  prescriptionIssued,
  prescriptionCancelled,
  prescriptionPrinted,
];

export type PrescriptionIssued = z.infer<typeof prescriptionIssued.schema>;
export type AllergyRecorded = z.infer<typeof allergyRecorded.schema>;
export type MedicationRecorded = z.infer<typeof medicationRecorded.schema>;
