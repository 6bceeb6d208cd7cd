import { isValidPrescriptionId, PRESCRIPTION_ORDER_NUMBER_SYSTEM } from '@holdfast/core';
import type { Resource } from '@medplum/fhirtypes';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outgoingIssues } from '../../src/fhir/validate.ts';
import { DMD_SYSTEM } from '../../src/prescribing/eps-bundle.ts';
import { STORE_KINDS } from '../support/databases.ts';
import {
  AMOXICILLIN,
  draftOf,
  GONE_ODS,
  IBUPROFEN,
  MORPHINE,
  PARACETAMOL,
  PHARMACY_ODS,
  PHARMACY_TOKEN,
  PrescribingWorld,
  type Prescription,
} from './support.ts';

type Bundle = { entry: { resource: Record<string, unknown> & { resourceType: string } }[] };

/**
 * Emergency prescribing end to end on both stores, with `holdfast receiver --kind pharmacy` as its
 * own process over real HTTP: a prescription from a consultation goes through the outbox in the same
 * commit as its issue, the pharmacy checks the prescription id's check character and takes it, the
 * case shows sent → received; a cancellation before dispensing goes through, one after is refused;
 * with the pharmacy unreachable the prescription fails, printing is offered and recorded, the PDF is
 * served, and sending again is refused until the printed one is cancelled.
 */
