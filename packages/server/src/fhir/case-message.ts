import type { PatientRecordView } from '../patients/service.ts';
import { nameBasedUuid } from '../node/ids.ts';
import type { NhsNumberVerificationCode } from './codes.ts';
import { nhsNumberIdentifier } from './mapping.ts';

/**
 * The resources every message we send about a case carries in the same shape (the 999 handover,
 * referrals, bookings): stable ids per message, the patient, the encounter, where the patient is,
 * the triage path, and the message Bundle around them.
 */
export type Json = Record<string, unknown>;

/** A reference to a resource inside the same Bundle. */
export const ref = (type: string, id: string) => ({ reference: `urn:uuid:${id}`, type });

/** A stable UUID per resource of one message, numbered: a message built again keeps its ids. */
export const messageResourceId = (messageId: string) => (n: number) => nameBasedUuid(`${messageId}/${n}`);

/** The subject of the case's resources: the patient when identified. */
export function caseSubject(patient: Json | null, patientId: string): Json {
  return patient ? ref('Patient', patientId) : { display: 'Patient not yet identified' };
}

/** The patient as identified on the case; `verification` is the NHS number's verification status. */
export function patientResource(
  id: string,
  p: PatientRecordView,
  verification?: NhsNumberVerificationCode,
): Json {
  return {
    resourceType: 'Patient',
    id,
    ...(p.nhsNumber
      ? {
          identifier: [nhsNumberIdentifier(p.nhsNumber, verification)],
        }
      : {}),
    name: [{ family: p.familyName, given: p.givenName ? [p.givenName] : [] }],
    ...(p.sex ? { gender: p.sex } : {}),
    ...(p.dateOfBirth ? { birthDate: p.dateOfBirth } : {}),
    ...(p.address
      ? { address: [{ text: p.address, ...(p.postcode ? { postalCode: p.postcode } : {}) }] }
      : {}),
  };
}

/** This contact, identified by the case. */
export function caseEncounter(id: string, caseId: string, subject: Json): Json {
  return {
    resourceType: 'Encounter',
    id,
    identifier: [{ system: 'urn:holdfast:case', value: caseId }],
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR', display: 'virtual' },
    subject,
  };
}

/** Where the patient is now, in the caller's words. */
export function whereNowLocation(id: string, location: string): Json {
  return {
    resourceType: 'Location',
    id,
    description: 'Where the patient is now, as the caller said',
    address: { text: location },
  };
}

/** The triage path: each question asked and the answer given, in order. */
export function triageResponse(
  id: string,
  subject: Json,
  authoredIso: string,
  path: { question: string; answer: string }[],
): Json {
  return {
    resourceType: 'QuestionnaireResponse',
    id,
    status: 'completed',
    subject,
    authored: authoredIso,
    item: path.map((q, i) => ({
      linkId: String(i + 1),
      text: q.question,
      answer: [{ valueString: q.answer }],
    })),
  };
}

/** The message Bundle: its own id is resource 0 of the message. */
export function messageBundle(messageId: string, timestampIso: string, entries: Json[]): Json {
  return {
    resourceType: 'Bundle',
    id: messageResourceId(messageId)(0),
    type: 'message',
    timestamp: timestampIso,
    entry: entries.map((resource) => ({ fullUrl: `urn:uuid:${resource.id as string}`, resource })),
  };
}
