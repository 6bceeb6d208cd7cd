import { hasPermission, type News2Observations, type Role } from '@holdfast/core';
import type { CaseHistoryEvent } from './service.ts';

/**
 * A case's record as people read it back (C5): the triage path, every consultation with its notes,
 * and what happened to the case in order (call-backs, claims and releases, referrals, outcomes), in
 * plain words with who did it. Built from the case's ledger events, so nothing recorded is missing
 * after the case has left the queue.
 */
export interface CaseRecordView {
  triagePath: { question: string; answer: string }[];
  consultations: ConsultationView[];
  timeline: TimelineEntry[];
  /** What this role may not see (`consultations`: the notes; their time, author and NEWS2 stay). */
  withheld: string[];
}

export type ConsultationView = {
  recordedAt: string;
  clinicianId: string;
  clinicianName: string | null;
  news2: { total: number; band: string; complete: boolean } | null;
} & (
  | {
      history: string | null;
      examination: string | null;
      observations: News2Observations | null;
      assessment: string | null;
      plan: string | null;
      safetyNetting: string | null;
    }
  | { withheld: true }
);

export interface TimelineEntry {
  /** When it happened: for a record entered from paper, the time written on the paper. */
  at: string;
  type: string;
  /** Who did it (a member of staff's name), or null for the system or another service. For a record
   * entered from paper, who typed it in (who wrote it is in `what`). */
  by: string | null;
  what: string;
  /** Set only for a record entered from paper: when it was typed into the system. */
  enteredAt?: string;
}

const PAPER_KIND_WORDS: Record<string, string> = {
  call: 'call record',
  triage: 'triage record',
  clinical: 'clinical notes',
  callback: 'call-back',
  outcome: 'outcome',
  other: 'other',
};

const CALLBACK_WORDS: Record<string, string> = {
  answered: 'answered',
  no_answer: 'no answer',
  voicemail: 'voicemail (message left)',
  wrong_number: 'wrong number',
};

const OUTCOME_WORDS: Record<string, string> = {
  advice_and_close: 'advice given and closed',
  retriage: 'sent back to triage',
  upgrade_to_ambulance: 'upgraded to an ambulance',
  refer: 'referred to another service',
  book_appointment: 'appointment to be booked',
  home_visit: 'home visit to be arranged',
  prescribe: 'prescription',
};

const CALL_END_WORDS: Record<string, string> = {
  caller_hung_up: 'the caller hung up',
  wrong_number: 'wrong number',
  transferred: 'transferred to another service',
  other: 'other reason',
};

/** Lifecycle events whose facts say more (the disposition's details, the call itself) are left out. */
const QUIET_TYPES = new Set(['case.disposition_reached', 'case.call_answered']);

/** The user ids an event names, so their names can be looked up once for the whole record. */
export function userIdsIn(history: readonly CaseHistoryEvent[]): string[] {
  const ids = new Set<string>();
  for (const e of history) {
    if (e.actor.startsWith('user:')) ids.add(e.actor.slice(5));
    for (const key of ['clinicianId', 'toClinicianId', 'fromClinicianId', 'byClinicianId']) {
      const v = e.payload[key];
      if (typeof v === 'string') ids.add(v);
    }
  }
  return [...ids];
}

/**
 * The record of one case. Consultation notes follow the patient record's field rule for clinical
 * notes (`patients.clinical_notes.read`): a role without it sees that a consultation took place,
 * when, by whom and its NEWS2, not what was written.
 */
export function buildCaseRecord(input: {
  roles: readonly Role[];
  history: readonly CaseHistoryEvent[];
  triagePath: { question: string; answer: string }[];
  names: ReadonlyMap<string, string>;
  pathwayTitle: (pathwayId: string) => string;
}): CaseRecordView {
  const clinical = hasPermission(input.roles, 'patients.clinical_notes.read');
  const name = (userId: unknown) =>
    typeof userId === 'string' ? (input.names.get(userId) ?? 'a former member of staff') : null;
  const consultations: ConsultationView[] = [];
  const timeline: TimelineEntry[] = [];
  for (const e of input.history) {
    const p = e.payload;
    const at = new Date(e.atMs).toISOString();
    const by = e.actor.startsWith('user:') ? name(e.actor.slice(5)) : null;
    if (e.type === 'case.consultation_recorded') {
      const news2 = (p.news2 as ConsultationView['news2'] | undefined) ?? null;
      const base = {
        recordedAt: at,
        clinicianId: String(p.clinicianId),
        clinicianName: name(p.clinicianId),
        news2,
      };
      consultations.push(
        clinical
          ? {
              ...base,
              history: (p.history as string | undefined) ?? null,
              examination: (p.examination as string | undefined) ?? null,
              observations: (p.observations as News2Observations | undefined) ?? null,
              assessment: (p.assessment as string | undefined) ?? null,
              plan: (p.plan as string | undefined) ?? null,
              safetyNetting: (p.safetyNetting as string | undefined) ?? null,
            }
          : { ...base, withheld: true },
      );
    }
    if (e.type === 'case.paper_record_entered') {
      // Shown at the time written on the paper; clinical notes follow the consultation notes' rule.
      const words = clinical || p.kind !== 'clinical' ? `: ${String(p.text)}` : ' (withheld for this role)';
      timeline.push({
        at: String(p.happenedAt),
        type: e.type,
        by,
        what: `On paper, ${PAPER_KIND_WORDS[String(p.kind)] ?? String(p.kind)} written by ${String(p.writtenBy)}${words}`,
        enteredAt: at,
      });
      continue;
    }
    const what = describe(e, name, input.pathwayTitle);
    // A release at sign-out is stored as its reason then the release itself: one line says both.
    const explained = e.type === 'case.released' && timeline.at(-1)?.type === 'case.released_at_session_end';
    if (what !== null && !QUIET_TYPES.has(e.type) && !explained)
      timeline.push({ at, type: e.type, by, what });
  }
  // In the order things happened: records entered from paper go back to their own time (the sort is
  // stable, and every other entry is already in the ledger's order of time).
  timeline.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  return {
    triagePath: input.triagePath,
    consultations,
    timeline,
    withheld: clinical || consultations.length === 0 ? [] : ['consultations'],
  };
}

