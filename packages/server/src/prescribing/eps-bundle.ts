import { PRESCRIPTION_ORDER_NUMBER_SYSTEM } from '@holdfast/core';
import { messageBundle, messageResourceId, patientResource, ref, type Json } from '../fhir/case-message.ts';
import { ODS_ORGANISATION_SYSTEM } from '../fhir/codes.ts';
import type { PatientRecordView } from '../patients/service.ts';
import type { PrescriptionIssued } from './events.ts';

/**
 * A prescription as a FHIR R4 message Bundle in the manner of the Electronic Prescription Service:
 * MessageHeader (event `prescription-order`, or `prescription-order-update` for a cancellation) →
 * MedicationRequest with the short-form prescription id as its `groupIdentifier`, the medicine in
 * the dm+d manner, the dosage, the quantity and the pharmacy that is to dispense it; the Patient
 * and the prescribing Practitioner. The MessageHeader id is the outbox message id; every other id
 * derives from it, so a rebuilt message keeps its ids.
 */
export const MESSAGE_EVENT_SYSTEM = 'https://fhir.nhs.uk/CodeSystem/message-event';
export const DMD_SYSTEM = 'https://dmd.nhs.uk';
export const PRESCRIPTION_ITEM_SYSTEM = 'https://fhir.nhs.uk/Id/prescription-order-item-number';
const UCUM = 'http://unitsofmeasure.org';

export interface PrescriptionBundleInput {
  messageId: string;
  sentAtIso: string;
  source: { node: string; tenant: string };
  destination: { name: string; endpoint: string };
  issued: PrescriptionIssued;
  prescriber: { name: string };
  patient: PatientRecordView;
  /** A cancellation of the prescription (`prescription-order-update`), with its reason. */
  cancel?: { reason: string };
}

export function prescriptionBundle(input: PrescriptionBundleInput): Json {
  const id = messageResourceId(input.messageId);
  const ids = { request: id(1), patient: id(2), practitioner: id(3) };
  const p = input.issued;
  const cancelling = input.cancel !== undefined;
  const request: Json = {
    resourceType: 'MedicationRequest',
    id: ids.request,
    identifier: [{ system: PRESCRIPTION_ITEM_SYSTEM, value: p.prescriptionId }],
    status: cancelling ? 'cancelled' : 'active',
    ...(cancelling ? { statusReason: { text: input.cancel!.reason } } : {}),
    intent: 'order',
    category: [{ text: 'Urgent care (out of hours) prescription' }],
    medicationCodeableConcept: {
      coding: [{ system: DMD_SYSTEM, code: p.medicine.code, display: p.medicine.name }],
      text: p.medicine.name,
    },
    subject: ref('Patient', ids.patient),
    authoredOn: new Date(p.atMs).toISOString(),
    requester: ref('Practitioner', ids.practitioner),
    groupIdentifier: { system: PRESCRIPTION_ORDER_NUMBER_SYSTEM, value: p.shortFormId },
    dosageInstruction: [
      {
        text: p.draft.directions,
        timing: { repeat: { frequency: p.draft.frequencyPerDay, period: 1, periodUnit: 'd' } },
        route: { text: p.medicine.route },
        doseAndRate: [{ doseQuantity: { value: p.draft.doseMg, unit: 'mg', system: UCUM, code: 'mg' } }],
      },
    ],
    dispenseRequest: {
      quantity: {
        value: p.draft.quantity,
        unit: p.draft.quantityWords ? `${p.medicine.unit} (${p.draft.quantityWords})` : p.medicine.unit,
      },
      expectedSupplyDuration: { value: p.draft.durationDays, unit: 'day', system: UCUM, code: 'd' },
      performer: {
        display: p.pharmacy.name,
        ...(p.pharmacy.odsCode
          ? { identifier: { system: ODS_ORGANISATION_SYSTEM, value: p.pharmacy.odsCode } }
          : {}),
      },
    },
    ...(p.overrides.length > 0
      ? { note: p.overrides.map((o) => ({ text: `Check ${o.check} overridden: ${o.reason}` })) }
      : {}),
  };
  const entries: Json[] = [
    {
      resourceType: 'MessageHeader',
      id: input.messageId,
      eventCoding: {
        system: MESSAGE_EVENT_SYSTEM,
        code: cancelling ? 'prescription-order-update' : 'prescription-order',
        display: cancelling ? 'Prescription Order Update' : 'Prescription Order',
      },
      destination: [{ name: input.destination.name, endpoint: input.destination.endpoint }],
      source: {
        name: `Holdfast ${input.source.node}`,
        endpoint: `urn:holdfast:${input.source.tenant}:${input.source.node}`,
      },
      focus: [ref('MedicationRequest', ids.request)],
    },
    request,
    patientResource(ids.patient, input.patient, input.patient.nhsNumberVerification?.code ?? '02'),
    {
      resourceType: 'Practitioner',
      id: ids.practitioner,
      identifier: [{ system: 'urn:holdfast:user', value: p.prescriberId }],
      name: [{ text: input.prescriber.name }],
    },
  ];
  return messageBundle(input.messageId, input.sentAtIso, entries);
}

/** The short-form prescription id of a prescription message (its MedicationRequest's groupIdentifier). */
export function shortFormIdOf(bundle: Record<string, unknown>): string | null {
  const entries = Array.isArray(bundle.entry)
    ? (bundle.entry as { resource?: Record<string, unknown> }[])
    : [];
  const request = entries.find((e) => e.resource?.resourceType === 'MedicationRequest')?.resource;
  const group = request?.groupIdentifier as { system?: string; value?: unknown } | undefined;
  return group?.system === PRESCRIPTION_ORDER_NUMBER_SYSTEM && typeof group.value === 'string'
    ? group.value
    : null;
}
