import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { normaliseNhsNumber } from './nhs-number.ts';

// The matching helpers are part of the patients module's public surface (the core's index exports
// this file).
export * from './matching.ts';

export const nhsNumberSchema = z.string().transform((value, ctx) => {
  const r = normaliseNhsNumber(value);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.message });
    return z.NEVER;
  }
  return r.value;
});

export const SPECIAL_NOTE_KINDS = ['end_of_life', 'dnacpr', 'safeguarding', 'care_plan', 'other'] as const;
export type SpecialNoteKind = (typeof SPECIAL_NOTE_KINDS)[number];

/** FHIR R4 administrative gender (AdministrativeGender), kept apart from sex. */
export const GENDERS = ['female', 'male', 'other', 'unknown'] as const;

/**
 * An organisation's code in the NHS Organisation Data Service (ODS): GP practices such as `A81001`,
 * pharmacies such as `FA123`. Upper-case letters and digits, 3 to 6 of them.
 */
export const ODS_CODE = /^[A-Z0-9]{3,6}$/;

const text = (max: number) => z.string().trim().max(max);

const organisation = z.strictObject({
  odsCode: z
    .string()
    .regex(ODS_CODE, 'must be an ODS organisation code: 3 to 6 capital letters and digits, e.g. A81001'),
  name: text(200).optional(),
});

/** The record as first defined (patient.registered v1): frozen, so events stored under it stay readable. */
const patientRecordV1 = z.strictObject({
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

/**
 * The demographic and protected parts of a patient record. `phone`, `address` and `postcode` are the
 * main ones (call-back number, home address); further numbers and addresses follow in `otherPhones`
 * and `otherAddresses`.
 */
export const patientRecordSchema = patientRecordV1.extend({
  /** Administrative gender, which may differ from `sex`. */
  gender: z.enum(GENDERS).optional(),
  otherPhones: z
    .array(
      z.strictObject({
        use: z.enum(['home', 'mobile', 'work', 'other']),
        number: text(30).min(1),
      }),
    )
    .max(5)
    .optional(),
  otherAddresses: z
    .array(
      z.strictObject({
        use: z.enum(['temporary', 'work', 'other']),
        text: text(300).min(1),
        postcode: text(10).optional(),
      }),
    )
    .max(5)
    .optional(),
  /** The GP practice the patient is registered with. */
  registeredPractice: organisation.optional(),
  /** The pharmacy the patient nominated for electronic prescriptions. */
  nominatedPharmacy: organisation.optional(),
});
export type PatientRecord = z.infer<typeof patientRecordSchema>;

/** v1: the record without gender, further phones and addresses, GP practice or pharmacy. */
export const patientRegisteredV1 = defineEventType({
  type: 'patient.registered',
  v: 1,
  schema: z.strictObject({
    patientId: z.string().uuid(),
    homeSiteId: z.string().uuid(),
    record: patientRecordV1,
  }),
  subjectOf: (p) => `patient:${p.patientId}`,
});

/**
 * v2 adds optional fields only, so every v1 payload reads as a v2 record. A new version rather than
 * a wider v1: a node still on v1 refuses a v2 event by its version instead of by a strange field.
 */
export const patientRegistered = defineEventType({
  type: 'patient.registered',
  v: 2,
  schema: z.strictObject({
    patientId: z.string().uuid(),
    homeSiteId: z.string().uuid(),
    record: patientRecordSchema,
  }),
  subjectOf: (p) => `patient:${p.patientId}`,
});

export const PATIENT_EVENT_TYPES = [patientRegisteredV1, patientRegistered];
