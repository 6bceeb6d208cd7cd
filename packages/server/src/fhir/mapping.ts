import {
  NEWS2_PARAMETERS,
  scoreNews2,
  type CaseStatus,
  type News2Observations,
  type News2Parameter,
  type PatientRecord,
  type SpecialNoteKind,
} from '@holdfast/core';
import type {
  Address,
  Bundle,
  BundleEntry,
  CodeableConcept,
  Coding,
  Composition,
  CompositionSection,
  ContactPoint,
  Encounter,
  Flag,
  HumanName,
  Identifier,
  Location,
  MessageHeader,
  Observation,
  Organization,
  Patient,
  Period,
  Practitioner,
  PractitionerRole,
  QuestionnaireResponse,
  Reference,
  Resource,
  ServiceRequest,
} from '@medplum/fhirtypes';
import {
  ACT_CODE_SYSTEM,
  BARS_MESSAGE_EVENTS_SYSTEM,
  ENCOUNTER_REPORT_SNOMED,
  FLAG_CATEGORY_SYSTEM,
  HOLDFAST_CASE_SYSTEM,
  HOLDFAST_DISPOSITION_SYSTEM,
  HOLDFAST_NEWS2_PARAMETER_SYSTEM,
  HOLDFAST_NOTE_KIND_SYSTEM,
  HOLDFAST_PROVIDER_SYSTEM,
  HOLDFAST_ROLE_SYSTEM,
  HOLDFAST_SITE_SYSTEM,
  HOLDFAST_SYSTEM_BASE,
  HOLDFAST_USER_SYSTEM,
  LOINC,
  NEWS2_TOTAL_SNOMED,
  NHS_NUMBER_SYSTEM,
  NHS_NUMBER_VERIFICATION_CODES,
  NHS_NUMBER_VERIFICATION_EXTENSION,
  NHS_NUMBER_VERIFICATION_SYSTEM,
  NOMINATED_PHARMACY_EXTENSION,
  OBSERVATION_CATEGORY_SYSTEM,
  ODS_ORGANISATION_SYSTEM,
  ODS_SITE_SYSTEM,
  RFC_3986,
  SNOMED,
  UCUM,
  type NhsNumberVerificationCode,
} from './codes.ts';

/**
 * FHIR R4 resources from plain Holdfast data (C19). Every function here is pure: it takes data
 * already read (by the FHIR API's service, or later by the outbox) and returns a resource, with no
 * store, clock or randomness, so the same case always maps to the same resources. Nothing here
 * checks the result: `validateOutgoing` (validate.ts) does, before anything leaves.
 *
 * References between resources are relative (`Patient/<id>`); in a Bundle every entry's fullUrl is
 * `<base>/<type>/<id>`, so they resolve inside the Bundle (FHIR R4, "Resolving references in
 * Bundles").
 */

// ---------------------------------------------------------------------------------------------
// Inputs: plain data, shaped by what Holdfast knows rather than by FHIR.

export interface PeriodInput {
  /** ISO date or date-time. */
  start?: string;
  end?: string;
}

export interface OrganizationInput {
  /** The resource id: the tenant for the provider, a generated id for a practice or pharmacy. */
  id: string;
  name: string;
  odsCode?: string;
  /** The provider itself (identified by its tenant as well). */
  tenant?: string;
}

export interface SiteInput {
  siteId: string;
  name: string;
  /** The provider's Organization id. */
  organizationId: string;
  odsSiteCode?: string;
}

export interface PractitionerInput {
  userId: string;
  displayName: string;
  roles: readonly string[];
  organizationId: string;
  siteIds: readonly string[];
}

export interface PatientNameInput {
  use: 'official' | 'usual' | 'old' | 'nickname' | 'maiden';
  family: string;
  given: readonly string[];
  period?: PeriodInput;
}

export interface PatientAddressInput {
  use: 'home' | 'temp' | 'work' | 'old' | 'other';
  /** The address as one text (Holdfast keeps addresses as text plus postcode). */
  text?: string;
  postcode?: string;
  period?: PeriodInput;
}

export interface PatientTelecomInput {
  system: 'phone' | 'sms' | 'email';
  use: 'home' | 'mobile' | 'work' | 'temp' | 'old' | 'other';
  value: string;
  /** 1 is the preferred way to reach the patient. */
  rank?: number;
  period?: PeriodInput;
}

