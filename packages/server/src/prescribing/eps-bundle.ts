import { PRESCRIPTION_ORDER_NUMBER_SYSTEM } from '@holdfast/core';
import { messageBundle, messageResourceId, ref, type Json } from '../fhir/case-message.ts';
import type { PrescriptionIssued } from './events.ts';

/**
 * A prescription as a FHIR R4 message Bundle in the manner of EPS (MessageHeader
 * `prescription-order`, MedicationRequest with the short-form id as its group identifier).
 * (h18-web's thin stand-in; h18-server's fuller Bundle replaces it.)
 */
export function prescriptionBundle(
  p: PrescriptionIssued,
  destination: { name: string; endpoint: string },
  patient: { familyName: string; givenName: string | null; nhsNumber: string | null },
  sentAtIso: string,
): Json {
  const id = messageResourceId(p.messageId!);
  const ids = { request: id(1), patient: id(2) };
  return messageBundle(p.messageId!, sentAtIso, [
    {
      resourceType: 'MessageHeader',
      id: p.messageId,
      eventCoding: {
        system: 'https://fhir.nhs.uk/CodeSystem/message-event',
        code: 'prescription-order',
        display: 'Prescription Order',
      },
      destination: [{ name: destination.name, endpoint: destination.endpoint }],
      source: { name: 'Holdfast', endpoint: 'urn:holdfast' },
      focus: [ref('MedicationRequest', ids.request)],
    },
    {
      resourceType: 'MedicationRequest',
      id: ids.request,
      status: 'active',
      intent: 'order',
      groupIdentifier: { system: PRESCRIPTION_ORDER_NUMBER_SYSTEM, value: p.shortFormId },
      medicationCodeableConcept: {
        coding: [{ system: 'https://dmd.nhs.uk', code: p.medicine.code, display: p.medicine.name }],
      },
      subject: ref('Patient', ids.patient),
      authoredOn: sentAtIso,
      dosageInstruction: [{ text: p.draft.directions }],
      dispenseRequest: {
        quantity: { value: p.draft.quantity },
        performer: {
          identifier: { system: 'https://fhir.nhs.uk/Id/ods-organization-code', value: p.pharmacy.odsCode },
        },
      },
    },
    {
      resourceType: 'Patient',
      id: ids.patient,
      ...(patient.nhsNumber
        ? { identifier: [{ system: 'https://fhir.nhs.uk/Id/nhs-number', value: patient.nhsNumber }] }
        : {}),
      name: [{ family: patient.familyName, given: patient.givenName ? [patient.givenName] : [] }],
    },
  ]);
}
