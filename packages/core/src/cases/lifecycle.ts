import { z } from 'zod';
import { assertInvariant, DomainError, InvariantViolation } from '../errors.ts';
import { defineEventType } from '../ledger/registry.ts';

/**
 * The life of one case, as a pure state machine (product brief, "The flow of one case"; C1, C3–C5):
 * `decide(state, command)` says which events a command produces or throws a CaseTransitionError;
 * `evolve(state, event)` folds one event into the state. The server stores the events in the ledger
 * and rebuilds the state by folding them from `initialCaseState`.
 *
 *   call_received ─answer_call→ answered ─start_triage→ in_triage ─reach_disposition→ disposition_reached
 *        └─abandon_call→ abandoned (terminal)
 *   disposition_reached ─withdraw_disposition→ in_triage (the adviser changed an answer before
 *                        confirming: a proposed disposition is acted on only once confirmed)
 *   disposition_reached ─request_ambulance→ ambulance_requested
 *                       ─refer→ referral_pending
 *                       ─queue_for_clinician→ queued ─claim→ claimed ─start_consultation→ in_consultation
 *                       ─close→ closed (terminal; only when the disposition asks nothing more of us)
 *   claimed | in_consultation ─release→ queued; claimed ─transfer→ claimed (another clinician)
 *   in_consultation ─record_outcome→ closed | in_triage | ambulance_requested | referral_pending
 *                                  | follow_up_arranged | in_consultation (prescribe)
 *   ambulance_requested | referral_pending | follow_up_arranged ─close→ closed
 *   referral_pending | follow_up_arranged ─queue_for_clinician→ queued
 *   answered | in_triage | disposition_reached ─end_call→ call_ended (terminal: the caller hung up,
 *                        the wrong number, or the call went elsewhere; a proposal not yet confirmed is
 *                        dropped with it, so nothing is acted on and no practice message is sent)
 *   queued ─retriage→ in_triage (the adviser corrects a confirmed disposition before a clinician has
 *          the case: a recorded re-triage, never a silent edit)
 *
 * Escalation (not a status): two failed call-backs escalate the case for a welfare check. It is
 * cleared when the patient is reached (a call-back answered, or a welfare check that reached them)
 * and when the case closes; each welfare check is recorded (who did it, when, what it found).
 */

export const CASE_STATUSES = [
  'call_received',
  'answered',
  'abandoned',
  'in_triage',
  'disposition_reached',
  'ambulance_requested',
  'referral_pending',
  'queued',
  'claimed',
  'in_consultation',
  'follow_up_arranged',
  'closed',
  'call_ended',
] as const;
export type CaseStatus = (typeof CASE_STATUSES)[number];

/** Nothing happens to a case in these states again. */
export const TERMINAL_STATUSES: readonly CaseStatus[] = ['abandoned', 'closed', 'call_ended'];

/**
 * Statuses of a call still with the health adviser: not yet triaged, being triaged, or a proposed
 * disposition not yet confirmed. Such a call is someone's to finish: resume it, or end it with a reason.
 */
export const WITH_ADVISER_STATUSES: readonly CaseStatus[] = [
  'call_received',
  'answered',
  'in_triage',
  'disposition_reached',
];

/** Why an adviser ended a call that reached no confirmed disposition. */
export const CALL_END_REASONS = ['caller_hung_up', 'wrong_number', 'transferred', 'other'] as const;
export type CallEndReason = (typeof CALL_END_REASONS)[number];

/** The states in which a clinician holds the case. */
export const CLAIMED_STATUSES: readonly CaseStatus[] = ['claimed', 'in_consultation'];

/** The kinds the triage engine's dispositions carry (triage/dx-codes.ts keeps the same list). */
export const DISPOSITION_KINDS = [
  'ambulance',
  'ed_utc',
  'speak_to_primary_care',
  'contact_primary_care',
  'self_care',
  'dental',
  'pharmacy',
  'other',
] as const;
export type DispositionKind = (typeof DISPOSITION_KINDS)[number];

/**
 * Dispositions that promise the patient something we must still do: an ambulance (or its clinical
 * validation) or a clinician's call-back. A case with one of these cannot simply be closed.
 */
export const DISPOSITIONS_NEEDING_ACTION: readonly DispositionKind[] = ['ambulance', 'speak_to_primary_care'];

/** Dispositions that can be passed to another service by referral or booking. */
export const REFERRABLE_DISPOSITIONS: readonly DispositionKind[] = [
  'ed_utc',
  'speak_to_primary_care',
  'contact_primary_care',
  'dental',
  'pharmacy',
  'other',
];