export interface PatientInput {
  patientId: string;
  nhsNumber?: string;
  /** UK Core verification status; Holdfast traces nothing against PDS itself, so "02" by default. */
  nhsNumberVerification?: NhsNumberVerificationCode;
  names: readonly PatientNameInput[];
  birthDate: string;
  gender?: 'female' | 'male' | 'other' | 'unknown';
  addresses: readonly PatientAddressInput[];
  telecoms: readonly PatientTelecomInput[];
  registeredPractice?: { odsCode: string; name?: string };
  nominatedPharmacy?: { odsCode: string; name?: string };
  /** The provider holding the record (Patient.managingOrganization). */
  managingOrganizationId?: string;
  /** The date (and time) of death, when the record says the patient has died. */
  deceasedAt?: string;
  /** A restricted record (PDS label R or V): the receiver is told, as the national service labels it. */
  confidentiality?: 'R' | 'V';
}

const CONFIDENTIALITY_SYSTEM = 'http://terminology.hl7.org/CodeSystem/v3-Confidentiality';

/** A special patient note as the reader may see it: the text may be withheld from their role. */
export type SpecialNoteInput = { kind: SpecialNoteKind; text?: string };

export interface TriageStepInput {
  nodeId: string;
  question: string;
  answer: string;
}

export interface TriagePathInput {
  pathwayId: string;
  pathwayVersion: string;
  /** The questions asked and answered, in the order asked (changed answers as they now stand). */
  steps: readonly TriageStepInput[];
  /** The walk reached a disposition. */
  complete: boolean;
  /** When the last answer was given (ISO). */
  lastAnsweredAt?: string;
}

export interface DispositionInput {
  kind: string;
  dxCode: string;
  label: string;
  timeframeMinutes: number;
  ambulanceCategory?: number | null;
  careAdvice: readonly string[];
  /** From the shipped sample protocols: not clinically validated, and the resources say so. */
  sample: boolean;
}

export interface ConsultationInput {
  /** The ledger event that recorded it (unique, stable). */
  consultationId: string;
  recordedAt: string;
  clinicianId: string;
  history?: string;
  examination?: string;
  observations?: News2Observations;
  /** NEWS2 was not computed (the patient is under 16 or pregnant): the parameters go without a total. */
  news2NotApplicable?: boolean;
  assessment?: string;
  plan?: string;
  safetyNetting?: string;
}