describe.each(STORE_KINDS)('prescribing on %s', (kind) => {
  const w = new PrescribingWorld();

  beforeAll(async () => {
    await w.start(kind);
  });
  afterAll(async () => {
    await w.stop();
  });

  const list = async (caseId: string) =>
    (
      await w.json<{ prescriptions: Prescription[] }>(
        w.clients.prescriber,
        'GET',
        `/api/v1/cases/${caseId}/prescriptions`,
      )
    ).prescriptions;

  it('consultation → prescription → received by the pharmacy; cancelled before dispensing; refused after', async () => {
    const patientId = await w.patient('Ann');
    const caseId = await w.consultation(patientId);
    const issued = await w.json<{ prescription: Prescription }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions`,
      { draft: draftOf(AMOXICILLIN), overrides: [], pharmacy: 'nominated' },
    );
    expect(issued.prescription).toMatchObject({ state: 'queued', route: 'message' });
    expect(issued.prescription.stateText).toContain('not yet received');
    expect(isValidPrescriptionId(issued.prescription.shortFormId)).toBe(true);
    // The issue and its message are one commit.
    const [a, b] = await w.lastEvents(['prescription.issued', 'message.queued'], 2);
    expect([a!.type, b!.type].sort()).toEqual(['message.queued', 'prescription.issued']);
    expect(Math.abs(a!.seq - b!.seq)).toBe(1);
    const queued = [a!, b!].find((e) => e.type === 'message.queued')!.payload;
    expect(queued).toMatchObject({ kind: 'prescription', endpointId: 'pharmacy-north' });
    expect(queued.invalid).toBeUndefined();

    // The EPS-style Bundle validates with the project's FHIR validation and carries the short-form id.
    const bundle = queued.bundle as Bundle;
    expect(outgoingIssues(bundle as unknown as Resource)).toEqual([]);
    expect(bundle.entry.map((e) => e.resource.resourceType)).toEqual([
      'MessageHeader',
      'MedicationRequest',
      'Patient',
      'Practitioner',
    ]);
    const header = bundle.entry[0]!.resource as unknown as { eventCoding: { code: string } };
    expect(header.eventCoding.code).toBe('prescription-order');
    const request = bundle.entry[1]!.resource as unknown as {
      groupIdentifier: { system: string; value: string };
      medicationCodeableConcept: { coding: { system: string; code: string }[] };
      dispenseRequest: { quantity: { value: number }; performer: { identifier: { value: string } } };
    };
    expect(request.groupIdentifier).toEqual({
      system: PRESCRIPTION_ORDER_NUMBER_SYSTEM,
      value: issued.prescription.shortFormId,
    });
    expect(isValidPrescriptionId(request.groupIdentifier.value)).toBe(true);
    expect(request.medicationCodeableConcept.coding[0]).toMatchObject({
      system: DMD_SYSTEM,
      code: AMOXICILLIN,
    });
    expect(request.dispenseRequest.quantity.value).toBe(15);
    expect(request.dispenseRequest.performer.identifier.value).toBe(PHARMACY_ODS);

    // Sent → received: the pharmacy process took it (its check character verified there).
    await w.worker.runOnce();
    let [rx] = await list(caseId);
    expect(rx!.state).toBe('received');
    expect(rx!.stateText).toMatch(/Received by Pharmacy FA123 \(RX-\d{6}\)/);
    const held = (await (await fetch(`${w.rx.url}/received`)).json()) as {
      messages: { id: string; code: string }[];
    };
    expect(held.messages.find((m) => m.id === issued.prescription.messageId)?.code).toBe('ok');

    // Cancelled before dispensing: a cancellation message the pharmacy confirms.
    const cancelled = await w.json<{ prescription: Prescription }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/prescriptions/${rx!.prescriptionId}/cancel`,
      { reason: 'Wrong medicine chosen' },
    );
    expect(cancelled.prescription.state).toBe('cancelled');
    expect(cancelled.prescription.cancelled?.confirmed).toBe(false);
    const [cancelMessage] = await w.lastEvents(['message.queued'], 1);
    const update = (cancelMessage!.payload.bundle as Bundle).entry;
    expect((update[0]!.resource as unknown as { eventCoding: { code: string } }).eventCoding.code).toBe(
      'prescription-order-update',
    );
    expect(update[1]!.resource.status).toBe('cancelled');
    expect(outgoingIssues(cancelMessage!.payload.bundle as Resource)).toEqual([]);
    await w.worker.runOnce();
    [rx] = await list(caseId);
    expect(rx!.cancelled?.confirmed).toBe(true);
    expect(rx!.stateText).toContain('confirmed the cancellation');

    // Another medicine, dispensed by the pharmacy: its cancellation is then refused.
    const second = await w.json<{ prescription: Prescription }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions`,
      {
        draft: draftOf(PARACETAMOL, {
          doseMg: 1000,
          frequencyPerDay: 4,
          durationDays: 3,
          quantity: 24,
          directions: 'Two tablets four times a day',
        }),
        overrides: [],
        pharmacy: { odsCode: PHARMACY_ODS },
      },
    );
    await w.worker.runOnce();
    const told = await fetch(`${w.rx.url}/control/dispensed`, {
      method: 'POST',
      body: JSON.stringify({
        prescriptionId: second.prescription.shortFormId,
        url: w.inboundUrl,
        token: PHARMACY_TOKEN,
      }),
    });
    expect(told.status, await told.clone().text()).toBe(200);
    expect(((await told.json()) as { status: number }).status).toBe(200);
    const dispensed = (await list(caseId)).find(
      (p) => p.prescriptionId === second.prescription.prescriptionId,
    )!;
    expect(dispensed.state).toBe('dispensed');
    const refused = await w.clients.prescriber.request(
      'POST',
      `/api/v1/prescriptions/${dispensed.prescriptionId}/cancel`,
      { reason: 'Changed my mind' },
    );
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('dispensed');
  });

  it('the pharmacy process refuses a prescription id whose check character is wrong', async () => {
    const patientId = await w.patient('Bel');
    const caseId = await w.consultation(patientId);
    await w.json(w.clients.prescriber, 'POST', `/api/v1/cases/${caseId}/prescriptions`, {
      draft: draftOf(AMOXICILLIN),
      overrides: [],
      pharmacy: 'nominated',
    });
    const [queued] = await w.lastEvents(['message.queued'], 1);
    const bundle = structuredClone(queued!.payload.bundle) as Bundle & { id: string };
    const header = bundle.entry[0]!.resource as unknown as { id: string };
    header.id = '00000000-0000-4000-8000-00000000c0de';
    const request = bundle.entry[1]!.resource as unknown as { groupIdentifier: { value: string } };
    const good = request.groupIdentifier.value;
    const last = good.at(-1)!;
    request.groupIdentifier.value = `${good.slice(0, -1)}${last === '0' ? '1' : '0'}`;
    expect(isValidPrescriptionId(request.groupIdentifier.value)).toBe(false);
    const answer = (await (
      await fetch(`${w.rx.url}/messages`, { method: 'POST', body: JSON.stringify(bundle) })
    ).json()) as Bundle;
    expect((answer.entry[0]!.resource as unknown as { response: { code: string } }).response.code).toBe(
      'fatal-error',
    );
    expect(JSON.stringify(answer.entry[1]!.resource)).toContain('check character');
  });

  it('the pharmacy unreachable: failed, printing offered and recorded, PDF served; sending again refused until cancelled', async () => {
    const patientId = await w.patient('Cat', GONE_ODS);
    const caseId = await w.consultation(patientId);
    const issued = await w.json<{ prescription: Prescription }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions`,
      {
        draft: draftOf(IBUPROFEN, {
          doseMg: 400,
          quantity: 30,
          directions: 'One tablet three times a day with food',
        }),
        overrides: [],
        pharmacy: 'nominated',
      },
    );
    const id = issued.prescription.prescriptionId;
    await w.worker.runOnce();
    // Still trying: it may yet reach the pharmacy, so it is not printed.
    expect((await list(caseId))[0]!.canPrint).toBe(false);
    const early = await w.clients.prescriber.request('POST', `/api/v1/prescriptions/${id}/print`, {
      reason: 'Pharmacy not answering',
    });
    expect(early.statusCode).toBe(409);
    w.t.clock.advance(11 * 60_000);
    await w.worker.runOnce();
    const failed = (await list(caseId))[0]!;
    expect(failed.state).toBe('failed');
    expect(failed.canPrint).toBe(true);
    expect(failed.stateText).toContain('print it');
    // No PDF before the printing is recorded.
    expect((await w.clients.prescriber.request('GET', `/api/v1/prescriptions/${id}/pdf`)).statusCode).toBe(
      409,
    );
    const printed = await w.json<{ prescription: Prescription }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/prescriptions/${id}/print`,
      { reason: 'The pharmacy system cannot be reached' },
    );
    expect(printed.prescription.state).toBe('printed');
    const pdf = await w.clients.prescriber.request('GET', `/api/v1/prescriptions/${id}/pdf`);
    expect(pdf.statusCode).toBe(200);
    expect(pdf.headers['content-type']).toContain('application/pdf');
    expect(pdf.rawPayload.subarray(0, 4).toString('latin1')).toBe('%PDF');
    // The failed message was cancelled with the printing: nobody can retry it.
    const messageId = printed.prescription.messageId!;
    const message = await w.clients.prescriber.request('GET', `/api/v1/messages/${messageId}`);
    expect((message.json() as { state: string }).state).toBe('cancelled');
    // Sending again is refused until the printed one is cancelled.
    const again = () =>
      w.clients.prescriber.request('POST', `/api/v1/cases/${caseId}/prescriptions`, {
        draft: draftOf(IBUPROFEN, {
          doseMg: 400,
          quantity: 30,
          directions: 'One tablet three times a day with food',
        }),
        overrides: [],
        pharmacy: { odsCode: PHARMACY_ODS },
      });
    const refused = await again();
    expect(refused.statusCode).toBe(409);
    expect(refused.body).toContain('cancel');
    const cancelled = await w.json<{ prescription: Prescription }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/prescriptions/${id}/cancel`,
      { reason: 'Paper copy destroyed; sending to another pharmacy' },
    );
    expect(cancelled.prescription).toMatchObject({ state: 'cancelled', cancelled: { confirmed: true } });
    const sent = await again();
    expect(sent.statusCode, sent.body).toBe(201);
    await w.worker.runOnce();
    expect((await list(caseId)).find((p) => p.prescriptionId !== id)!.state).toBe('received');
  });

  it('a schedule 2 medicine needs the quantity in words; the PEM to the GP lists what was prescribed', async () => {
    // The practice takes PEMs (nothing listens: the queued message is what is checked).
    await w.t.messaging.setEndpoint('northshire', 'user:admin', {
      endpointId: 'practice-rx',
      name: 'Rx Surgery',
      kinds: ['post_event_message'],
      odsCode: 'B86002',
      transport: { type: 'http', url: 'http://127.0.0.1:9/pem', clientCertificate: null },
      phone: null,
      acceptWithinSeconds: 3600,
    });
    const patientId = await w.patient('Dot', PHARMACY_ODS, {
      registeredPractice: { odsCode: 'B86002', name: 'Rx Surgery' },
    });
    const caseId = await w.consultation(patientId);
    const morphine = draftOf(MORPHINE, {
      doseMg: 5,
      frequencyPerDay: 4,
      durationDays: 3,
      quantity: 30,
      directions: '2.5 mL every six hours when needed for pain',
    });
    const blocked = await w.clients.prescriber.request('POST', `/api/v1/cases/${caseId}/prescriptions`, {
      draft: morphine,
      overrides: [],
      pharmacy: 'nominated',
    });
    expect(blocked.statusCode).toBe(409);
    expect((blocked.json() as { problems: string[] }).problems.join(' ')).toContain('controlled');
    const issued = await w.json<{ prescription: Prescription }>(
      w.clients.prescriber,
      'POST',
      `/api/v1/cases/${caseId}/prescriptions`,
      { draft: { ...morphine, quantityWords: 'thirty' }, overrides: [], pharmacy: 'nominated' },
    );
    expect(issued.prescription.state).toBe('queued');
    const closed = await w.clients.prescriber.request('POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'advice_and_close',
    });
    expect(closed.statusCode, closed.body).toBe(200);
    const [pem] = (await w.lastEvents(['message.queued'], 5)).filter(
      (e) => e.payload.kind === 'post_event_message',
    );
    expect(pem).toBeDefined();
    const text = JSON.stringify(pem!.payload.bundle);
    expect(text).toContain('Medicines prescribed');
    expect(text).toContain('Morphine sulfate 20 mg/mL concentrated oral solution');
    expect(text).toContain(issued.prescription.shortFormId);
    expect(text).toContain('(thirty)');
    expect(text).toContain('For action');
  });
});