export const CALLBACK_OUTCOMES = ['answered', 'no_answer', 'voicemail', 'wrong_number'] as const;
export type CallbackOutcome = (typeof CALLBACK_OUTCOMES)[number];
export const FAILED_CALLBACK_OUTCOMES: readonly CallbackOutcome[] = [
  'no_answer',
  'voicemail',
  'wrong_number',
];

/** Failed call-back attempts after which the case is escalated for a welfare check. */
export const ESCALATE_AFTER_FAILED_CALLBACKS = 2;

/** Who carried out a welfare check. */
export const WELFARE_CHECKERS = [
  'clinician',
  'next_of_kin',
  'gp_practice',
  'police',
  'ambulance_service',
  'other',
] as const;
export type WelfareChecker = (typeof WELFARE_CHECKERS)[number];

/**
 * What a welfare check found. Only `patient_reached` (someone spoke to or saw the patient) clears the
 * escalation; the others leave it for the next step.
 */
export const WELFARE_CHECK_OUTCOMES = [
  'patient_reached',
  'not_reached',
  'passed_to_emergency_services',
] as const;
export type WelfareCheckOutcome = (typeof WELFARE_CHECK_OUTCOMES)[number];

/** Why an escalation ended. */
export const ESCALATION_CLEARED_REASONS = ['callback_answered', 'welfare_check', 'case_closed'] as const;

export const CONSULTATION_OUTCOMES = [
  'advice_and_close',
  'retriage',
  'upgrade_to_ambulance',
  'refer',
  'book_appointment',
  'home_visit',
  'prescribe',
] as const;
export type ConsultationOutcome = (typeof CONSULTATION_OUTCOMES)[number];

/**
 * Outcomes that leave the patient without urgent assessment: after a NEWS2 of 5 or more, or a single
 * parameter scoring 3, the clinician must give a reason to choose one (the score asks for an urgent
 * response). An ambulance, a home visit, a referral and re-triage are urgent routes; prescribing is not
 * an end of the consultation (a final outcome follows).
 */
export const NON_URGENT_OUTCOMES: readonly ConsultationOutcome[] = ['advice_and_close', 'book_appointment'];

/** Ambulance Response Programme category, 1 (life-threatening) to 4 (less urgent). */
export type AmbulanceCategory = 1 | 2 | 3 | 4;

export interface CaseState {
  caseId: string;
  status: CaseStatus;
  /** The clinician holding the case; set exactly when status is claimed or in_consultation. */
  claimantId: string | null;
  /** Set from reaching a disposition until the case is re-triaged. */
  disposition: DispositionKind | null;
  callbackAttempts: number;
  failedCallbackAttempts: number;
  /**
   * Raised when failed call-backs since the patient was last reached reach
   * ESCALATE_AFTER_FAILED_CALLBACKS; cleared when the patient is reached or the case closes.
   */
  escalated: boolean;
  /**
   * Failed call-backs since the patient was last reached (an answered call-back or a welfare check
   * that reached them); absent in states stored before it existed, read as failedCallbackAttempts.
   */
  failedSinceReached?: number;
  /** Consultation outcomes in the order recorded. */
  outcomes: ConsultationOutcome[];
}

export function initialCaseState(caseId: string): CaseState {
  return {
    caseId,
    status: 'call_received',
    claimantId: null,
    disposition: null,
    callbackAttempts: 0,
    failedCallbackAttempts: 0,
    failedSinceReached: 0,
    escalated: false,
    outcomes: [],
  };
}

// ---- commands ---------------------------------------------------------------------------------------

const id = z.string().uuid();
/** A disposition code: an NHS Pathways Dx code such as Dx05, or a local or sample code. */
const dxCode = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9-]{0,39}$/, 'must be a disposition code such as Dx05 (letters, digits, -)');
/** The disposition's window in minutes, at most two weeks. */
const dispositionTimeframe = z
  .number()
  .int()
  .min(1)
  .max(60 * 24 * 14);
const ambulanceCategory = z.union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)]);
/** A clinician's "home visit within N hours", with the reason the crew reads. */
export const homeVisitRequest = z.strictObject({
  withinHours: z.number().int().min(1).max(72),
  reason: z.string().trim().min(1).max(1000),
});
export type HomeVisitRequest = z.infer<typeof homeVisitRequest>;

