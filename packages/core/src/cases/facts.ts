import { z } from 'zod';
import {
  NEWS2_PARAMETER_COUNT,
  news2NotApplicableMessage,
  news2ObservationsSchema,
  PREGNANCY_ANSWERS,
  scoreNews2,
  type News2Band,
  type News2NotApplicableReason,
  type News2Observations,
} from '../clinical/news2.ts';
import { CONSULTATION_OUTCOMES } from './lifecycle.ts';
import { defineEventType } from '../ledger/registry.ts';

/**
 * Case facts outside the lifecycle state machine: what the call was, who the patient is, the
 * triage answers, the consultation record. Facts merge by union across nodes; they never conflict.
 */
const id = z.string().uuid();
const text = (max: number) => z.string().trim().max(max);
const subject = (p: { caseId: string }) => `case:${p.caseId}`;

export const callerSchema = z.strictObject({
  name: text(100).min(1),
  relationship: z.enum(['self', 'parent', 'carer', 'relative', 'friend', 'professional', 'other']),
  callbackNumber: z
    .string()
    .trim()
    .regex(/^\+?[0-9 ()-]{6,20}$/, 'must be a telephone number, e.g. 07700 900123'),
});

/**
 * The call handler read the call-back number back to the caller and the caller said it was right.
 * Recorded with the call that gave the number (the same append), so a case either has a number
 * confirmed this way or shows that it was not. `callbackNumber` is the number as confirmed, in the
 * national format.
 */
export const callbackNumberConfirmed = defineEventType({
  type: 'case.callback_number_confirmed',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    callbackNumber: z.string().trim().min(1).max(20),
    method: z.literal('read_back'),
  }),
  subjectOf: subject,
});

export const caseOpened = defineEventType({
  type: 'case.opened',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    siteId: id,
    /** When the call reached the service (IUC ADC: calls received), ISO 8601 UTC. */
    receivedAt: z.iso.datetime(),
    caller: callerSchema,
    /** Set when the patient is identified; may stay unset (unidentified patient). */
    patientId: id.optional(),
    /** Where the patient is now (may differ from home). */
    location: text(300).min(1),
    presentingComplaint: text(300).min(1),
    /**
     * The client's Idempotency-Key for this call and the SHA-256 of what it sent, so a retry of the
     * same request (the answer was lost) returns this case instead of opening a second one, and the
     * same key sent with a different call is refused. Keys are scoped to the user who sent them.
     */
    idempotency: z
      .strictObject({
        key: z.string().min(1).max(200),
        requestHash: z.string().regex(/^[0-9a-f]{64}$/),
      })
      .optional(),
  }),
  subjectOf: subject,
});

/** v1: the patient first identified on a case (frozen: events stored under it stay readable). */
export const patientIdentifiedV1 = defineEventType({
  type: 'case.patient_identified',
  v: 1,
  schema: z.strictObject({ caseId: id, patientId: id }),
  subjectOf: subject,
});

/**
 * v2 may say whom it corrects: a case's patient is replaced only knowingly, naming the patient it
 * had and why (`replaces`), never by a second identification that silently wins. Every v1 payload
 * reads as a v2 one.
 */
export const patientIdentified = defineEventType({
  type: 'case.patient_identified',
  v: 2,
  schema: z.strictObject({
    caseId: id,
    patientId: id,
    replaces: z.strictObject({ patientId: id, reason: text(500).min(10) }).optional(),
  }),
  subjectOf: subject,
});

/** The protocol the adviser runs for this call (life-threatening questions come first in every one). */
export const triagePathwaySelected = defineEventType({
  type: 'case.triage_pathway_selected',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    pathwayId: z.string().min(1).max(100),
    pathwayVersion: z.string().min(1).max(40),
  }),
  subjectOf: subject,
});

/** One triage answer; `supersedes` marks a changed answer (the history keeps the old one). */
export const triageAnswered = defineEventType({
  type: 'case.triage_answered',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    pathwayId: z.string().min(1).max(100),
    pathwayVersion: z.string().min(1).max(40),
    nodeId: z.string().min(1).max(100),
    value: z.union([z.string().max(100), z.array(z.string().max(100)).max(50), z.number()]),
    supersedes: z.boolean(),
  }),
  subjectOf: subject,
});

