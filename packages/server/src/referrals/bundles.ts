import { BARS_MESSAGE_EVENTS_SYSTEM, FLAG_CATEGORY_SYSTEM, HOLDFAST_SYSTEM_BASE } from '../fhir/codes.ts';
import {
  caseEncounter,
  caseSubject,
  messageBundle,
  messageResourceId,
  patientResource,
  ref,
  triageResponse,
  whereNowLocation,
  type Json,
} from '../fhir/case-message.ts';
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

/** The patient with the NHS number's verification status as the record has it (unknown: '02'). */
const verifiedPatient = (id: string, p: PatientRecordView): Json =>
  patientResource(id, p, p.nhsNumberVerification?.code ?? '02');

/** Urgency in FHIR's words from the disposition's timeframe (the receiver's triage decides its own). */
function priorityOf(timeframeMinutes: number | null): 'asap' | 'urgent' | 'routine' {
  if (timeframeMinutes !== null && timeframeMinutes <= 60) return 'asap';
  if (timeframeMinutes !== null && timeframeMinutes <= 24 * 60) return 'urgent';
  return 'routine';
}

export function referralBundle(input: ReferralBundleInput): Json {
  const id = messageResourceId(input.messageId);
  const ids = { request: id(1), encounter: id(2), location: id(3), patient: id(5), triage: id(6) };
  const patient = input.patient ? verifiedPatient(ids.patient, input.patient) : null;
  const subject = caseSubject(patient, ids.patient);
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
    caseEncounter(ids.encounter, input.caseId, subject),
    whereNowLocation(ids.location, input.location),
    triageResponse(ids.triage, subject, input.sentAtIso, input.triagePath),
    ...flags,
  ];
  if (patient) entries.splice(2, 0, patient);
  return messageBundle(input.messageId, input.sentAtIso, entries);
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
  const id = messageResourceId(input.messageId);
  const ids = { appointment: id(1), slot: id(2), patient: id(5) };
  const patient = input.patient ? verifiedPatient(ids.patient, input.patient) : null;
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
          actor: caseSubject(patient, ids.patient),
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
  return messageBundle(input.messageId, input.sentAtIso, entries);
}