export interface CaseInput {
  caseId: string;
  siteId: string;
  status: CaseStatus;
  receivedAt: string;
  closedAt?: string | null;
  patientId: string | null;
  presentingComplaint: string;
  /** Where the patient is now, as told by the caller. */
  location: string;
  disposition: DispositionInput | null;
  /** By when the disposition must be acted on (ISO), when the case was queued. */
  deadline?: string | null;
  claimedBy?: string | null;
  triage: TriagePathInput | null;
  consultations: readonly ConsultationInput[];
  /** The provider's Organization id. */
  organizationId: string;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/** A reference any typed element accepts (the target's type is in the string). */
type AnyReference = Reference<never>;

const ref = (type: string, id: string, display?: string): AnyReference => ({
  reference: `${type}/${id}`,
  ...(display ? { display } : {}),
});

const period = (p?: PeriodInput): { period?: Period } =>
  p && (p.start || p.end)
    ? { period: { ...(p.start ? { start: p.start } : {}), ...(p.end ? { end: p.end } : {}) } }
    : {};

const escapeXml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** XHTML narrative of paragraphs (the text is escaped: it is what staff typed). */
export function narrative(paragraphs: readonly string[]): { status: 'generated'; div: string } {
  const body = paragraphs.map((p) => `<p>${escapeXml(p)}</p>`).join('');
  return { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${body}</div>` };
}

/** FHIR ids: at most 64 of A-Z a-z 0-9 - and `.`. */
export function fhirId(...parts: string[]): string {
  return parts
    .join('-')
    .replace(/[^A-Za-z0-9\-.]/g, '-')
    .slice(0, 64);
}

export const SAMPLE_NOTICE = 'Sample content for demonstration — not clinically validated';

// ---------------------------------------------------------------------------------------------
// Patient.

/**
 * The patient record as the mapping's input. The record holds no periods yet, so none are sent;
 * a record that gains name and address history maps it through `PatientInput` unchanged.
 */
export function patientInputFromRecord(
  patientId: string,
  record: Omit<Partial<PatientRecord>, 'specialNotes'> &
    Pick<PatientRecord, 'givenName' | 'familyName' | 'dateOfBirth'>,
  managingOrganizationId?: string,
): PatientInput {
  const telecoms: PatientTelecomInput[] = [];
  if (record.phone) telecoms.push({ system: 'phone', use: 'home', value: record.phone, rank: 1 });
  for (const p of record.otherPhones ?? []) telecoms.push({ system: 'phone', use: p.use, value: p.number });
  const addresses: PatientAddressInput[] = [];
  if (record.address || record.postcode)
    addresses.push({
      use: 'home',
      ...(record.address ? { text: record.address } : {}),
      ...(record.postcode ? { postcode: record.postcode } : {}),
    });
  for (const a of record.otherAddresses ?? [])
    addresses.push({
      use: a.use === 'temporary' ? 'temp' : a.use,
      text: a.text,
      ...(a.postcode ? { postcode: a.postcode } : {}),
    });
  return {
    patientId,
    ...(record.nhsNumber ? { nhsNumber: record.nhsNumber } : {}),
    names: [
      { use: 'official', family: record.familyName, given: record.givenName.split(/\s+/).filter(Boolean) },
    ],
    birthDate: record.dateOfBirth,
    ...(record.gender ? { gender: record.gender } : record.sex ? { gender: record.sex } : {}),
    addresses,
    telecoms,
    ...(record.registeredPractice ? { registeredPractice: record.registeredPractice } : {}),
    ...(record.nominatedPharmacy ? { nominatedPharmacy: record.nominatedPharmacy } : {}),
    ...(managingOrganizationId ? { managingOrganizationId } : {}),
    ...(record.deceasedAt ? { deceasedAt: record.deceasedAt } : {}),
    ...(record.confidentiality === 'R' || record.confidentiality === 'V'
      ? { confidentiality: record.confidentiality }
      : {}),
  };
}

export function nhsNumberIdentifier(
  nhsNumber: string,
  verification: NhsNumberVerificationCode = '02',
): Identifier {
  return {
    extension: [
      {
        url: NHS_NUMBER_VERIFICATION_EXTENSION,
        valueCodeableConcept: {
          coding: [
            {
              system: NHS_NUMBER_VERIFICATION_SYSTEM,
              code: verification,
              display: NHS_NUMBER_VERIFICATION_CODES[verification],
            },
          ],
        },
      },
    ],
    system: NHS_NUMBER_SYSTEM,
    value: nhsNumber,
  };
}

const odsReference = (odsCode: string, display?: string): AnyReference => ({
  identifier: { system: ODS_ORGANISATION_SYSTEM, value: odsCode },
  ...(display ? { display } : {}),
});

export function patientResource(input: PatientInput): Patient {
  const name: HumanName[] = input.names.map((n) => ({
    use: n.use,
    family: n.family,
    given: [...n.given],
    ...period(n.period),
  }));
  const address: Address[] = input.addresses.map((a) => ({
    ...(a.use === 'other' ? {} : { use: a.use }),
    ...(a.text ? { text: a.text } : {}),
    ...(a.postcode ? { postalCode: a.postcode } : {}),
    ...period(a.period),
  }));
  const telecom: ContactPoint[] = input.telecoms.map((t) => ({
    system: t.system,
    value: t.value,
    ...(t.use === 'other' ? {} : { use: t.use }),
    ...(t.rank !== undefined ? { rank: t.rank } : {}),
    ...period(t.period),
  }));
  return {
    resourceType: 'Patient',
    id: input.patientId,
    ...(input.confidentiality
      ? {
          meta: {
            security: [
              {
                system: CONFIDENTIALITY_SYSTEM,
                code: input.confidentiality,
                display: input.confidentiality === 'V' ? 'very restricted' : 'restricted',
              },
            ],
          },
        }
      : {}),
    ...(input.nominatedPharmacy
      ? {
          extension: [
            {
              url: NOMINATED_PHARMACY_EXTENSION,
              valueReference: odsReference(input.nominatedPharmacy.odsCode, input.nominatedPharmacy.name),
            },
          ],
        }
      : {}),
    ...(input.nhsNumber
      ? { identifier: [nhsNumberIdentifier(input.nhsNumber, input.nhsNumberVerification)] }
      : {}),
    name,
    ...(telecom.length > 0 ? { telecom } : {}),
    ...(input.gender ? { gender: input.gender } : {}),
    birthDate: input.birthDate,
    ...(input.deceasedAt ? { deceasedDateTime: input.deceasedAt } : {}),
    ...(address.length > 0 ? { address } : {}),
    ...(input.registeredPractice
      ? {
          generalPractitioner: [
            odsReference(input.registeredPractice.odsCode, input.registeredPractice.name),
          ],
        }
      : {}),
    ...(input.managingOrganizationId
      ? { managingOrganization: ref('Organization', input.managingOrganizationId) }
      : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Organisation, site, staff.

export function organizationResource(input: OrganizationInput): Organization {
  const identifier: Identifier[] = [];
  if (input.odsCode) identifier.push({ system: ODS_ORGANISATION_SYSTEM, value: input.odsCode });
  if (input.tenant) identifier.push({ system: HOLDFAST_PROVIDER_SYSTEM, value: input.tenant });
  return {
    resourceType: 'Organization',
    id: input.id,
    ...(identifier.length > 0 ? { identifier } : {}),
    active: true,
    name: input.name,
  };
}

export function locationResource(input: SiteInput): Location {
  return {
    resourceType: 'Location',
    id: input.siteId,
    identifier: [
      ...(input.odsSiteCode ? [{ system: ODS_SITE_SYSTEM, value: input.odsSiteCode }] : []),
      { system: HOLDFAST_SITE_SYSTEM, value: input.siteId },
    ],
    status: 'active',
    name: input.name,
    mode: 'instance',
    managingOrganization: ref('Organization', input.organizationId),
  };
}

export function practitionerResource(input: PractitionerInput): Practitioner {
  return {
    resourceType: 'Practitioner',
    id: input.userId,
    identifier: [{ system: HOLDFAST_USER_SYSTEM, value: input.userId }],
    active: true,
    name: [{ text: input.displayName }],
  };
}

export function practitionerRoleResource(input: PractitionerInput): PractitionerRole {
  return {
    resourceType: 'PractitionerRole',
    id: fhirId(input.userId, 'role'),
    active: true,
    practitioner: ref('Practitioner', input.userId, input.displayName),
    organization: ref('Organization', input.organizationId),
    code: input.roles.map((role) => ({ coding: [{ system: HOLDFAST_ROLE_SYSTEM, code: role }], text: role })),
    location: input.siteIds.map((s) => ref('Location', s)),
  };
}

// ---------------------------------------------------------------------------------------------
// The case: Encounter, ServiceRequest, QuestionnaireResponse, Observations, Composition.

/** Encounter status (R4 EncounterStatus) for a case status. */
export function encounterStatus(status: CaseStatus): Encounter['status'] {
  switch (status) {
    case 'call_received':
      return 'arrived';
    case 'answered':
    case 'in_triage':
      return 'in-progress';
    case 'disposition_reached':
    case 'queued':
    case 'claimed':
    case 'ambulance_requested':
    case 'referral_pending':
    case 'follow_up_arranged':
      return 'triaged';
    case 'in_consultation':
      return 'in-progress';
    case 'abandoned':
      return 'cancelled';
    case 'closed':
      return 'finished';
    // The call ended without a confirmed disposition (hung up, wrong number, transferred): it took
    // place, and nothing follows from it.
    case 'call_ended':
      return 'finished';
  }
}

export function encounterResource(c: CaseInput): Encounter {
  return {
    resourceType: 'Encounter',
    id: c.caseId,
    identifier: [{ system: HOLDFAST_CASE_SYSTEM, value: c.caseId }],
    status: encounterStatus(c.status),
    // An urgent-care call is a remote encounter (HL7 v3 ActCode VR, "virtual").
    class: { system: ACT_CODE_SYSTEM, code: 'VR', display: 'virtual' },
    ...(c.patientId ? { subject: ref('Patient', c.patientId) } : {}),
    ...(c.claimedBy ? { participant: [{ individual: ref('Practitioner', c.claimedBy) }] } : {}),
    period: { start: c.receivedAt, ...(c.closedAt ? { end: c.closedAt } : {}) },
    reasonCode: [{ text: c.presentingComplaint }],
    location: [{ location: ref('Location', c.siteId) }],
    serviceProvider: ref('Organization', c.organizationId),
  };
}

function serviceRequestStatus(status: CaseStatus): ServiceRequest['status'] {
  if (status === 'closed') return 'completed';
  if (status === 'abandoned' || status === 'call_ended') return 'revoked';
  return 'active';
}

/** Ambulance categories 1–2 and dispositions within the hour are the most urgent. */
function serviceRequestPriority(d: DispositionInput): ServiceRequest['priority'] {
  if (d.ambulanceCategory === 1) return 'stat';
  if (d.ambulanceCategory === 2 || d.timeframeMinutes <= 60) return 'asap';
  if (d.timeframeMinutes <= 6 * 60) return 'urgent';
  return 'routine';
}

/**
 * The disposition as a request for care (BaRS: the referral's focus). Undefined while the case has
 * no disposition: there is nothing to ask of anyone yet.
 */
export function serviceRequestResource(c: CaseInput): ServiceRequest | undefined {
  const d = c.disposition;
  if (!d || !c.patientId) return undefined;
  const supportingInfo: AnyReference[] = [];
  if (c.triage) supportingInfo.push(ref('QuestionnaireResponse', c.caseId));
  const notes = [...(d.sample ? [SAMPLE_NOTICE] : []), ...d.careAdvice.map((a) => `Care advice: ${a}`)];
  return {
    resourceType: 'ServiceRequest',
    id: c.caseId,
    identifier: [{ system: HOLDFAST_CASE_SYSTEM, value: c.caseId }],
    status: serviceRequestStatus(c.status),
    intent: 'order',
    priority: serviceRequestPriority(d),
    code: {
      coding: [{ system: HOLDFAST_DISPOSITION_SYSTEM, code: d.dxCode, display: d.label }],
      text: d.label,
    },
    subject: ref('Patient', c.patientId),
    encounter: ref('Encounter', c.caseId),
    occurrencePeriod: {
      start: c.receivedAt,
      end: c.deadline ?? new Date(Date.parse(c.receivedAt) + d.timeframeMinutes * 60_000).toISOString(),
    },
    authoredOn: c.receivedAt,
    requester: ref('Organization', c.organizationId),
    reasonCode: [{ text: c.presentingComplaint }],
    ...(supportingInfo.length > 0 ? { supportingInfo } : {}),
    ...(notes.length > 0 ? { note: notes.map((text) => ({ text })) } : {}),
  };
}

/** The triage path: each question asked and its answer, in the order asked. */
export function questionnaireResponseResource(c: CaseInput): QuestionnaireResponse | undefined {
  const t = c.triage;
  if (!t) return undefined;
  return {
    resourceType: 'QuestionnaireResponse',
    id: c.caseId,
    identifier: { system: HOLDFAST_CASE_SYSTEM, value: c.caseId },
    questionnaire: `${HOLDFAST_SYSTEM_BASE}/Questionnaire/${fhirId(t.pathwayId)}|${t.pathwayVersion}`,
    status: t.complete ? 'completed' : 'in-progress',
    ...(c.patientId ? { subject: ref('Patient', c.patientId) } : {}),
    encounter: ref('Encounter', c.caseId),
    authored: t.lastAnsweredAt ?? c.receivedAt,
    item: t.steps.map((s) => ({
      linkId: s.nodeId,
      text: s.question,
      answer: [{ valueString: s.answer }],
    })),
  };
}

interface ParameterCoding {
  display: string;
  codings: Coding[];
  unit?: { unit: string; code: string };
}

/** How each NEWS2 parameter is coded: LOINC vital-sign codes where there is one, and its name. */
const NEWS2_PARAMETER_CODES: Record<News2Parameter, ParameterCoding> = {
  respirationRate: {
    display: 'Respiratory rate',
    codings: [{ system: LOINC, code: '9279-1', display: 'Respiratory rate' }],
    unit: { unit: 'breaths/minute', code: '/min' },
  },
  spo2: {
    display: 'Oxygen saturation',
    codings: [
      {
        system: LOINC,
        code: '59408-5',
        display: 'Oxygen saturation in Arterial blood by Pulse oximetry',
      },
    ],
    unit: { unit: '%', code: '%' },
  },
  airOrOxygen: { display: 'Air or oxygen', codings: [] },
  systolicBp: {
    display: 'Systolic blood pressure',
    codings: [{ system: LOINC, code: '8480-6', display: 'Systolic blood pressure' }],
    unit: { unit: 'mmHg', code: 'mm[Hg]' },
  },
  pulse: {
    display: 'Pulse rate',
    codings: [{ system: LOINC, code: '8867-4', display: 'Heart rate' }],
    unit: { unit: 'beats/minute', code: '/min' },
  },
  consciousness: { display: 'Level of consciousness (ACVPU)', codings: [] },
  temperature: {
    display: 'Body temperature',
    codings: [{ system: LOINC, code: '8310-5', display: 'Body temperature' }],
    unit: { unit: 'C', code: 'Cel' },
  },
};

const ACVPU_VALUES: Record<string, { code: string; display: string }> = {
  alert: { code: '248234008', display: 'Mentally alert' },
  new_confusion: { code: '130987000', display: 'Acute confusion' },
  voice: { code: '300202002', display: 'Responds to voice' },
  pain: { code: '450847001', display: 'Responds to pain' },
  unresponsive: { code: '422768004', display: 'Unresponsive' },
};

const AIR_OR_OXYGEN_VALUES: Record<string, { code: string; display: string }> = {
  air: { code: '722742002', display: 'Breathing room air' },
  oxygen: { code: '371825009', display: 'Patient on oxygen' },
};

/** Short, stable names of the NEWS2 observations in their ids (an id is at most 64 characters). */
export const NEWS2_ID_SUFFIX: Record<News2Parameter | 'total', string> = {
  respirationRate: 'rr',
  spo2: 'spo2',
  airOrOxygen: 'o2',
  systolicBp: 'sbp',
  pulse: 'pulse',
  consciousness: 'acvpu',
  temperature: 'temp',
  total: 'news2',
};

/**
 * `<case id>-<last 12 characters of the consultation's event id>-<parameter>`: the case comes first
 * so a reader can find the case an Observation belongs to from its id alone.
 */
export function news2ObservationId(
  caseId: string,
  consultationId: string,
  parameter: News2Parameter | 'total',
): string {
  return fhirId(caseId, consultationObservationKey(consultationId), NEWS2_ID_SUFFIX[parameter]);
}

export function consultationObservationKey(consultationId: string): string {
  return consultationId.replace(/[^A-Za-z0-9]/g, '').slice(-12);
}

function parameterCode(parameter: News2Parameter): CodeableConcept {
  const c = NEWS2_PARAMETER_CODES[parameter];
  return {
    coding: [...c.codings, { system: HOLDFAST_NEWS2_PARAMETER_SYSTEM, code: parameter, display: c.display }],
    text: c.display,
  };
}

const vitalSigns: CodeableConcept[] = [
  { coding: [{ system: OBSERVATION_CATEGORY_SYSTEM, code: 'vital-signs', display: 'Vital Signs' }] },
];

/**
 * One Observation per NEWS2 parameter recorded in a consultation, then the total score (derived
 * from them) when all seven were scored. Parameters left unrecorded produce no Observation; a
 * partial set has no total (the sum of what was measured is not a NEWS2 score), and neither has a
 * patient NEWS2 does not apply to (under 16, pregnant).
 */
export function news2Observations(c: CaseInput, consultation: ConsultationInput): Observation[] {
  const obs = consultation.observations;
  if (!obs || !c.patientId) return [];
  const base = {
    resourceType: 'Observation' as const,
    status: 'final' as const,
    subject: ref('Patient', c.patientId),
    encounter: ref('Encounter', c.caseId),
    effectiveDateTime: consultation.recordedAt,
    performer: [ref('Practitioner', consultation.clinicianId)],
  };
  const out: Observation[] = [];
  for (const parameter of NEWS2_PARAMETERS) {
    const value = obs[parameter];
    if (value === undefined || value === null) continue;
    const id = news2ObservationId(c.caseId, consultation.consultationId, parameter);
    const coding = NEWS2_PARAMETER_CODES[parameter];
    if (parameter === 'consciousness' || parameter === 'airOrOxygen') {
      const table = parameter === 'consciousness' ? ACVPU_VALUES : AIR_OR_OXYGEN_VALUES;
      const v = table[String(value)];
      out.push({
        ...base,
        id,
        category: vitalSigns,
        code: parameterCode(parameter),
        valueCodeableConcept: {
          ...(v ? { coding: [{ system: SNOMED, code: v.code, display: v.display }] } : {}),
          text: String(value).replace('_', ' '),
        },
      });
      continue;
    }
    out.push({
      ...base,
      id,
      category: vitalSigns,
      code: parameterCode(parameter),
      valueQuantity: { value: Number(value), unit: coding.unit!.unit, system: UCUM, code: coding.unit!.code },
      ...(parameter === 'spo2' ? { method: { text: `SpO2 scale ${obs.spo2Scale ?? 1}` } } : {}),
    });
  }
  const score = scoreNews2(obs);
  if (score.total === null || score.band === null || consultation.news2NotApplicable) return out;
  out.push({
    ...base,
    id: news2ObservationId(c.caseId, consultation.consultationId, 'total'),
    category: [{ coding: [{ system: OBSERVATION_CATEGORY_SYSTEM, code: 'survey', display: 'Survey' }] }],
    code: { coding: [NEWS2_TOTAL_SNOMED], text: 'NEWS2 total score' },
    valueQuantity: { value: score.total, unit: 'score', system: UCUM, code: '{score}' },
    interpretation: [{ text: `Clinical risk: ${score.band.replace('_', '-')}` }],
    derivedFrom: out.map((o) => ref('Observation', o.id!)),
  });
  return out;
}

const NOTE_CATEGORY: Record<SpecialNoteKind, { code: string; display: string }> = {
  end_of_life: { code: 'clinical', display: 'Clinical' },
  dnacpr: { code: 'clinical', display: 'Clinical' },
  care_plan: { code: 'clinical', display: 'Clinical' },
  safeguarding: { code: 'safety', display: 'Safety' },
  other: { code: 'admin', display: 'Administrative' },
};

const NOTE_LABEL: Record<SpecialNoteKind, string> = {
  end_of_life: 'End of life',
  dnacpr: 'DNACPR',
  care_plan: 'Care plan',
  safeguarding: 'Safeguarding',
  other: 'Special note',
};

/** Special patient notes as Flags; a note whose text the reader may not see says only its kind. */
export function specialNoteFlags(patientId: string, notes: readonly SpecialNoteInput[]): Flag[] {
  return notes.map((note, i) => ({
    resourceType: 'Flag',
    id: fhirId(patientId, 'note', String(i)),
    status: 'active',
    category: [
      {
        coding: [
          {
            system: FLAG_CATEGORY_SYSTEM,
            code: NOTE_CATEGORY[note.kind].code,
            display: NOTE_CATEGORY[note.kind].display,
          },
        ],
      },
    ],
    code: {
      coding: [{ system: HOLDFAST_NOTE_KIND_SYSTEM, code: note.kind, display: NOTE_LABEL[note.kind] }],
      text: note.text ? `${NOTE_LABEL[note.kind]}: ${note.text}` : NOTE_LABEL[note.kind],
    },
    subject: ref('Patient', patientId),
  }));
}

function consultationParagraphs(c: ConsultationInput): string[] {
  const parts: [string, string | undefined][] = [
    ['History', c.history],
    ['Examination', c.examination],
    ['Assessment', c.assessment],
    ['Plan', c.plan],
    ['Safety netting', c.safetyNetting],
  ];
  return parts.filter(([, v]) => v).map(([k, v]) => `${k}: ${v}`);
}

/**
 * The case as a clinical document: triage, disposition, consultations (notes and NEWS2) and the
 * patient's special notes, each section pointing at the resources that carry the coded data.
 */
export function compositionResource(
  c: CaseInput,
  parts: { flags: readonly Flag[]; observations: readonly Observation[] },
): Composition | undefined {
  if (!c.patientId) return undefined;
  const sections: CompositionSection[] = [];
  if (parts.flags.length > 0)
    sections.push({
      title: 'Special patient notes',
      text: narrative(parts.flags.map((f) => f.code.text ?? '')),
      entry: parts.flags.map((f) => ref('Flag', f.id!)),
    });
  if (c.triage)
    sections.push({
      title: 'Triage',
      text: narrative([
        `Pathway ${c.triage.pathwayId} (version ${c.triage.pathwayVersion})`,
        ...c.triage.steps.map((s) => `${s.question} — ${s.answer}`),
      ]),
      entry: [ref('QuestionnaireResponse', c.caseId)],
    });
  if (c.disposition)
    sections.push({
      title: 'Disposition',
      text: narrative([
        `${c.disposition.dxCode}: ${c.disposition.label}`,
        ...(c.disposition.sample ? [SAMPLE_NOTICE] : []),
        ...c.disposition.careAdvice.map((a) => `Care advice: ${a}`),
      ]),
      entry: [ref('ServiceRequest', c.caseId)],
    });
  for (const consultation of c.consultations) {
    const prefix = fhirId(c.caseId, consultationObservationKey(consultation.consultationId));
    const obs = parts.observations.filter((o) => o.id!.startsWith(`${prefix}-`));
    const paragraphs = consultationParagraphs(consultation);
    sections.push({
      title: `Consultation at ${consultation.recordedAt}`,
      author: [ref('Practitioner', consultation.clinicianId)],
      text: narrative(paragraphs.length > 0 ? paragraphs : ['Observations recorded']),
      ...(obs.length > 0 ? { entry: obs.map((o) => ref('Observation', o.id!)) } : {}),
    });
  }
  return {
    resourceType: 'Composition',
    id: c.caseId,
    identifier: { system: HOLDFAST_CASE_SYSTEM, value: c.caseId },
    status: c.status === 'closed' || c.status === 'abandoned' ? 'final' : 'preliminary',
    type: { coding: [ENCOUNTER_REPORT_SNOMED], text: 'Urgent care encounter report' },
    subject: ref('Patient', c.patientId),
    encounter: ref('Encounter', c.caseId),
    date: c.closedAt ?? c.consultations.at(-1)?.recordedAt ?? c.receivedAt,
    author: [ref('Organization', c.organizationId)],
    title: 'Urgent care encounter report',
    section:
      sections.length > 0
        ? sections
        : [{ title: 'Call', text: narrative([`Presenting complaint: ${c.presentingComplaint}`]) }],
  };
}

/** Every resource of one case, in a stable order (no Bundle). */
export interface CaseResources {
  encounter: Encounter;
  serviceRequest?: ServiceRequest;
  questionnaireResponse?: QuestionnaireResponse;
  observations: Observation[];
  flags: Flag[];
  composition?: Composition;
}

export function caseResources(c: CaseInput, notes: readonly SpecialNoteInput[] = []): CaseResources {
  const observations = c.consultations.flatMap((k) => news2Observations(c, k));
  const flags = c.patientId ? specialNoteFlags(c.patientId, notes) : [];
  const serviceRequest = serviceRequestResource(c);
  const questionnaireResponse = questionnaireResponseResource(c);
  const composition = compositionResource(c, { flags, observations });
  return {
    encounter: encounterResource(c),
    ...(serviceRequest ? { serviceRequest } : {}),
    ...(questionnaireResponse ? { questionnaireResponse } : {}),
    observations,
    flags,
    ...(composition ? { composition } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Messages and documents.

export interface MessageInput {
  messageId: string;
  /** When the message is made (ISO): the Bundle's timestamp. */
  timestamp: string;
  /** BaRS message event, e.g. `servicerequest-request`. */
  event: string;
  /** This node's endpoint (MessageHeader.source.endpoint). */
  sourceEndpoint: string;
  destination: { endpoint: string; name?: string; receiverOdsCode?: string };
  senderOrganizationId: string;
  focus: Resource;
}

export function messageHeaderResource(m: MessageInput): MessageHeader {
  return {
    resourceType: 'MessageHeader',
    id: m.messageId,
    eventCoding: { system: BARS_MESSAGE_EVENTS_SYSTEM, code: m.event },
    destination: [
      {
        endpoint: m.destination.endpoint,
        ...(m.destination.name ? { name: m.destination.name } : {}),
        ...(m.destination.receiverOdsCode ? { receiver: odsReference(m.destination.receiverOdsCode) } : {}),
      },
    ],
    sender: ref('Organization', m.senderOrganizationId),
    source: { name: 'Holdfast', software: 'Holdfast', endpoint: m.sourceEndpoint },
    focus: [ref(m.focus.resourceType, m.focus.id!)],
  };
}

function entries(base: string, resources: readonly Resource[]): BundleEntry[] {
  const seen = new Set<string>();
  const out: BundleEntry[] = [];
  for (const r of resources) {
    const key = `${r.resourceType}/${r.id}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ fullUrl: `${base}/${key}`, resource: r });
  }
  return out;
}

/** A FHIR message (BaRS pattern): the MessageHeader first, then everything it needs. */
export function messageBundle(base: string, m: MessageInput, resources: readonly Resource[]): Bundle {
  return {
    resourceType: 'Bundle',
    id: m.messageId,
    identifier: { system: RFC_3986, value: `urn:uuid:${m.messageId}` },
    type: 'message',
    timestamp: m.timestamp,
    entry: entries(base, [messageHeaderResource(m), m.focus, ...resources]),
  };
}

/** A FHIR document: the Composition first, then every resource it or its sections point at. */
export function documentBundle(
  base: string,
  d: { documentId: string; timestamp: string },
  composition: Composition,
  resources: readonly Resource[],
): Bundle {
  return {
    resourceType: 'Bundle',
    id: d.documentId,
    identifier: { system: RFC_3986, value: `urn:uuid:${d.documentId}` },
    type: 'document',
    timestamp: d.timestamp,
    entry: entries(base, [composition, ...resources]),
  };
}

/** A search result page. */
export function searchsetBundle(
  base: string,
  resources: readonly Resource[],
  total: number,
  links: { relation: string; url: string }[],
): Bundle {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    total,
    link: links,
    entry: resources.map((r) => ({
      fullUrl: `${base}/${r.resourceType}/${r.id}`,
      resource: r,
      search: { mode: 'match' },
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// A case as a document and as a referral message: every resource they point at travels with them.

export interface CaseBundleInput {
  /** Where the resources live: fullUrls are `<base>/<type>/<id>`. */
  base: string;
  case: CaseInput;
  patient: PatientInput;
  notes: readonly SpecialNoteInput[];
  organization: OrganizationInput;
  site: SiteInput;
  /** Every clinician the case names (consultations, claim). */
  practitioners: readonly PractitionerInput[];
  timestamp: string;
}

function supportingResources(input: CaseBundleInput, resources: CaseResources): Resource[] {
  return [
    patientResource(input.patient),
    resources.encounter,
    ...(resources.serviceRequest ? [resources.serviceRequest] : []),
    ...(resources.questionnaireResponse ? [resources.questionnaireResponse] : []),
    ...resources.observations,
    ...resources.flags,
    organizationResource(input.organization),
    locationResource(input.site),
    ...input.practitioners.flatMap((p) => [practitionerResource(p), practitionerRoleResource(p)]),
  ];
}

/** The case as a FHIR document Bundle; undefined while no patient is identified. */
export function caseDocumentBundle(input: CaseBundleInput, documentId: string): Bundle | undefined {
  const resources = caseResources(input.case, input.notes);
  if (!resources.composition) return undefined;
  return documentBundle(
    input.base,
    { documentId, timestamp: input.timestamp },
    resources.composition,
    supportingResources(input, resources),
  );
}

/**
 * The case's disposition as a BaRS-style referral message (`servicerequest-request`); undefined
 * while there is no disposition or no identified patient.
 */
export function referralMessageBundle(
  input: CaseBundleInput,
  message: Pick<MessageInput, 'messageId' | 'sourceEndpoint' | 'destination'>,
): Bundle | undefined {
  const resources = caseResources(input.case, input.notes);
  if (!resources.serviceRequest) return undefined;
  return messageBundle(
    input.base,
    {
      ...message,
      timestamp: input.timestamp,
      event: 'servicerequest-request',
      senderOrganizationId: input.organization.id,
      focus: resources.serviceRequest,
    },
    supportingResources(input, resources),
  );
}