/** Commands as the server receives them; `clinicianId` is the acting clinician, from the session. */
export const caseCommandSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('answer_call') }),
  z.strictObject({ type: z.literal('abandon_call') }),
  z.strictObject({ type: z.literal('start_triage') }),
  z.strictObject({
    type: z.literal('reach_disposition'),
    kind: z.enum(DISPOSITION_KINDS),
    dxCode: dxCode.optional(),
    timeframeMinutes: dispositionTimeframe.optional(),
  }),
  z.strictObject({ type: z.literal('withdraw_disposition') }),
  z.strictObject({ type: z.literal('request_ambulance'), category: ambulanceCategory }),
  z.strictObject({ type: z.literal('refer') }),
  z.strictObject({ type: z.literal('queue_for_clinician') }),
  z.strictObject({ type: z.literal('claim'), clinicianId: id }),
  z.strictObject({ type: z.literal('release'), clinicianId: id }),
  z.strictObject({ type: z.literal('transfer'), clinicianId: id, toClinicianId: id }),
  z.strictObject({
    type: z.literal('record_callback_attempt'),
    clinicianId: id,
    outcome: z.enum(CALLBACK_OUTCOMES),
  }),
  z.strictObject({
    type: z.literal('record_welfare_check'),
    /** Who recorded it (the acting user). */
    clinicianId: id,
    checkedBy: z.enum(WELFARE_CHECKERS),
    /** When the check was made, ISO 8601 UTC. */
    checkedAt: z.iso.datetime(),
    outcome: z.enum(WELFARE_CHECK_OUTCOMES),
    details: z.string().trim().max(1000).optional(),
  }),
  z.strictObject({ type: z.literal('start_consultation'), clinicianId: id }),
  z.strictObject({
    type: z.literal('record_outcome'),
    clinicianId: id,
    outcome: z.enum(CONSULTATION_OUTCOMES),
    /** Required when the outcome is upgrade_to_ambulance. */
    ambulanceCategory: ambulanceCategory.optional(),
    /** A home visit's timeframe and reason (the dispatch module creates the visit from them). */
    homeVisit: homeVisitRequest.optional(),
  }),
  z.strictObject({ type: z.literal('close') }),
  z.strictObject({
    type: z.literal('end_call'),
    reason: z.enum(CALL_END_REASONS),
    /** In the adviser's words; required for `other`. */
    details: z.string().trim().max(300).optional(),
  }),
  /** The adviser corrects a confirmed disposition: back to triage, recorded as a re-triage. */
  z.strictObject({ type: z.literal('retriage'), userId: id }),
]);
export type CaseCommand = z.infer<typeof caseCommandSchema>;
export type CaseCommandType = CaseCommand['type'];

// ---- events -----------------------------------------------------------------------------------------

const caseId = id;
const subject = (p: { caseId: string }) => `case:${p.caseId}`;

