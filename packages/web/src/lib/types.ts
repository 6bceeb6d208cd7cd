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
  /** The number was read back to the caller, who agreed it (absent on calls taken before this check). */
  callbackNumberReadBack?: true;
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
  /** The holder's display name (a case read; null when nobody holds it). */
  claimedByName?: string | null;
  escalated: boolean;
  callbackAttempts: number;
  failedCallbackAttempts: number;
  news2: News2Summary | null;
  news2NotApplicable?: News2NotApplicableView | null;
  welfareChecks?: WelfareCheckView[];
  outcomes: string[];
  /** The readable record (GET /api/v1/cases/:id only; server cases/record.ts). */
  record?: CaseRecord;
}

/** A case's record as read back: triage path, consultations, and what happened in order. */
export interface CaseRecord {
  triagePath: { question: string; answer: string }[];
  consultations: ConsultationRecord[];
  /** `enteredAt`: only for a record entered from paper, when it was typed in (`at` is the paper's time). */
  timeline: { at: string; type: string; by: string | null; what: string; enteredAt?: string }[];
  withheld: string[];
}

export interface ConsultationRecord {
  recordedAt: string;
  clinicianId: string;
  clinicianName: string | null;
  news2: { total: number; band: string; complete: boolean } | null;
  withheld?: true;
  history?: string | null;
  examination?: string | null;
  observations?: Record<string, number | string | null> | null;
  assessment?: string | null;
  plan?: string | null;
  safetyNetting?: string | null;
}

/** One previous encounter of a patient (GET /api/v1/patients/:id/encounters). */
export interface Encounter {
  caseId: string;
  reference: string;
  siteId: string;
  siteName: string | null;
  receivedAt: string;
  closedAt: string | null;
  status: string;
  presentingComplaint: string;
  disposition: { label: string; dxCode: string | null } | null;
  outcomes: string[];
  news2: { total: number; band: string | null } | null;
  escalated: boolean;
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
    registeredPractice?: { odsCode: string; name?: string };
    /** PDS security label: R restricted, V very restricted. */
    confidentiality?: 'U' | 'R' | 'V';
    /** Date (and time) of death. */
    deceasedAt?: string;
    interpreter?: { required: boolean; language?: string };
    emergencyContacts?: EmergencyContact[];
    nhsNumberVerification?: { code: string };
    /** When the national record was last confirmed. */
    lastConfirmedAt?: string;
    nominatedPharmacy?: { odsCode: string; name?: string };
    allergies?: { substance: string; reaction?: string }[];
  };
  withheld: string[];
  breakGlass: boolean;
  repeatCaller: { cases96h: number; flagged: boolean };
  /** A restricted record: what is withheld from every role until a break-glass read. */
  restricted: { confidentiality: 'R' | 'V'; withheld: string[] } | null;
  /** The record's version, sent with an edit (a record changed since is refused). */
  version: number;
}

export interface EmergencyContact {
  relationship?: string;
  name?: string;
  phone?: string;
}

/** What a break-glass read of a restricted record releases. */
export interface RestrictedFields {
  patientId: string;
  confidentiality: 'R' | 'V';
  fields: {
    phone?: string;
    otherPhones?: { use: string; number: string }[];
    address?: string;
    postcode?: string;
    otherAddresses?: { use: string; text: string; postcode?: string }[];
    registeredPractice?: { odsCode: string; name?: string };
    nominatedPharmacy?: { odsCode: string; name?: string };
    emergencyContacts?: EmergencyContact[];
  };
}

export interface PatientSummary {
  patientId: string;
  givenName: string;
  familyName: string;
  dateOfBirth: string;
  ageYears: number;
  sex: 'female' | 'male' | 'other' | 'unknown';
  nhsNumber: string | null;
  postcode: string | null;
  addressLine: string | null;
  practice: string | null;
  homeSiteId: string;
  deceasedAt?: string | null;
  restricted?: boolean;
  score: number;
  match: { dateOfBirth?: 'exact' | 'day_month_swapped' | 'year' } & Record<string, string>;
}

/** A queue row's patient: who, and their flags (special notes by kind, or withheld; repeat caller). */
export interface QueuePatient {
  patientId: string;
  name: string;
  ageYears: number;
  sex: 'female' | 'male' | 'other' | 'unknown';
  /** 'withheld': the record is outside the reader's sites (break-glass on the case reads it). */
  specialNotes: SpecialNote['kind'][] | 'withheld';
  repeatCaller: boolean;
}

export interface QueueCase {
  caseId: string;
  siteId: string;
  status: string;
  claimedBy: string | null;
  /** "Dr A Khan": who holds the case, by name. */
  claimedByName?: string | null;
  /** Null when no patient is identified yet; absent on a row rebuilt from a case read. */
  patient?: QueuePatient | null;
  /** Set on a row rebuilt from a case read (which carries the id, not the patient's facts). */
  patientId?: string | null;
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
  /** The patient's date of death, when the identified patient has died. */
  patientDeceasedAt?: string;
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

/* The directory of services (issue 15): one set of types, core's (packages/core/src/directory/types.ts). */
export { SERVICE_TYPES } from '@holdfast/core';
export type {
  CapacityStatus,
  DirectorySearchQuery,
  DirectorySearchResult,
  DirectoryService,
  ExclusionReason,
  OpeningSession,
  OpeningTimes,
  RankedService,
  ReferralRoute,
  ServiceType,
  Weekday,
} from '@holdfast/core';
