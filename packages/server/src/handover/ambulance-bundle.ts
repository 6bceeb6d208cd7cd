import {
  caseEncounter,
  caseSubject,
  messageBundle,
  messageResourceId,
  patientResource,
  ref,
  triageResponse,
  whereNowLocation,
} from '../fhir/case-message.ts';
import type { PatientRecordView } from '../patients/service.ts';

/**
 * The 999 handover as a FHIR R4 message Bundle in the Booking and Referral Standard pattern:
 * MessageHeader → ServiceRequest (the request for an ambulance, with its category as priority and
 * code), the Patient when identified, the caller as a RelatedPerson with the call-back number, the
 * Encounter of this call, the Location where the patient is now, and the triage path as a
 * QuestionnaireResponse. The MessageHeader id is the outbox message id (the receiver's idempotency
 * key).
 */
export interface AmbulanceRequestInput {
  messageId: string;
  caseId: string;
  sentAtIso: string;
  source: { node: string; tenant: string };
  destination: { name: string; endpoint: string; odsCode: string | null };
  category: 1 | 2 | 3 | 4;
  dxCode: string;
  dispositionLabel: string;
  presentingComplaint: string;
  location: string;
  caller: { name: string; relationship: string; callbackNumber: string };
  /** Question and answer in the order they were asked (superseded answers left out). */
  triagePath: { question: string; answer: string }[];
  /** Special notes the crew must know (DNACPR, end of life, care plan, safeguarding where allowed). */
  specialNotes: { kind: string; text: string }[];
  patient: PatientRecordView | null;
}

export function ambulanceRequestBundle(input: AmbulanceRequestInput): Record<string, unknown> {
  const uuidFrom = messageResourceId(input.messageId);
  const ids = {
    request: uuidFrom(1),
    encounter: uuidFrom(2),
    location: uuidFrom(3),
    caller: uuidFrom(4),
    patient: uuidFrom(5),
    triage: uuidFrom(6),
  };
  const patient = input.patient ? patientResource(ids.patient, input.patient) : null;
  const subject = caseSubject(patient, ids.patient);
  const entries: Record<string, unknown>[] = [
    {
      resourceType: 'MessageHeader',
      id: input.messageId,
      eventCoding: {
        system: 'https://fhir.nhs.uk/CodeSystem/message-event',
        code: 'servicerequest-request',
        display: 'Ambulance request',
      },
      destination: [{ name: input.destination.name, endpoint: input.destination.endpoint }],
      source: {
        name: `Holdfast ${input.source.node}`,
        endpoint: `urn:holdfast:${input.source.tenant}:${input.source.node}`,
      },
      reason: { text: 'Request for an ambulance (999 handover)' },
      focus: [ref('ServiceRequest', ids.request)],
    },
    {
      resourceType: 'ServiceRequest',
      id: ids.request,
      identifier: [{ system: 'urn:holdfast:case', value: input.caseId }],
      status: 'active',
      intent: 'order',
      priority: input.category <= 2 ? 'stat' : 'urgent',
      category: [{ text: `Ambulance response category ${input.category}` }],
      code: { text: `Ambulance response, category ${input.category}` },
      reasonCode: [
        { text: input.presentingComplaint },
        { text: `${input.dxCode}: ${input.dispositionLabel}` },
      ],
      subject,
      encounter: ref('Encounter', ids.encounter),
      authoredOn: input.sentAtIso,
      locationReference: [ref('Location', ids.location)],
      supportingInfo: [ref('QuestionnaireResponse', ids.triage), ref('RelatedPerson', ids.caller)],
      ...(input.specialNotes.length > 0
        ? { note: input.specialNotes.map((n) => ({ text: `${n.kind.replace(/_/g, ' ')}: ${n.text}` })) }
        : {}),
    },
    caseEncounter(ids.encounter, input.caseId, subject),
    whereNowLocation(ids.location, input.location),
    {
      resourceType: 'RelatedPerson',
      id: ids.caller,
      patient: subject,
      relationship: [{ text: input.caller.relationship }],
      name: [{ text: input.caller.name }],
      telecom: [{ system: 'phone', value: input.caller.callbackNumber, use: 'mobile' }],
    },
    triageResponse(ids.triage, subject, input.sentAtIso, input.triagePath),
  ];
  if (patient) entries.splice(2, 0, patient);
  return messageBundle(input.messageId, input.sentAtIso, entries);
}