export const callAnswered = defineEventType({
  type: 'case.call_answered',
  v: 1,
  schema: z.strictObject({ caseId }),
  subjectOf: subject,
});
export const callAbandoned = defineEventType({
  type: 'case.call_abandoned',
  v: 1,
  schema: z.strictObject({ caseId }),
  subjectOf: subject,
});
export const triageStarted = defineEventType({
  type: 'case.triage_started',
  v: 1,
  schema: z.strictObject({
    caseId,
    /**
     * Set when a clinician sends the case back to triage from a consultation, or the adviser corrects
     * a confirmed disposition (with `case.disposition_corrected` saying why).
     */
    retriagedBy: id.optional(),
  }),
  subjectOf: subject,
});
export const dispositionReached = defineEventType({
  type: 'case.disposition_reached',
  v: 1,
  schema: z.strictObject({
    caseId,
    kind: z.enum(DISPOSITION_KINDS),
    dxCode: dxCode.optional(),
    timeframeMinutes: dispositionTimeframe.optional(),
  }),
  subjectOf: subject,
});
/** A proposed disposition set aside before it was acted on (an answer changed): back to triage. */
export const dispositionWithdrawn = defineEventType({
  type: 'case.disposition_withdrawn',
  v: 1,
  schema: z.strictObject({ caseId }),
  subjectOf: subject,
});
export const ambulanceRequested = defineEventType({
  type: 'case.ambulance_requested',
  v: 1,
  schema: z.strictObject({
    caseId,
    category: ambulanceCategory,
    /** The clinician who upgraded the case, when it came from a consultation. */
    byClinicianId: id.optional(),
  }),
  subjectOf: subject,
});
export const caseReferred = defineEventType({
  type: 'case.referred',
  v: 1,
  schema: z.strictObject({ caseId, byClinicianId: id.optional() }),
  subjectOf: subject,
});
export const queuedForClinician = defineEventType({
  type: 'case.queued_for_clinician',
  v: 1,
  schema: z.strictObject({ caseId }),
  subjectOf: subject,
});
export const caseClaimed = defineEventType({
  type: 'case.claimed',
  v: 1,
  schema: z.strictObject({ caseId, clinicianId: id }),
  subjectOf: subject,
});
export const caseReleased = defineEventType({
  type: 'case.released',
  v: 1,
  schema: z.strictObject({ caseId, clinicianId: id }),
  subjectOf: subject,
});
export const caseTransferred = defineEventType({
  type: 'case.transferred',
  v: 1,
  schema: z.strictObject({ caseId, fromClinicianId: id, toClinicianId: id }),
  subjectOf: subject,
});
export const callbackAttempted = defineEventType({
  type: 'case.callback_attempted',
  v: 1,
  schema: z.strictObject({
    caseId,
    clinicianId: id,
    outcome: z.enum(CALLBACK_OUTCOMES),
    /** Counts after this attempt. */
    attempt: z.number().int().min(1),
    failedAttempts: z.number().int().min(0),
  }),
  subjectOf: subject,
});
export const caseEscalated = defineEventType({
  type: 'case.escalated',
  v: 1,
  schema: z.strictObject({
    caseId,
    reason: z.literal('repeated_failed_callbacks'),
    failedAttempts: z.number().int().min(ESCALATE_AFTER_FAILED_CALLBACKS),
    /** What the escalation asks for: someone must check the patient is safe. */
    action: z.literal('welfare_check'),
  }),
  subjectOf: subject,
});
/** A welfare check on an escalated case: who made it, when, and what it found. */
export const welfareCheckRecorded = defineEventType({
  type: 'case.welfare_check_recorded',
  v: 1,
  schema: z.strictObject({
    caseId,
    recordedBy: id,
    checkedBy: z.enum(WELFARE_CHECKERS),
    checkedAt: z.iso.datetime(),
    outcome: z.enum(WELFARE_CHECK_OUTCOMES),
    details: z.string().trim().max(1000).optional(),
  }),
  subjectOf: subject,
});
/** The escalation ended: the patient was reached, or the case closed. */
export const escalationCleared = defineEventType({
  type: 'case.escalation_cleared',
  v: 1,
  schema: z.strictObject({ caseId, reason: z.enum(ESCALATION_CLEARED_REASONS) }),
  subjectOf: subject,
});
export const consultationStarted = defineEventType({
  type: 'case.consultation_started',
  v: 1,
  schema: z.strictObject({ caseId, clinicianId: id }),
  subjectOf: subject,
});
export const outcomeRecorded = defineEventType({
  type: 'case.outcome_recorded',
  v: 1,
  schema: z.strictObject({ caseId, clinicianId: id, outcome: z.enum(CONSULTATION_OUTCOMES) }),
  subjectOf: subject,
});
export const followUpArranged = defineEventType({
  type: 'case.follow_up_arranged',
  v: 1,
  schema: z.strictObject({
    caseId,
    clinicianId: id,
    kind: z.enum(['appointment', 'home_visit']),
    /** A home visit: within how many hours, and why (optional: events from before visits were dispatched have neither). */
    withinHours: homeVisitRequest.shape.withinHours.optional(),
    reason: homeVisitRequest.shape.reason.optional(),
  }),
  subjectOf: subject,
});
export const caseClosed = defineEventType({
  type: 'case.closed',
  v: 1,
  schema: z.strictObject({ caseId }),
  subjectOf: subject,
});

/**
 * The adviser ended a call that had no confirmed disposition (the caller hung up, a wrong number, the
 * call was transferred elsewhere). Terminal; a proposed disposition is dropped with it.
 */
export const callEnded = defineEventType({
  type: 'case.call_ended',
  v: 1,
  schema: z.strictObject({
    caseId,
    reason: z.enum(CALL_END_REASONS),
    details: z.string().trim().max(300).optional(),
    /** The disposition that had been proposed and was never acted on, if any. */
    proposalDropped: z.boolean(),
  }),
  subjectOf: subject,
});

export const CASE_LIFECYCLE_EVENT_TYPES = [
  callAnswered,
  callAbandoned,
  triageStarted,
  dispositionReached,
  dispositionWithdrawn,
  ambulanceRequested,
  caseReferred,
  queuedForClinician,
  caseClaimed,
  caseReleased,
  caseTransferred,
  callbackAttempted,
  caseEscalated,
  welfareCheckRecorded,
  escalationCleared,
  consultationStarted,
  outcomeRecorded,
  followUpArranged,
  caseClosed,
  callEnded,
];

type E<T extends string, D extends { schema: z.ZodType }> = { type: T; payload: z.infer<D['schema']> };

