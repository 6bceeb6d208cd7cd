import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { normaliseNhsNumber } from './nhs-number.ts';

// The matching helpers are part of the patients module's public surface (the core's index exports
// this file).
export * from './matching.ts';
export * from './current.ts';

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

/** The record of patient.registered v2: frozen, so events stored under it stay readable. */
const patientRecordV2 = patientRecordV1.extend({
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

/**
 * PDS security labels (meta.security, v3-Confidentiality): `U` unrestricted, `R` restricted (for
 * example someone at risk of harm), `V` very restricted. For R and V the national service withholds
 * where the patient can be found: address, telephone, registered practice, nominated pharmacy.
 */
export const CONFIDENTIALITY_CODES = ['U', 'R', 'V'] as const;
export type Confidentiality = (typeof CONFIDENTIALITY_CODES)[number];

/**
 * NHS number verification status (UK Core NHSNumberVerificationStatus, codes 01 to 08): whether the
 * number was traced and verified against the national service. `01` is "number present and verified".
 */
export const NHS_NUMBER_VERIFICATION = {
  '01': 'Number present and verified',
  '02': 'Number present but not traced',
  '03': 'Trace required',
  '04': 'Trace attempted - No match or multiple match found',
  '05': 'Trace needs to be resolved - (NHS number or patient detail conflict)',
  '06': 'Trace in progress',
  '07': 'Number not present and trace not required',
  '08': 'Trace postponed (baby under six weeks old)',
} as const;
export type NhsNumberVerificationCode = keyof typeof NHS_NUMBER_VERIFICATION;

/** A FHIR date or dateTime (`2024-03-01`, `2024-03-01T10:00:00Z`). */
const fhirDateTime = z.union([z.iso.date(), z.iso.datetime({ offset: true })]);

/** When a name, address or registration applied (FHIR Period); no `end` means it still applies. */
const period = {
  start: fhirDateTime.optional(),
  end: fhirDateTime.optional(),
};

/**
 * The demographic and protected parts of a patient record. `phone`, `address` and `postcode` are the
 * main ones (call-back number, home address); further numbers and addresses follow in `otherPhones`
 * and `otherAddresses`.
 *
 * v3 (all optional): the PDS security label, the date of death, the names, addresses and practice
 * registrations with their periods (history: which apply is decided when the record is read, by
 * that day's clock), interpreter need, emergency contacts, the NHS number's verification status and
 * when the national record was last confirmed.
 */
export const patientRecordSchema = patientRecordV2.extend({
  confidentiality: z.enum(CONFIDENTIALITY_CODES).optional(),
  /** FHIR deceasedDateTime (a date, or a date and time). */
  deceasedAt: fhirDateTime.optional(),
  names: z
    .array(
      z.strictObject({
        use: z.enum(['official', 'usual', 'nickname', 'temp', 'old', 'maiden', 'other']).optional(),
        givenName: text(100).min(1),
        familyName: text(100).min(1),
        ...period,
      }),
    )
    .max(10)
    .optional(),
  addresses: z
    .array(
      z.strictObject({
        use: z.enum(['home', 'temporary', 'work', 'other']),
        text: text(300).min(1),
        postcode: text(10).optional(),
        ...period,
      }),
    )
    .max(10)
    .optional(),
  practices: z.array(organisation.extend(period)).max(10).optional(),
  interpreter: z.strictObject({ required: z.boolean(), language: text(100).min(1).optional() }).optional(),
  emergencyContacts: z
    .array(
      z.strictObject({
        relationship: text(100).optional(),
        name: text(200).optional(),
        phone: text(30).optional(),
      }),
    )
    .max(5)
    .optional(),
  nhsNumberVerification: z
    .strictObject({
      code: z.enum(Object.keys(NHS_NUMBER_VERIFICATION) as [NhsNumberVerificationCode]),
    })
    .optional(),
  /** When the national record was last confirmed (FHIR meta.lastUpdated, else the import time). */
  lastConfirmedAt: z.iso.datetime({ offset: true }).optional(),
});
export type PatientRecord = z.infer<typeof patientRecordSchema>;

/**
 * The fields a restricted (R) or very restricted (V) record keeps out of the general record: where
 * the patient can be found or reached, and through whom.
 */
export const RESTRICTED_FIELDS = [
  'phone',
  'otherPhones',
  'address',
  'postcode',
  'otherAddresses',
  'addresses',
  'registeredPractice',
  'practices',
  'nominatedPharmacy',
  'emergencyContacts',
] as const satisfies readonly (keyof PatientRecord)[];
export type RestrictedField = (typeof RESTRICTED_FIELDS)[number];

export const restrictedPartSchema = patientRecordSchema.pick({
  phone: true,
  otherPhones: true,
  address: true,
  postcode: true,
  otherAddresses: true,
  addresses: true,
  registeredPractice: true,
  practices: true,
  nominatedPharmacy: true,
  emergencyContacts: true,
});
export type RestrictedPart = z.infer<typeof restrictedPartSchema>;

export const isRestricted = (record: Pick<PatientRecord, 'confidentiality'>): boolean =>
  record.confidentiality === 'R' || record.confidentiality === 'V';

/**
 * Splits a record by its security label: for R and V the restricted fields leave the general record
 * and travel apart (`restricted`); an unrestricted record is returned whole.
 */
export function splitRestricted(record: PatientRecord): {
  record: PatientRecord;
  restricted?: RestrictedPart;
} {
  if (!isRestricted(record)) return { record };
  const general: Record<string, unknown> = { ...record };
  const restricted: Record<string, unknown> = {};
  for (const field of RESTRICTED_FIELDS) {
    if (general[field] !== undefined) restricted[field] = general[field];
    delete general[field];
  }
  return { record: general as PatientRecord, restricted: restricted as RestrictedPart };
}

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
export const patientRegisteredV2 = defineEventType({
  type: 'patient.registered',
  v: 2,
  schema: z.strictObject({
    patientId: z.string().uuid(),
    homeSiteId: z.string().uuid(),
    record: patientRecordV2,
  }),
  subjectOf: (p) => `patient:${p.patientId}`,
});

/**
 * v3 adds optional fields only (v1 and v2 payloads read as v3 records): the security label, date of
 * death, periods, interpreter, emergency contacts, verification status, last confirmed; and, for a
 * restricted record, `restricted`: the withheld fields apart from `record`, so that projections
 * keep them out of the general record (see ARCHITECTURE, patients).
 */
export const patientRegistered = defineEventType({
  type: 'patient.registered',
  v: 3,
  schema: z.strictObject({
    patientId: z.string().uuid(),
    homeSiteId: z.string().uuid(),
    record: patientRecordSchema,
    restricted: restrictedPartSchema.optional(),
  }),
  subjectOf: (p) => `patient:${p.patientId}`,
});

/**
 * A known allergy or intolerance, as the caller or the record gives it: free text (a substance, a
 * drug, a food) with the reaction when known. Not coded: an uncoded entry is better than none.
 */
export const allergySchema = z.strictObject({
  substance: text(200).min(1),
  reaction: text(500).min(1).optional(),
});
export type Allergy = z.infer<typeof allergySchema>;

/**
 * The fields staff may change after registration: where the patient lives and can be reached, the
 * GP practice and pharmacy, interpreter need, emergency contacts and allergies. Names, date of
 * birth, NHS number and the security label come from the national record and are not edited here.
 */
export const EDITABLE_FIELDS = [
  'address',
  'postcode',
  'phone',
  'otherPhones',
  'registeredPractice',
  'nominatedPharmacy',
  'interpreter',
  'emergencyContacts',
  'allergies',
] as const;
export type EditableField = (typeof EDITABLE_FIELDS)[number];

/** The changed fields of an edit, each optional: an edit carries only what changed. */
export const patientChangesSchema = patientRecordSchema
  .pick({
    address: true,
    postcode: true,
    phone: true,
    otherPhones: true,
    registeredPractice: true,
    nominatedPharmacy: true,
    interpreter: true,
    emergencyContacts: true,
  })
  .extend({ allergies: z.array(allergySchema).max(50).optional() });
export type PatientChanges = z.infer<typeof patientChangesSchema>;

/**
 * A change to a registered patient's details: only the changed fields, with the names of the fields
 * changed (`fields`, also those withheld), so the history says what changed without repeating the
 * values. For a restricted (R or V) record the changed withheld fields travel in `restricted`, as on
 * registration, and never in `changes`. `version` is the record version the edit was made against.
 */
export const patientDetailsChanged = defineEventType({
  type: 'patient.details_changed',
  v: 1,
  schema: z.strictObject({
    patientId: z.string().uuid(),
    version: z.number().int().min(1),
    fields: z.array(z.enum(EDITABLE_FIELDS)).min(1),
    changes: patientChangesSchema,
    restricted: restrictedPartSchema.optional(),
  }),
  subjectOf: (p) => `patient:${p.patientId}`,
});

/**
 * A special note added to a registered patient (for example a safeguarding concern raised from a
 * case, which names the case).
 */
export const patientSpecialNoteAdded = defineEventType({
  type: 'patient.special_note_added',
  v: 1,
  schema: z.strictObject({
    patientId: z.string().uuid(),
    note: z.strictObject({ kind: z.enum(SPECIAL_NOTE_KINDS), text: text(2000).min(1) }),
    caseId: z.string().uuid().optional(),
  }),
  subjectOf: (p) => `patient:${p.patientId}`,
});

/**
 * A safeguarding concern raised from a case: recorded on the case (its timeline shows who raised it
 * and when) in the same commit as a safeguarding special note on the patient, so that the next
 * clinician who opens either sees it. Defined with the patient events: it is one act on both.
 */
export const caseSafeguardingConcernRaised = defineEventType({
  type: 'case.safeguarding_concern_raised',
  v: 1,
  schema: z.strictObject({
    caseId: z.string().uuid(),
    patientId: z.string().uuid(),
    concern: text(2000).min(1),
  }),
  subjectOf: (p) => `case:${p.caseId}`,
});

/**
 * Splits an edit of a restricted record like `splitRestricted`: the changed withheld fields leave
 * `changes` for `restricted`.
 */
export function splitRestrictedChanges(
  changes: PatientChanges,
  restrictedRecord: boolean,
): { changes: PatientChanges; restricted?: RestrictedPart } {
  if (!restrictedRecord) return { changes };
  const general: Record<string, unknown> = { ...changes };
  const restricted: Record<string, unknown> = {};
  for (const field of RESTRICTED_FIELDS) {
    if (general[field] !== undefined) restricted[field] = general[field];
    delete general[field];
  }
  return Object.keys(restricted).length > 0
    ? { changes: general as PatientChanges, restricted: restricted as RestrictedPart }
    : { changes: general as PatientChanges };
}

export const PATIENT_EVENT_TYPES = [
  patientRegisteredV1,
  patientRegisteredV2,
  patientRegistered,
  patientDetailsChanged,
  patientSpecialNoteAdded,
  caseSafeguardingConcernRaised,
];