/** The disposition details the queue and reports need (the lifecycle event carries only its kind). */
export const dispositionDetails = defineEventType({
  type: 'case.disposition_details',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    pathwayId: z.string().max(100),
    dxCode: z.string().max(32),
    label: text(300),
    skillSet: z.string().max(40),
    timeframeMinutes: z.number().int().min(0),
    ambulanceCategory: z.number().int().min(1).max(4).optional(),
    careAdvice: z.array(text(1000)).max(30),
    /** Sample protocols say so wherever they are shown. */
    sample: z.boolean(),
  }),
  subjectOf: subject,
});

/**
 * v1: NEWS2 stored as `{total, band, complete}`, where a partial set's total was the sum of what was
 * measured (one temperature stored as "NEWS2 0", low). Kept to read old events; see
 * `consultationNews2` for how they are read now.
 */
export const consultationRecordedV1 = defineEventType({
  type: 'case.consultation_recorded',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    clinicianId: id,
    history: text(10_000).optional(),
    examination: text(10_000).optional(),
    observations: news2ObservationsSchema.optional(),
    news2: z
      .strictObject({
        total: z.number().int().min(0).max(20),
        band: z.string().max(20),
        complete: z.boolean(),
      })
      .optional(),
    assessment: text(10_000).optional(),
    plan: text(10_000).optional(),
    safetyNetting: text(5000).optional(),
  }),
  subjectOf: subject,
});

/**
 * v2: a partial NEWS2 has no total (`present` of 7 parameters, band only when already raised); the
 * patient's pregnancy answer and the age given at the call (when the patient is not identified) are
 * recorded, and when NEWS2 does not apply (under 16, pregnant) it is not computed and the reason is
 * stored instead. A new version rather than a wider v1: a node still on v1 refuses a v2 event by its
 * version instead of folding a partial score as a total.
 */
export const consultationRecorded = defineEventType({
  type: 'case.consultation_recorded',
  v: 2,
  schema: z.strictObject({
    caseId: id,
    clinicianId: id,
    history: text(10_000).optional(),
    examination: text(10_000).optional(),
    observations: news2ObservationsSchema.optional(),
    /** Pregnant or up to 6 weeks after giving birth. */
    pregnancy: z.enum(PREGNANCY_ANSWERS).optional(),
    /** The patient's age in whole years as given at the call, when the patient is not identified. */
    statedAgeYears: z.number().int().min(0).max(130).optional(),
    news2: z
      .strictObject({
        total: z.number().int().min(0).max(20).nullable(),
        band: z.enum(['low', 'low_medium', 'medium', 'high']).nullable(),
        complete: z.boolean(),
        present: z.number().int().min(0).max(NEWS2_PARAMETER_COUNT),
      })
      .optional(),
    /** NEWS2 was not computed: the patient is under 16 or pregnant. */
    news2NotApplicable: z.enum(['under_16', 'pregnant']).optional(),
    assessment: text(10_000).optional(),
    plan: text(10_000).optional(),
    safetyNetting: text(5000).optional(),
  }),
  subjectOf: subject,
});

/** NEWS2 of one consultation record as every reader takes it, whichever version stored it. */
export type ConsultationNews2 =
  | {
      kind: 'score';
      /** Null unless all seven parameters were scored. */
      total: number | null;
      band: News2Band | null;
      complete: boolean;
      present: number;
    }
  | { kind: 'not_applicable'; reason: News2NotApplicableReason; message: string };

/**
 * The NEWS2 a stored consultation record carries, or null when it has none. A v1 record's partial
 * score is read as v2 stores it: no total, `present` counted from its observations, and its band
 * kept only when above low (v1 stored the sum of what was measured, which read as low).
 */
export function consultationNews2(v: number, payload: Record<string, unknown>): ConsultationNews2 | null {
  const notApplicable = payload.news2NotApplicable as News2NotApplicableReason | undefined;
  if (notApplicable)
    return {
      kind: 'not_applicable',
      reason: notApplicable,
      message: news2NotApplicableMessage(notApplicable),
    };
  const news2 = payload.news2 as
    { total: number | null; band: string | null; complete: boolean; present?: number } | undefined;
  if (!news2) return null;
  if (v >= 2)
    return {
      kind: 'score',
      total: news2.total,
      band: news2.band as News2Band | null,
      complete: news2.complete,
      present: news2.present ?? 0,
    };
  if (news2.complete)
    return {
      kind: 'score',
      total: news2.total,
      band: news2.band as News2Band,
      complete: true,
      present: NEWS2_PARAMETER_COUNT,
    };
  const rescored = scoreNews2((payload.observations ?? {}) as News2Observations);
  return { kind: 'score', total: null, band: rescored.band, complete: false, present: rescored.present };
}