/** A lifecycle event as plain data: what the server appends to the ledger (at version 1). */
export type CaseEvent =
  | E<'case.call_answered', typeof callAnswered>
  | E<'case.call_abandoned', typeof callAbandoned>
  | E<'case.triage_started', typeof triageStarted>
  | E<'case.disposition_reached', typeof dispositionReached>
  | E<'case.disposition_withdrawn', typeof dispositionWithdrawn>
  | E<'case.ambulance_requested', typeof ambulanceRequested>
  | E<'case.referred', typeof caseReferred>
  | E<'case.queued_for_clinician', typeof queuedForClinician>
  | E<'case.claimed', typeof caseClaimed>
  | E<'case.released', typeof caseReleased>
  | E<'case.transferred', typeof caseTransferred>
  | E<'case.callback_attempted', typeof callbackAttempted>
  | E<'case.escalated', typeof caseEscalated>
  | E<'case.welfare_check_recorded', typeof welfareCheckRecorded>
  | E<'case.escalation_cleared', typeof escalationCleared>
  | E<'case.consultation_started', typeof consultationStarted>
  | E<'case.outcome_recorded', typeof outcomeRecorded>
  | E<'case.follow_up_arranged', typeof followUpArranged>
  | E<'case.closed', typeof caseClosed>
  | E<'case.call_ended', typeof callEnded>;
export type CaseEventType = CaseEvent['type'];

// ---- errors -----------------------------------------------------------------------------------------

export type CaseTransitionCode =
  /** The case is closed or abandoned: nothing more can happen to it. */
  | 'case_closed'
  /** The command makes no sense in the case's current state. */
  | 'illegal_transition'
  /** Someone already holds the case. */
  | 'already_claimed'
  /** Only the clinician holding the case may do this. */
  | 'not_claimant'
  /** The disposition still asks for an ambulance or a call-back, so the case cannot be closed yet. */
  | 'disposition_not_acted_on'
  /** The command does not fit the disposition (an ambulance for a self-care disposition, say). */
  | 'disposition_mismatch'
  /** A case cannot be transferred to the clinician who already holds it. */
  | 'transfer_to_self'
  /** The command lacks a detail this particular case of it needs. */
  | 'missing_detail';

/** A command refused by the lifecycle. Maps to 409 Conflict; nothing was stored. */
export class CaseTransitionError extends DomainError {
  constructor(
    readonly code: CaseTransitionCode,
    readonly from: CaseStatus,
    readonly command: CaseCommandType,
    message: string,
    /** The clinician holding the case, for already_claimed and not_claimant. */
    readonly heldBy: string | null = null,
  ) {
    super(message);
  }
}

// ---- decide -----------------------------------------------------------------------------------------

function refuse(
  state: CaseState,
  command: CaseCommand,
  code: CaseTransitionCode,
  message?: string,
  heldBy: string | null = null,
): never {
  throw new CaseTransitionError(
    code,
    state.status,
    command.type,
    message ?? `cannot ${command.type.replace(/_/g, ' ')} a case that is ${state.status.replace(/_/g, ' ')}`,
    heldBy,
  );
}

function requireStatus(state: CaseState, command: CaseCommand, ...allowed: CaseStatus[]): void {
  if (!allowed.includes(state.status)) refuse(state, command, 'illegal_transition');
}

/** The acting clinician must hold the case. */
function requireClaimant(state: CaseState, command: CaseCommand & { clinicianId: string }): void {
  if (state.claimantId !== command.clinicianId) {
    refuse(
      state,
      command,
      'not_claimant',
      `case is held by clinician ${state.claimantId ?? '(nobody)'}; only they can ${command.type.replace(/_/g, ' ')}`,
      state.claimantId,
    );
  }
}

/**
 * The events `command` produces against `state`, or a CaseTransitionError saying why not. Pure: the
 * caller appends the events (with the acting user and time in the ledger envelope) and folds them.
 */
export function decide(state: CaseState, command: CaseCommand): CaseEvent[] {
  const events = decideCommand(state, command);
  // A case that closes ends its escalation: nobody is left to act on it, and a closed case must not
  // keep showing "welfare check needed".
  const closing = events.findIndex((e) => e.type === 'case.closed');
  if (state.escalated && closing >= 0 && !events.some((e) => e.type === 'case.escalation_cleared')) {
    events.splice(closing, 0, {
      type: 'case.escalation_cleared',
      payload: { caseId: state.caseId, reason: 'case_closed' },
    });
  }
  return events;
}

/** Failed call-backs since the patient was last reached (states stored before the field: all of them). */
function failedSinceReached(state: CaseState): number {
  return state.failedSinceReached ?? state.failedCallbackAttempts;
}

