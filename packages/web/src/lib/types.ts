import type { News2Band } from '@holdfast/core';
import type { QuestionView, TriagePathStep, DispositionView } from '@holdfast/core/triage/engine';
import type { TriageContentInfo } from '@holdfast/core/triage/pack';

export type { QuestionView, TriagePathStep, DispositionView, TriageContentInfo };

export interface Site {
  siteId: string;
  name: string;
  mine: boolean;
}

export interface Caller {
  name: string;
  relationship: string;
  callbackNumber: string;
}

export interface CaseDisposition {
  kind: string;
  dxCode: string | null;
  label: string | null;
  skillSet: string | null;
  timeframeMinutes: number | null;
  ambulanceCategory: number | null;
  careAdvice: string[];
  sample?: boolean;
  notice?: string;
}

/** NEWS2 as the queue and the case carry it: a partial score has no total (present of 7). */
export interface News2Summary {
  total: number | null;
  /** Null when unknown: a partial score not yet above low. */
  band: News2Band | null;
  complete: boolean;
  present: number;
  of: number;
}

/** NEWS2 was not computed: the patient is under 16 or pregnant. */
export interface News2NotApplicableView {
  reason: 'under_16' | 'pregnant';
  message: string;
}

export interface WelfareCheckView {
  recordedBy: string;
  recordedAt: string;
  checkedBy: string;
  checkedAt: string;
  outcome: string;
  details?: string;
}

export interface CaseDetail {
  caseId: string;
  siteId: string;
  status: string;
  receivedAt: string;
  caller: Caller;
  patientId: string | null;
  location: string;
  presentingComplaint: string;
  triage: { pathwayId: string; pathwayVersion: string; answers: unknown[] } | null;
  disposition: CaseDisposition | null;
  deadline: string | null;
  claimedBy: string | null;
  escalated: boolean;
  callbackAttempts: number;
  failedCallbackAttempts: number;
  news2: News2Summary | null;
  news2NotApplicable?: News2NotApplicableView | null;
  welfareChecks?: WelfareCheckView[];
  outcomes: string[];
}

export type WalkResult =
  | { status: 'question'; content: TriageContentInfo; node: QuestionView; path: TriagePathStep[] }
  | {
      status: 'disposition';
      content: TriageContentInfo;
      disposition: DispositionView;
      path: TriagePathStep[];
    };

export interface SpecialNote {
  kind: 'end_of_life' | 'dnacpr' | 'safeguarding' | 'care_plan' | 'other';
  text?: string;
  withheld?: boolean;
}

export interface PatientView {
  patientId: string;
  homeSiteId: string;
  record: {
    specialNotes: SpecialNote[];
    accessInstructions?: string;
    givenName: string;
    familyName: string;
    dateOfBirth: string;
    sex: string;
    nhsNumber?: string;
    phone?: string;
    address?: string;
    postcode?: string;
  };
  withheld: string[];
  breakGlass: boolean;
  repeatCaller: { cases96h: number; flagged: boolean };
}

export interface PatientSummary {
  patientId: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  nhsNumber: string | null;
  postcode: string | null;
  homeSiteId: string;
  score: number;
  match: string;
}

export interface QueueCase {
  caseId: string;
  siteId: string;
  status: string;
  claimedBy: string | null;
  escalated: boolean;
  failedCallbackAttempts: number;
  presentingComplaint: string;
  callerName?: string;
  callbackNumber?: string;
  disposition: {
    dxCode: string | null;
    label: string | null;
    skillSet: string | null;
    timeframeMinutes: number;
    notice?: string;
  };
  receivedAt: string;
  deadline: string;
  deadlineLondon: string;
  remainingSeconds: number;
  timing: 'on_time' | 'at_risk' | 'breached';
  news2: News2Summary | null;
  news2NotApplicable?: News2NotApplicableView | null;
  /**
   * Sent by the ambulance service for validation (a message in), with its 999 incident. Only the
   * queue read carries it (a row rebuilt from a case read keeps the one it had: it never changes).
   */
  ambulanceValidation?: {
    incidentReference: string;
    category: number;
    deadline: string;
    deadlineFrom: string;
    patientMatch: string;
  } | null;
}

export interface QueueResponse {
  now: string;
  cases: QueueCase[];
}
