import { randomUUID } from 'node:crypto';
import { BARS_MESSAGE_EVENTS_SYSTEM } from '../../src/fhir/codes.ts';
import { nhsNumberIdentifier } from '../../src/fhir/mapping.ts';
import { AMBULANCE_CATEGORY_SYSTEM } from '../../src/inbound/bundles.ts';

/** Message Bundles other systems post to /fhir/R4/$process-message (tests and route samples). */

export type Json = Record<string, unknown>;
export type Bundle = { resourceType: string; type: string; entry: { fullUrl?: string; resource: Json }[] };

/** A 999 validation request as an ambulance service would send it (BaRS-like, as ours is). */
export function validationRequest(options: {
  messageId?: string;
  category: number;
  incident?: string;
  deadline?: string;
  nhsNumber?: string;
  /** The Patient's date of birth (with an NHS number). */
  birthDate?: string;
  serviceRequest?: Json;
}): Bundle {
  const id = options.messageId ?? randomUUID();
  const ids = { sr: randomUUID(), patient: randomUUID(), caller: randomUUID(), location: randomUUID() };
  const subject = options.nhsNumber
    ? { reference: `urn:uuid:${ids.patient}` }
    : { display: 'Patient not identified' };
  const entries: Json[] = [
    {
      resourceType: 'MessageHeader',
      id,
      eventCoding: { system: BARS_MESSAGE_EVENTS_SYSTEM, code: 'servicerequest-request' },
      source: { name: 'North Ambulance Service', endpoint: 'https://ambulance.example/fhir' },
      focus: [{ reference: `urn:uuid:${ids.sr}` }],
    },
    {
      resourceType: 'ServiceRequest',
      id: ids.sr,
      identifier: [{ system: 'https://ambulance.example/incident', value: options.incident ?? 'NAS-4711' }],
      status: 'active',
      intent: 'order',
      category: [{ coding: [{ system: AMBULANCE_CATEGORY_SYSTEM, code: String(options.category) }] }],
      code: { text: 'Clinical validation of an ambulance disposition' },
      reasonCode: [{ text: 'Fall at home, pain in the hip' }],
      subject,
      ...(options.deadline ? { occurrencePeriod: { end: options.deadline } } : {}),
      locationReference: [{ reference: `urn:uuid:${ids.location}` }],
      supportingInfo: [{ reference: `urn:uuid:${ids.caller}` }],
      ...options.serviceRequest,
    },
    {
      resourceType: 'RelatedPerson',
      id: ids.caller,
      patient: { ...subject },
      relationship: [{ text: 'relative' }],
      name: [{ text: 'Sam Caller' }],
      telecom: [{ system: 'phone', value: '07700 900123' }],
    },
    { resourceType: 'Location', id: ids.location, address: { text: '1 High Street, Northtown' } },
  ];
  if (options.nhsNumber)
    entries.push({
      resourceType: 'Patient',
      id: ids.patient,
      identifier: [nhsNumberIdentifier(options.nhsNumber)],
      name: [{ family: 'Validation', given: ['Ada'] }],
      ...(options.birthDate ? { birthDate: options.birthDate } : {}),
    });
  return {
    resourceType: 'Bundle',
    type: 'message',
    timestamp: '2026-11-29T09:00:00Z',
    entry: entries.map((resource) => ({ fullUrl: `urn:uuid:${String(resource.id)}`, resource })),
  } as Bundle;
}

/** A business answer to one of our messages, as the receiving system would post it later. */
export function answerTo(messageId: string, code: 'ok' | 'fatal-error', reference?: string): Bundle {
  const id = randomUUID();
  const focus = randomUUID();
  const entries: Json[] = [
    {
      resourceType: 'MessageHeader',
      id,
      eventCoding: { system: 'https://ambulance.example/event', code: 'acknowledgement' },
      source: { endpoint: 'https://ambulance.example/fhir' },
      response: { identifier: messageId, code },
      focus: [{ reference: `urn:uuid:${focus}` }],
    },
    code === 'ok'
      ? {
          resourceType: 'Encounter',
          id: focus,
          status: 'planned',
          class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EMER' },
          identifier: [{ system: 'https://ambulance.example/incident', value: reference ?? 'NAS-1' }],
        }
      : {
          resourceType: 'OperationOutcome',
          id: focus,
          issue: [{ severity: 'error', code: 'invalid', details: { text: 'no crews for that area' } }],
        },
  ];
  return {
    resourceType: 'Bundle',
    type: 'message',
    timestamp: '2026-11-29T09:30:00Z',
    entry: entries.map((resource) => ({ fullUrl: `urn:uuid:${String(resource.id)}`, resource })),
  } as Bundle;
}