function decideCommand(state: CaseState, command: CaseCommand): CaseEvent[] {
  const { caseId } = state;
  if (TERMINAL_STATUSES.includes(state.status)) {
    refuse(state, command, 'case_closed', `case is ${state.status}: nothing more can be recorded on it`);
  }
  switch (command.type) {
    case 'answer_call':
      requireStatus(state, command, 'call_received');
      return [{ type: 'case.call_answered', payload: { caseId } }];

    case 'abandon_call':
      // A call can only be abandoned before it is answered; after that the case is ours to close.
      requireStatus(state, command, 'call_received');
      return [{ type: 'case.call_abandoned', payload: { caseId } }];

    case 'start_triage':
      requireStatus(state, command, 'answered');
      return [{ type: 'case.triage_started', payload: { caseId } }];

    case 'reach_disposition': {
      requireStatus(state, command, 'in_triage');
      const payload: z.infer<typeof dispositionReached.schema> = { caseId, kind: command.kind };
      if (command.dxCode !== undefined) payload.dxCode = command.dxCode;
      if (command.timeframeMinutes !== undefined) payload.timeframeMinutes = command.timeframeMinutes;
      return [{ type: 'case.disposition_reached', payload }];
    }

    case 'withdraw_disposition':
      requireStatus(state, command, 'disposition_reached');
      return [{ type: 'case.disposition_withdrawn', payload: { caseId } }];

    case 'request_ambulance':
      requireStatus(state, command, 'disposition_reached');
      if (state.disposition !== 'ambulance') {
        refuse(
          state,
          command,
          'disposition_mismatch',
          'the disposition is not an ambulance: re-triage, or have a clinician upgrade the case',
        );
      }
      return [{ type: 'case.ambulance_requested', payload: { caseId, category: command.category } }];

    case 'refer':
      requireStatus(state, command, 'disposition_reached');
      if (state.disposition === null || !REFERRABLE_DISPOSITIONS.includes(state.disposition)) {
        refuse(
          state,
          command,
          'disposition_mismatch',
          `a ${state.disposition ?? 'missing'} disposition is not passed on by referral`,
        );
      }
      return [{ type: 'case.referred', payload: { caseId } }];

    case 'queue_for_clinician':
      requireStatus(state, command, 'disposition_reached', 'referral_pending', 'follow_up_arranged');
      return [{ type: 'case.queued_for_clinician', payload: { caseId } }];

    case 'claim':
      if (state.claimantId !== null) {
        refuse(
          state,
          command,
          'already_claimed',
          `case is already held by clinician ${state.claimantId}`,
          state.claimantId,
        );
      }
      requireStatus(state, command, 'queued');
      return [{ type: 'case.claimed', payload: { caseId, clinicianId: command.clinicianId } }];

    case 'release':
      requireStatus(state, command, 'claimed', 'in_consultation');
      requireClaimant(state, command);
      return [{ type: 'case.released', payload: { caseId, clinicianId: command.clinicianId } }];

    case 'transfer':
      requireStatus(state, command, 'claimed');
      requireClaimant(state, command);
      if (command.toClinicianId === command.clinicianId) {
        refuse(state, command, 'transfer_to_self', 'you already hold this case');
      }
      return [
        {
          type: 'case.transferred',
          payload: { caseId, fromClinicianId: command.clinicianId, toClinicianId: command.toClinicianId },
        },
      ];

    case 'record_callback_attempt': {
      requireStatus(state, command, 'claimed');
      requireClaimant(state, command);
      const failed = FAILED_CALLBACK_OUTCOMES.includes(command.outcome);
      const failedAttempts = state.failedCallbackAttempts + (failed ? 1 : 0);
      const sinceReached = failed ? failedSinceReached(state) + 1 : 0;
      const events: CaseEvent[] = [
        {
          type: 'case.callback_attempted',
          payload: {
            caseId,
            clinicianId: command.clinicianId,
            outcome: command.outcome,
            attempt: state.callbackAttempts + 1,
            failedAttempts,
          },
        },
      ];
      if (failed && !state.escalated && sinceReached >= ESCALATE_AFTER_FAILED_CALLBACKS) {
        events.push({
          type: 'case.escalated',
          payload: { caseId, reason: 'repeated_failed_callbacks', failedAttempts, action: 'welfare_check' },
        });
      }
      if (!failed && state.escalated) {
        events.push({ type: 'case.escalation_cleared', payload: { caseId, reason: 'callback_answered' } });
      }
      return events;
    }

    case 'record_welfare_check': {
      if (!state.escalated) {
        refuse(
          state,
          command,
          'illegal_transition',
          'the case is not escalated: there is no welfare check to record',
        );
      }
      const events: CaseEvent[] = [
        {
          type: 'case.welfare_check_recorded',
          payload: {
            caseId,
            recordedBy: command.clinicianId,
            checkedBy: command.checkedBy,
            checkedAt: command.checkedAt,
            outcome: command.outcome,
            ...(command.details ? { details: command.details } : {}),
          },
        },
      ];
      if (command.outcome === 'patient_reached') {
        events.push({ type: 'case.escalation_cleared', payload: { caseId, reason: 'welfare_check' } });
      }
      return events;
    }

    case 'start_consultation':
      requireStatus(state, command, 'claimed');
      requireClaimant(state, command);
      return [{ type: 'case.consultation_started', payload: { caseId, clinicianId: command.clinicianId } }];

    case 'record_outcome':
      requireStatus(state, command, 'in_consultation');
      requireClaimant(state, command);
      return outcomeEvents(state, command);

    case 'close':
      if (state.status === 'disposition_reached') {
        if (state.disposition === null || DISPOSITIONS_NEEDING_ACTION.includes(state.disposition)) {
          refuse(
            state,
            command,
            'disposition_not_acted_on',
            `a ${state.disposition ?? 'missing'} disposition must be acted on before the case is closed`,
          );
        }
      } else {
        requireStatus(state, command, 'ambulance_requested', 'referral_pending', 'follow_up_arranged');
      }
      return [{ type: 'case.closed', payload: { caseId } }];

    case 'end_call':
      // Before answering it is an abandoned call; after a confirmed disposition the case is acted on
      // and closes by its own route.
      requireStatus(state, command, 'answered', 'in_triage', 'disposition_reached');
      if (command.reason === 'other' && !command.details) {
        refuse(state, command, 'missing_detail', 'say why the call ended');
      }
      return [
        {
          type: 'case.call_ended',
          payload: {
            caseId,
            reason: command.reason,
            ...(command.details ? { details: command.details } : {}),
            proposalDropped: state.status === 'disposition_reached',
          },
        },
      ];

    case 'retriage':
      // Only while nobody has the case: a clinician holding it re-triages through their outcome.
      requireStatus(state, command, 'queued');
      return [{ type: 'case.triage_started', payload: { caseId, retriagedBy: command.userId } }];
  }
}