/** One event in plain words; null for events the record shows elsewhere (each triage answer). */
function describe(
  e: CaseHistoryEvent,
  name: (userId: unknown) => string | null,
  pathwayTitle: (pathwayId: string) => string,
): string | null {
  const p = e.payload;
  switch (e.type) {
    case 'case.opened':
      return `Call received: ${String(p.presentingComplaint)}`;
    case 'case.call_abandoned':
      return 'Call abandoned before it was answered';
    case 'case.patient_identified':
      return 'Patient identified';
    case 'case.triage_pathway_selected':
      return `Triage on the pathway "${pathwayTitle(String(p.pathwayId))}"`;
    case 'case.triage_started':
      return p.retriagedBy ? `Sent back to triage by ${name(p.retriagedBy)}` : 'Triage started';
    case 'case.triage_answered':
      return p.supersedes ? 'An earlier triage answer was changed' : null;
    case 'case.disposition_details':
      return `Disposition proposed: ${String(p.label)} (${String(p.dxCode)})`;
    case 'case.disposition_withdrawn':
      return 'The proposed disposition was set aside (an answer changed)';
    case 'case.advice_given':
      return 'Care advice given';
    case 'case.ambulance_requested':
      return `Ambulance requested, category ${String(p.category)}${p.byClinicianId ? ` by ${name(p.byClinicianId)}` : ''}`;
    case 'case.referred':
      return `Referral to another service${p.byClinicianId ? ` by ${name(p.byClinicianId)}` : ''}`;
    case 'case.queued_for_clinician':
      return 'Queued for a clinician (CAS queue)';
    case 'case.claimed':
      return `Claimed by ${name(p.clinicianId)}`;
    case 'case.released':
      return `Released back to the queue by ${name(p.clinicianId)}`;
    case 'case.released_at_session_end':
      return `Released back to the queue because ${name(p.clinicianId)} ${
        p.cause === 'signed_out' ? 'signed out' : 'was signed out (session ended)'
      } while holding it${p.unsavedDraft ? '; they had typed notes that were not saved' : ''}`;
    case 'case.transferred':
      return `Transferred from ${name(p.fromClinicianId)} to ${name(p.toClinicianId)}`;
    case 'case.callback_attempted':
      return `Call-back attempt ${String(p.attempt)}: ${CALLBACK_WORDS[String(p.outcome)] ?? String(p.outcome)}`;
    case 'case.escalated':
      return 'Escalated: call-backs failed, a welfare check is needed';
    case 'case.consultation_started':
      return `Consultation started by ${name(p.clinicianId)}`;
    case 'case.consultation_recorded': {
      const news2 = p.news2 as { total: number } | undefined;
      return `Consultation notes saved${news2 ? ` (NEWS2 ${news2.total})` : ''}`;
    }
    case 'case.outcome_recorded':
      return `Outcome: ${OUTCOME_WORDS[String(p.outcome)] ?? String(p.outcome)}`;
    case 'case.follow_up_arranged':
      return p.kind === 'home_visit' ? 'Home visit to be arranged' : 'Appointment to be booked';
    case 'case.closed':
      return 'The case was closed';
    case 'case.call_ended':
      return `Call ended without a confirmed disposition: ${CALL_END_WORDS[String(p.reason)] ?? String(p.reason)}${
        p.details ? ` (${String(p.details)})` : ''
      }${p.proposalDropped ? '; the proposed disposition was not acted on' : ''}`;
    case 'case.note_added':
      return `Note: ${String(p.text)}`;
    case 'case.disposition_corrected':
      return `Confirmed disposition ${String(p.dxCode)} corrected, back to triage: ${String(p.reason)}`;
    case 'case.safeguarding_concern_raised':
      // The concern's text is the patient's safeguarding note, shown to the roles that act on it.
      return "Safeguarding concern raised (a safeguarding note was added to the patient's record)";
    case 'reconciliation.resolved':
      return 'A shift manager decided a collision between two records of this case';
    // Treatment-centre appointments (C6, server/src/booking).
    case 'booking.booked':
      return `Appointment ${p.rebookOf ? 'moved to' : 'booked for'} ${String(p.startLocal)} at centre ${String(p.centreId)}${
        p.outsideTimeframeReason ? `, outside the timeframe: ${String(p.outsideTimeframeReason)}` : ''
      }`;
    case 'booking.cancelled':
      return `Appointment cancelled: ${String(p.reason)}`;
    case 'booking.walk_in':
      return `Walked in at centre ${String(p.centreId)}`;
    case 'booking.arrived':
      return 'Arrived at the treatment centre';
    case 'booking.seen':
      return `Seen at the treatment centre by ${name(p.clinicianId)}`;
    case 'booking.did_not_attend':
      return 'Did not attend the appointment';
    default:
      return e.type;
  }
}
