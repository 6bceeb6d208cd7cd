import { ENDPOINT_ID, PRESCRIPTION_CHECKS, defineEventType } from '@holdfast/core';
import { z } from 'zod';

/**
 * Emergency prescribing (C9). Allergies and current medication are facts about the patient, each
 * its own subject (`allergy:<id>`, `medication:<id>`) so its row depends only on its own events,
 * with who said so (the caller, the record, a clinician) and when. A prescription is issued from a
 * consultation with the checks the server ran and the overrides given; sent, its message is a
 * `message.queued` (kind `prescription`) in the same commit; it may be cancelled (a cancellation
 * message when it had been sent), printed (the paper route) or dispensed (the pharmacy says so).
 */
const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const uuid = z.string().uuid();
const words = (max: number) => z.string().trim().min(1).max(max);

export const ALLERGY_SOURCES = ['caller', 'record', 'clinician'] as const;
const said = {
  source: z.enum(ALLERGY_SOURCES),
  /** Who said so, in words ("the patient's mother", "GP summary record"). */
  reportedBy: words(200),
  atMs: ms,
};

export const allergyRecorded = defineEventType({
  type: 'patient.allergy_recorded',
  v: 1,
  description: 'An allergy was recorded on the patient, with who said so and when.',
  schema: z.strictObject({
    allergyId: uuid,
    patientId: uuid,
    allergen: words(200),
    allergyClass: words(60).nullable(),
    reaction: words(500).nullable(),
    ...said,
  }),
  subjectOf: (p) => `allergy:${p.allergyId}`,
});

export const allergyRemoved = defineEventType({
  type: 'patient.allergy_removed',
  v: 1,
  description: 'A recorded allergy was removed (recorded in error, or disproved), with the reason.',
  schema: z.strictObject({ allergyId: uuid, patientId: uuid, reason: words(2000), atMs: ms }),
  subjectOf: (p) => `allergy:${p.allergyId}`,
});

export const medicationRecorded = defineEventType({
  type: 'patient.medication_recorded',
  v: 1,
  description: 'A medicine the patient takes now was recorded, with who said so and when.',
  schema: z.strictObject({
    medicationId: uuid,
    patientId: uuid,
    name: words(200),
    /** The formulary code when it is a formulary medicine. */
    code: z
      .string()
      .regex(/^\d{6,18}$/)
      .nullable(),
    dose: words(200).nullable(),
    ...said,
  }),
  subjectOf: (p) => `medication:${p.medicationId}`,
});

export const medicationStopped = defineEventType({
  type: 'patient.medication_stopped',
  v: 1,
  description: 'A recorded current medicine was stopped (or recorded in error), with the reason.',
  schema: z.strictObject({ medicationId: uuid, patientId: uuid, reason: words(2000), atMs: ms }),
  subjectOf: (p) => `medication:${p.medicationId}`,
});

export const PRESCRIPTION_ROUTES = ['message', 'paper'] as const;

const checkResult = z.strictObject({
  check: z.enum(PRESCRIPTION_CHECKS),
  outcome: z.enum(['pass', 'warning', 'hard_stop']),
  message: words(1000),
});

export const prescriptionIssued = defineEventType({
  type: 'prescription.issued',
  v: 1,
  description:
    'A prescriber issued a prescription from a consultation, with the checks the server ran and the overrides given; sent to the pharmacy through the outbox, or for the paper route.',
  schema: z.strictObject({
    prescriptionId: uuid,
    caseId: uuid,
    patientId: uuid,
    shortFormId: z.string().regex(/^[0-9A-F]{6}-[0-9A-Z]{6}-[0-9A-F]{5}[0-9A-Z+]$/),
    medicine: z.strictObject({
      code: z.string().regex(/^\d{6,18}$/),
      name: words(200),
      form: words(100),
      strength: words(100),
      route: words(60),
      unit: words(40),
      schedule: z.number().int().min(2).max(5).nullable(),
    }),
    draft: z.strictObject({
      doseMg: z.number().min(0).max(1_000_000),
      frequencyPerDay: z.number().int().min(1).max(24),
      durationDays: z.number().int().min(1).max(366),
      quantity: z.number().min(0).max(100_000),
      quantityWords: words(200).nullable(),
      directions: words(1000),
    }),
    checks: z.array(checkResult).max(PRESCRIPTION_CHECKS.length),
    overrides: z.array(z.strictObject({ check: z.enum(PRESCRIPTION_CHECKS), reason: words(2000) })).max(20),
    pharmacy: z.strictObject({
      odsCode: z.string().trim().max(20),
      name: words(200),
      endpointId: z.string().regex(ENDPOINT_ID).nullable(),
    }),
    route: z.enum(PRESCRIPTION_ROUTES),
    messageId: uuid.nullable(),
    formulary: z.strictObject({ id: words(64), version: words(40) }),
    prescriberId: uuid,
    atMs: ms,
  }),
  subjectOf: (p) => `prescription:${p.prescriptionId}`,
});

export const prescriptionCancelled = defineEventType({
  type: 'prescription.cancelled',
  v: 1,
  description:
    'A prescription was cancelled before it was dispensed (a cancellation message to the pharmacy when it had been sent).',
  schema: z.strictObject({
    prescriptionId: uuid,
    caseId: uuid,
    reason: words(2000),
    cancelMessageId: uuid.nullable(),
    atMs: ms,
  }),
  subjectOf: (p) => `prescription:${p.prescriptionId}`,
});

export const prescriptionPrinted = defineEventType({
  type: 'prescription.printed',
  v: 1,
  description: 'A prescription that could not go by message was printed for the paper route.',
  schema: z.strictObject({ prescriptionId: uuid, caseId: uuid, reason: words(2000), atMs: ms }),
  subjectOf: (p) => `prescription:${p.prescriptionId}`,
});

export const prescriptionDispensed = defineEventType({
  type: 'prescription.dispensed',
  v: 1,
  description: 'The pharmacy says the prescription was dispensed (it can no longer be cancelled).',
  schema: z.strictObject({
    prescriptionId: uuid,
    caseId: uuid,
    endpointId: z.string().regex(ENDPOINT_ID),
    inboundMessageId: z.string().regex(/^[A-Za-z0-9\-.]{1,64}$/),
    atMs: ms,
  }),
  subjectOf: (p) => `prescription:${p.prescriptionId}`,
});

export const PRESCRIBING_EVENT_TYPES = [
  allergyRecorded,
  allergyRemoved,
  medicationRecorded,
  medicationStopped,
  prescriptionIssued,
  prescriptionCancelled,
  prescriptionPrinted,
  prescriptionDispensed,
];

export type AllergyRecorded = z.infer<typeof allergyRecorded.schema>;
export type MedicationRecorded = z.infer<typeof medicationRecorded.schema>;
export type PrescriptionIssued = z.infer<typeof prescriptionIssued.schema>;
export type PrescriptionCancelled = z.infer<typeof prescriptionCancelled.schema>;