function outcomeEvents(
  state: CaseState,
  command: Extract<CaseCommand, { type: 'record_outcome' }>,
): CaseEvent[] {
  const { caseId } = state;
  const { clinicianId, outcome } = command;
  const recorded: CaseEvent = { type: 'case.outcome_recorded', payload: { caseId, clinicianId, outcome } };
  switch (outcome) {
    case 'advice_and_close':
      return [recorded, { type: 'case.closed', payload: { caseId } }];
    case 'retriage':
      return [recorded, { type: 'case.triage_started', payload: { caseId, retriagedBy: clinicianId } }];
    case 'upgrade_to_ambulance':
      if (command.ambulanceCategory === undefined) {
        refuse(state, command, 'missing_detail', 'an upgrade to an ambulance needs a category (1–4)');
      }
      return [
        recorded,
        {
          type: 'case.ambulance_requested',
          payload: { caseId, category: command.ambulanceCategory, byClinicianId: clinicianId },
        },
      ];
    case 'refer':
      return [recorded, { type: 'case.referred', payload: { caseId, byClinicianId: clinicianId } }];
    case 'book_appointment':
      return [
        recorded,
        { type: 'case.follow_up_arranged', payload: { caseId, clinicianId, kind: 'appointment' } },
      ];
    case 'home_visit':
      return [
        recorded,
        {
          type: 'case.follow_up_arranged',
          payload: {
            caseId,
            clinicianId,
            kind: 'home_visit',
            ...(command.homeVisit
              ? { withinHours: command.homeVisit.withinHours, reason: command.homeVisit.reason }
              : {}),
          },
        },
      ];
    case 'prescribe':
      // A prescription is part of a consultation, not its end: a final outcome still follows.
      return [recorded];
  }
}

// ---- evolve -----------------------------------------------------------------------------------------

/**
 * The state after `event`. Refuses (InvariantViolation) an event that cannot follow the state, so a
 * ledger whose events do not fit together is found loudly rather than folded into a wrong case.
 */
