import { BARS_MESSAGE_EVENTS_SYSTEM, FLAG_CATEGORY_SYSTEM, HOLDFAST_SYSTEM_BASE } from '../fhir/codes.ts';
import { nhsNumberIdentifier } from '../fhir/mapping.ts';
import { nameBasedUuid } from '../node/ids.ts';
import type { PatientRecordView } from '../patients/service.ts';

/**
 * The referral and the booking as FHIR R4 message Bundles in the Booking and Referral Standard
 * (BaRS) pattern. A referral: MessageHeader (event `servicerequest-request`) → ServiceRequest with
 * the disposition (Dx code and words) and its urgency (occurrence within the disposition's
 * timeframe), the Patient when identified (NHS number with its verification status), the Encounter
 * of this call, the Location where the patient is, the triage path as a QuestionnaireResponse, and a
 * Flag for a safeguarding concern and for each special note the receiver may see. A booking:
 * MessageHeader (event `booking-request`) → Appointment for a Slot of the service, naming the
 * referral's ServiceRequest. The MessageHeader id is the outbox message id (the receiver's
 * idempotency key); every other id derives from it, so a rebuilt message keeps its ids.
 */

/** Our own coding of what a later message about a referral says (no national code is used here). */
export const REFERRAL_OUTCOME_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/CodeSystem/referral-outcome`;
export const DID_NOT_ATTEND_CODE = 'did-not-attend';
/** A booking names the service's slot by the id the service's Slot search gave it. */
export const SERVICE_SLOT_ID_SYSTEM = `${HOLDFAST_SYSTEM_BASE}/Id/service-slot`;

export interface ReferralBundleInput {
  messageId: string;
  caseId: string;
  sentAtIso: string;
  source: { node: string; tenant: string };
  destination: { name: string; endpoint: string; odsCode: string };
  dxCode: string;
  dispositionLabel: string;
  /** The disposition's timeframe: the service should see the patient within it. */
  timeframeMinutes: number | null;
  presentingComplaint: string;
  location: string;
  triagePath: { question: string; answer: string }[];
  /** Notes the receiver may see (withheld ones are left out by the caller). */
  specialNotes: { kind: string; text: string }[];
  /** A safeguarding concern on the case or the record, even when its words are withheld. */
  safeguarding: boolean;
  patient: PatientRecordView | null;
}

type Json = Record<string, unknown>;
const ref = (type: string, id: string) => ({ reference: `urn:uuid:${id}`, type });

function patientResource(id: string, p: PatientRecordView): Json {
  return {
    resourceType: 'Patient',
    id,
    ...(p.nhsNumber
      ? { identifier: [nhsNumberIdentifier(p.nhsNumber, p.nhsNumberVerification?.code ?? '02')] }
      : {}),
    name: [{ family: p.familyName, given: p.givenName ? [p.givenName] : [] }],
    ...(p.sex ? { gender: p.sex } : {}),
    ...(p.dateOfBirth ? { birthDate: p.dateOfBirth } : {}),
    ...(p.address
      ? { address: [{ text: p.address, ...(p.postcode ? { postalCode: p.postcode } : {}) }] }
      : {}),
  };
}

/** Urgency in FHIR's words from the disposition's timeframe (the receiver's triage decides its own). */
function priorityOf(timeframeMinutes: number | null): 'asap' | 'urgent' | 'routine' {
  if (timeframeMinutes !== null && timeframeMinutes <= 60) return 'asap';
  if (timeframeMinutes !== null && timeframeMinutes <= 24 * 60) return 'urgent';
  return 'routine';
}

export function referralBundle(input: ReferralBundleInput): Json {
  const id = (n: number) => nameBasedUuid(`${input.messageId}/${n}`);
  const ids = { request: id(1), encounter: id(2), location: id(3), patient: id(5), triage: id(6) };
  const patient = input.patient ? patientResource(ids.patient, input.patient) : null;
  const subject = patient ? ref('Patient', ids.patient) : { display: 'Patient not yet identified' };
  const sentAt = Date.parse(input.sentAtIso);
  const flags: Json[] = [];
  const notes = input.specialNotes.filter((n) => n.kind !== 'safeguarding');
  if (input.safeguarding)
    flags.push({
      resourceType: 'Flag',
      id: id(10),
      status: 'active',
      category: [{ coding: [{ system: FLAG_CATEGORY_SYSTEM, code: 'safety', display: 'Safety' }] }],
      code: {
        text:
          input.specialNotes.find((n) => n.kind === 'safeguarding')?.text ??
          'Safeguarding concern: speak to the referring service before acting',
      },
      subject,
    });
  notes.forEach((n, i) =>
    flags.push({
      resourceType: 'Flag',
      id: id(20 + i),
      status: 'active',
      category: [{ coding: [{ system: FLAG_CATEGORY_SYSTEM, code: 'clinical', display: 'Clinical' }] }],
      code: { text: `${n.kind.replace(/_/g, ' ')}: ${n.text}` },
      subject,
    }),
  );
  const entries: Json[] = [
    {
      resourceType: 'MessageHeader',
      id: input.messageId,
      eventCoding: {
        system: BARS_MESSAGE_EVENTS_SYSTEM,
        code: 'servicerequest-request',
        display: 'Referral request',
      },
      destination: [{ name: input.destination.name, endpoint: input.destination.endpoint }],
      source: {
        name: `Holdfast ${input.source.node}`,
        endpoint: `urn:holdfast:${input.source.tenant}:${input.source.node}`,
      },
      reason: { text: `Referral: ${input.dxCode}` },
      focus: [ref('ServiceRequest', ids.request)],
    },
    {
      resourceType: 'ServiceRequest',
      id: ids.request,
      identifier: [{ system: 'urn:holdfast:case', value: input.caseId }],
      status: 'active',
      intent: 'order',
      priority: priorityOf(input.timeframeMinutes),
      category: [{ text: 'Referral from NHS 111 / urgent care' }],
      code: { text: `${input.dxCode}: ${input.dispositionLabel}` },
      reasonCode: [
        { text: input.presentingComplaint },
        { text: `${input.dxCode}: ${input.dispositionLabel}` },
      ],
      subject,
      encounter: ref('Encounter', ids.encounter),
      ...(input.timeframeMinutes
        ? {
            occurrencePeriod: {
              start: input.sentAtIso,
              end: new Date(sentAt + input.timeframeMinutes * 60_000).toISOString(),
            },
          }
        : {}),
      authoredOn: input.sentAtIso,
      performer: [
        {
          display: input.destination.name,
          identifier: {
            system: 'https://fhir.nhs.uk/Id/ods-organization-code',
            value: input.destination.odsCode,
          },
        },
      ],
      locationReference: [ref('Location', ids.location)],
      supportingInfo: [
        ref('QuestionnaireResponse', ids.triage),
        ...flags.map((f) => ref('Flag', f.id as string)),
      ],
    },
    {
      resourceType: 'Encounter',
      id: ids.encounter,
      identifier: [{ system: 'urn:holdfast:case', value: input.caseId }],
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'VR', display: 'virtual' },
      subject,
    },
    {
      resourceType: 'Location',
      id: ids.location,
      description: 'Where the patient is now, as the caller said',
      address: { text: input.location },
    },
    {
      resourceType: 'QuestionnaireResponse',
      id: ids.triage,
      status: 'completed',
      subject,
      authored: input.sentAtIso,
      item: input.triagePath.map((q, i) => ({
        linkId: String(i + 1),
        text: q.question,
        answer: [{ valueString: q.answer }],
      })),
    },
    ...flags,
  ];
  if (patient) entries.splice(2, 0, patient);
  return {
    resourceType: 'Bundle',
    id: id(0),
    type: 'message',
    timestamp: input.sentAtIso,
    entry: entries.map((resource) => ({ fullUrl: `urn:uuid:${resource.id as string}`, resource })),
  };
}

export interface BookingBundleInput {
  messageId: string;
  caseId: string;
  sentAtIso: string;
  source: { node: string; tenant: string };
  destination: { name: string; endpoint: string };
  slot: { slotId: string; start: string; end: string };
  dxCode: string;
  dispositionLabel: string;
  patient: PatientRecordView | null;
}

/** A booking: an Appointment for one of the service's Slots (by its id at the service). */
export function bookingBundle(input: BookingBundleInput): Json {
  const id = (n: number) => nameBasedUuid(`${input.messageId}/${n}`);
  const ids = { appointment: id(1), slot: id(2), patient: id(5) };
  const patient = input.patient ? patientResource(ids.patient, input.patient) : null;
  const entries: Json[] = [
    {
      resourceType: 'MessageHeader',
      id: input.messageId,
      eventCoding: {
        system: BARS_MESSAGE_EVENTS_SYSTEM,
        code: 'booking-request',
        display: 'Booking request',
      },
      destination: [{ name: input.destination.name, endpoint: input.destination.endpoint }],
      source: {
        name: `Holdfast ${input.source.node}`,
        endpoint: `urn:holdfast:${input.source.tenant}:${input.source.node}`,
      },
      focus: [ref('Appointment', ids.appointment)],
    },
    {
      resourceType: 'Appointment',
      id: ids.appointment,
      identifier: [{ system: 'urn:holdfast:case', value: input.caseId }],
      status: 'booked',
      description: `${input.dxCode}: ${input.dispositionLabel}`,
      start: input.slot.start,
      end: input.slot.end,
      slot: [ref('Slot', ids.slot)],
      created: input.sentAtIso.slice(0, 10),
      participant: [
        {
          actor: patient ? ref('Patient', ids.patient) : { display: 'Patient not yet identified' },
          status: 'accepted',
        },
      ],
    },
    {
      // The service's own slot, as its search gave it: its id there is the identifier.
      resourceType: 'Slot',
      id: ids.slot,
      identifier: [{ system: SERVICE_SLOT_ID_SYSTEM, value: input.slot.slotId }],
      schedule: { display: input.destination.name },
      status: 'busy',
      start: input.slot.start,
      end: input.slot.end,
    },
  ];
  if (patient) entries.push(patient);
  return {
    resourceType: 'Bundle',
    id: id(0),
    type: 'message',
    timestamp: input.sentAtIso,
    entry: entries.map((resource) => ({ fullUrl: `urn:uuid:${resource.id as string}`, resource })),
  };
}