/**
 * A clinician chose an outcome that is not urgent (advice and close, a booked appointment) although
 * NEWS2 asked for an urgent response (5 or more, or a single parameter scoring 3), and said why.
 * Stored in the commit of the outcome itself.
 */
export const news2OutcomeConfirmed = defineEventType({
  type: 'case.news2_outcome_confirmed',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    clinicianId: id,
    outcome: z.enum(CONSULTATION_OUTCOMES),
    news2: z.strictObject({
      total: z.number().int().min(0).max(20).nullable(),
      band: z.enum(['low_medium', 'medium', 'high']),
      present: z.number().int().min(0).max(NEWS2_PARAMETER_COUNT),
    }),
    reason: text(2000).min(1),
  }),
  subjectOf: subject,
});

export const adviceGiven = defineEventType({
  type: 'case.advice_given',
  v: 1,
  schema: z.strictObject({ caseId: id, advice: z.array(text(1000)).max(30) }),
  subjectOf: subject,
});

/**
 * A case put back in the queue because the clinician holding it signed out or their session ended
 * (recorded with the `case.released` it explains, in one commit). A case held by someone who is no
 * longer signed in is work nobody can see being done: released, it is back in the queue for others.
 * `unsavedDraft` tells the next clinician that notes were typed and not saved (the draft itself is
 * not a clinical fact and stays with its author).
 */
export const caseReleasedAtSessionEnd = defineEventType({
  type: 'case.released_at_session_end',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    clinicianId: id,
    cause: z.enum(['signed_out', 'session_expired']),
    unsavedDraft: z.boolean(),
  }),
  subjectOf: subject,
});

/** The longest adviser's note on a case, in characters (the screen counts down to it). */
export const CASE_NOTE_MAX = 1000;

/**
 * A free-text note on the case by the adviser (or anyone handling it): what the caller said that
 * the form has no place for. Part of the case's record, never changed afterwards; a correction is
 * another note.
 */
export const caseNoteAdded = defineEventType({
  type: 'case.note_added',
  v: 1,
  schema: z.strictObject({ caseId: id, text: text(CASE_NOTE_MAX).min(1) }),
  subjectOf: subject,
});

/**
 * Why the adviser corrected a disposition they had confirmed: recorded with the re-triage it starts
 * (`case.triage_started` with `retriagedBy`), in one commit. `dxCode` is the disposition set aside.
 */
export const dispositionCorrected = defineEventType({
  type: 'case.disposition_corrected',
  v: 1,
  schema: z.strictObject({ caseId: id, dxCode: z.string().max(40), reason: text(300).min(1) }),
  subjectOf: subject,
});

/** What a paper record entered back after an outage is (the downtime pack's forms). */
export const PAPER_RECORD_KINDS = ['call', 'triage', 'clinical', 'callback', 'outcome', 'other'] as const;
export type PaperRecordKind = (typeof PAPER_RECORD_KINDS)[number];

/** The longest paper record entered in one go, in characters. */
export const PAPER_RECORD_MAX = 5000;

/**
 * Something done on paper while the system could not be used (the downtime pack), typed into the
 * case it belongs to afterwards: what it was, when it happened (the time written on the paper, not
 * the time of typing), who wrote it, and what it says. The actor is whoever typed it in, who answers
 * for the match; the record shows it at the time it happened, marked as entered from paper. Never
 * changed afterwards; a correction is another entry.
 */
export const paperRecordEntered = defineEventType({
  type: 'case.paper_record_entered',
  v: 1,
  schema: z.strictObject({
    caseId: id,
    kind: z.enum(PAPER_RECORD_KINDS),
    happenedAt: z.iso.datetime(),
    writtenBy: text(120).min(1),
    text: text(PAPER_RECORD_MAX).min(1),
  }),
  subjectOf: subject,
});

export const CASE_FACT_EVENT_TYPES = [
  caseOpened,
  callbackNumberConfirmed,
  patientIdentifiedV1,
  patientIdentified,
  triagePathwaySelected,
  triageAnswered,
  dispositionDetails,
  consultationRecordedV1,
  consultationRecorded,
  news2OutcomeConfirmed,
  adviceGiven,
  caseReleasedAtSessionEnd,
  caseNoteAdded,
  dispositionCorrected,
  paperRecordEntered,
];