export function evolve(state: CaseState, event: CaseEvent): CaseState {
  const expect = (...allowed: CaseStatus[]) => {
    if (!allowed.includes(state.status)) {
      throw new InvariantViolation(`${event.type} cannot follow a case that is ${state.status}`);
    }
  };
  assertInvariant(event.payload.caseId === state.caseId, `${event.type} belongs to another case`);
  /** Leaving the clinician's hands: the claim ends with the move. */
  const move = (status: CaseStatus): CaseState => ({ ...state, status, claimantId: null });

  let next: CaseState;
  switch (event.type) {
    case 'case.call_answered':
      expect('call_received');
      next = move('answered');
      break;
    case 'case.call_abandoned':
      expect('call_received');
      next = move('abandoned');
      break;
    case 'case.triage_started':
      expect('answered', 'in_consultation', 'queued');
      next = { ...move('in_triage'), disposition: null };
      break;
    case 'case.disposition_reached':
      expect('in_triage');
      next = { ...move('disposition_reached'), disposition: event.payload.kind };
      break;
    case 'case.disposition_withdrawn':
      expect('disposition_reached');
      next = { ...move('in_triage'), disposition: null };
      break;
    case 'case.ambulance_requested':
      expect('disposition_reached', 'in_consultation');
      next = move('ambulance_requested');
      break;
    case 'case.referred':
      expect('disposition_reached', 'in_consultation');
      next = move('referral_pending');
      break;
    case 'case.queued_for_clinician':
      expect('disposition_reached', 'referral_pending', 'follow_up_arranged');
      next = move('queued');
      break;
    case 'case.claimed':
      expect('queued');
      next = { ...state, status: 'claimed', claimantId: event.payload.clinicianId };
      break;
    case 'case.released':
      expect('claimed', 'in_consultation');
      assertInvariant(
        state.claimantId === event.payload.clinicianId,
        'released by a clinician not holding it',
      );
      next = move('queued');
      break;
    case 'case.transferred':
      expect('claimed');
      assertInvariant(
        state.claimantId === event.payload.fromClinicianId,
        'transferred by a clinician not holding it',
      );
      next = { ...state, claimantId: event.payload.toClinicianId };
      break;
    case 'case.callback_attempted': {
      expect('claimed');
      const failed = FAILED_CALLBACK_OUTCOMES.includes(event.payload.outcome);
      next = {
        ...state,
        callbackAttempts: state.callbackAttempts + 1,
        failedCallbackAttempts: state.failedCallbackAttempts + (failed ? 1 : 0),
        failedSinceReached: failed ? failedSinceReached(state) + 1 : 0,
      };
      break;
    }
    case 'case.welfare_check_recorded':
      assertInvariant(state.escalated, 'a welfare check recorded on a case that is not escalated');
      next = {
        ...state,
        failedSinceReached: event.payload.outcome === 'patient_reached' ? 0 : failedSinceReached(state),
      };
      break;
    case 'case.escalation_cleared':
      assertInvariant(state.escalated, 'an escalation cleared on a case that is not escalated');
      next = { ...state, escalated: false };
      break;
    case 'case.escalated':
      expect('claimed');
      assertInvariant(
        state.failedCallbackAttempts >= ESCALATE_AFTER_FAILED_CALLBACKS,
        'escalated before enough failed call-backs',
      );
      next = { ...state, escalated: true };
      break;
    case 'case.consultation_started':
      expect('claimed');
      next = { ...state, status: 'in_consultation' };
      break;
    case 'case.outcome_recorded':
      expect('in_consultation');
      next = { ...state, outcomes: [...state.outcomes, event.payload.outcome] };
      break;
    case 'case.follow_up_arranged':
      expect('in_consultation');
      next = move('follow_up_arranged');
      break;
    case 'case.closed':
      expect(
        'disposition_reached',
        'ambulance_requested',
        'referral_pending',
        'follow_up_arranged',
        'in_consultation',
      );
      next = move('closed');
      break;
    case 'case.call_ended':
      expect('answered', 'in_triage', 'disposition_reached');
      next = { ...move('call_ended'), disposition: null };
      break;
  }
  assertCaseInvariants(next);
  return next;
}

/** Folds events from the initial state. */
export function replayCase(caseId: string, events: readonly CaseEvent[]): CaseState {
  return events.reduce(evolve, initialCaseState(caseId));
}

/** Checks the state's internal consistency; throws InvariantViolation when broken. */
export function assertCaseInvariants(s: CaseState): void {
  assertInvariant(CASE_STATUSES.includes(s.status), `unknown status ${String(s.status)}`);
  assertInvariant(
    CLAIMED_STATUSES.includes(s.status) === (s.claimantId !== null),
    `a ${s.status} case ${s.claimantId === null ? 'has no' : 'has a'} claimant`,
  );
  assertInvariant(
    s.failedCallbackAttempts >= 0 && s.failedCallbackAttempts <= s.callbackAttempts,
    'failed call-backs outnumber call-backs',
  );
  // Between the attempt that reaches the threshold and its escalation event the flag is briefly down;
  // after every whole command it is raised exactly when the threshold is reached (the tests check that).
  assertInvariant(
    !s.escalated || s.failedCallbackAttempts >= ESCALATE_AFTER_FAILED_CALLBACKS,
    `escalated after only ${s.failedCallbackAttempts} failed call-backs`,
  );
  const beforeDisposition: CaseStatus[] = [
    'call_received',
    'answered',
    'abandoned',
    'in_triage',
    'call_ended',
  ];
  assertInvariant(
    beforeDisposition.includes(s.status) === (s.disposition === null),
    `a ${s.status} case ${s.disposition === null ? 'has no' : 'has a'} disposition`,
  );
}
