import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUser, callToDispositionOverApi } from './support/api.ts';
import {
  describeViolations,
  launchChromium,
  Screenshots,
  seriousAxeViolations,
  staffContext,
} from './support/browser.ts';
import { AdminSession, Gate, POSTCODES_CSV, service, ServiceReceiver } from './support/directory.ts';
import { HEADACHE_TO_CALLBACK } from './support/fixtures.ts';
import { takeCallToCallback, useSessionCookie } from './support/flows.ts';
import { DEMO, freePort, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * Emergency prescribing in the browser (issue 18), against a real `holdfast start` and a real
 * receiving process standing in for the pharmacy, behind a gate that holds its answers: a prescriber
 * records a penicillin allergy and the patient's ibuprofen; amoxicillin is a hard stop that cannot be
 * sent; naproxen is a duplicate-therapy warning that cannot be sent until a reason is given; once
 * sent the screen says "not yet received by the pharmacy" until the server says received; a
 * pharmacy that cannot be reached offers a paper prescription, and after printing, sending again is
 * refused until the paper one is cancelled. A clinician without the prescriber role sees no
 * prescribing controls. The formulary's "not clinically validated" line shows wherever it is used.
 * Screenshots go to .test-results/screenshots/prescribing/.
 */

const POLL = { timeout: 30_000 };
const PHARMACY = 'Quayside Pharmacy';
const DOWN_PHARMACY = 'Harbour Pharmacy';
const FORMULARY_NOTICE = 'Formulary: sample content for demonstration — not clinically validated';
const PATIENT = {
  nhsNumber: '9434765900',
  givenName: 'Priya',
  familyName: 'Lennox',
  dateOfBirth: '1986-05-20',
  sex: 'female',
  phone: '07700 900789',
  address: '3 Mill Lane, Southport',
  postcode: 'SP2 7QT',
  specialNotes: [],
  nominatedPharmacy: { odsCode: 'FQA11', name: PHARMACY },
};

describe('prescribing in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  const receiver = new ServiceReceiver(PHARMACY);
  let gate: Gate;
  let adviserUser: ApiUser;
  let prescriberUser: ApiUser;
  let clinicianUser: ApiUser;
  let siteId = '';
  let patientId = '';
  const violations: string[] = [];

  async function scan(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  }

  beforeAll(async () => {
    // A prescription nobody received fails after 20 s here (10 minutes by default), so that the
    // paper route is offered within the test.
    [server, browser] = await Promise.all([
      startHoldfast({ env: { HOLDFAST_PRESCRIPTION_FAIL_AFTER_SECONDS: '20' } }),
      launchChromium(),
      receiver.start(),
    ]);
    gate = new Gate(receiver.url);
    const gateUrl = await gate.start();
    const nowhere = `http://127.0.0.1:${await freePort()}/messages`;
    adviserUser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    prescriberUser = await ApiUser.signIn(server.url, 'prescriber@northshire', server.demoPassword);
    clinicianUser = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    const sites = await adviserUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    siteId = sites.sites[0]!.siteId;
    ({ patientId } = await adviserUser.call<{ patientId: string }>('POST', '/api/v1/patients', {
      homeSiteId: siteId,
      record: PATIENT,
    }));

    // Two pharmacies take electronic prescriptions: one answers (through the gate), one is unreachable.
    const admin = await AdminSession.open(browser, server);
    await admin.must('POST', '/api/v1/admin/endpoints', {
      endpointId: 'quayside-pharmacy',
      name: PHARMACY,
      kinds: ['prescription'],
      odsCode: 'FQA11',
      transport: { type: 'http', url: `${gateUrl}/messages` },
      phone: '0113 496 0300',
      acceptWithinSeconds: 600,
    });
    await admin.must('POST', '/api/v1/admin/endpoints', {
      endpointId: 'harbour-pharmacy',
      name: DOWN_PHARMACY,
      kinds: ['prescription'],
      odsCode: 'FHB22',
      transport: { type: 'http', url: nowhere },
      phone: '0113 496 0400',
      acceptWithinSeconds: 5,
    });
    await admin.must('POST', '/api/v1/admin/postcodes/import', POSTCODES_CSV, 'text/csv');
    await admin.must('POST', '/api/v1/admin/directory/import', {
      services: [
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-0000000000a1',
          name: DOWN_PHARMACY,
          type: 'community_pharmacy',
          postcode: 'SP1 1AA',
          latitude: 50.51,
          longitude: -3.98,
          dispositions: ['Dx11'],
          referral: { kind: 'walk_in' },
          odsCode: 'FHB22',
        }),
      ],
    });
    await admin.close();
  }, 300_000);
  afterAll(async () => {
    await gate?.stop();
    await receiver.stop();
    await browser?.close();
    await server?.stop();
  });

  /** The adviser's call for the patient, triaged to a clinical call-back; returns the case id. */
  async function callToCallback(): Promise<string> {
    const context = await staffContext(browser, server.url);
    await useSessionCookie(context, server.url, adviserUser.sessionToken);
    const adviser = await context.newPage();
    await adviser.goto('/calls/new');
    const caseId = await takeCallToCallback(
      adviser,
      {
        callerName: 'Priya Lennox',
        relationship: 'The patient (self)',
        callbackNumber: '0113 496 0888',
        location: 'At home, 3 Mill Lane, SP2 7QT',
        problem: 'Headache',
        nhsNumber: PATIENT.nhsNumber,
        patient: /Select Priya Lennox/,
        hasSpecialNotes: false,
      },
      { pathwayLabel: 'Headache (sample, not clinically validated)', answers: HEADACHE_TO_CALLBACK.answers },
    );
    await context.close();
    return caseId;
  }

  /**
   * The same call over the API (the patient identified, the headache pathway walked to a clinician
   * call-back, confirmed): for a test whose subject is the clinician's screen, once the adviser's
   * screens have taken this call in the browser (callToCallback, in readyToSend).
   */
  function callToCallbackOverApi(): Promise<string> {
    return callToDispositionOverApi(adviserUser, {
      siteId,
      patientId,
      caller: { name: 'Priya Lennox', relationship: 'self', callbackNumber: '0113 496 0888' },
      location: 'At home, 3 Mill Lane, SP2 7QT',
      presentingComplaint: 'Headache',
      pathwayId: 'headache',
      want: (d) => d.kind === 'speak_to_primary_care',
    });
  }

  async function consult(user: ApiUser, caseId: string) {
    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, user.sessionToken);
    const page = await context.newPage();
    await page.goto(`/queue/${caseId}`);
    await page.getByRole('button', { name: 'Claim this case' }).click();
    await page.getByRole('button', { name: 'Start consultation' }).click();
    await page.getByLabel('Outcome of the consultation').selectOption({ label: 'Prescribe' });
    return { context, page };
  }

  async function fillPrescription(
    page: Page,
    p: { medicine: string; dose: string; times: string; days: string; quantity: string },
  ) {
    const panel = page.getByTestId('prescribing-panel');
    await panel.getByLabel('Medicine', { exact: true }).selectOption({ label: p.medicine });
    await panel.getByLabel('Dose (mg each time)').fill(p.dose);
    await panel.getByLabel('Times a day').fill(p.times);
    await panel.getByLabel('For how many days').fill(p.days);
    await panel
      .getByLabel(/^Quantity/)
      .first()
      .fill(p.quantity);
    await panel.getByLabel('Directions').fill(`${p.dose} mg ${p.times} times a day`);
  }

  /** The prescriber's consultation with the allergy and ibuprofen recorded and naproxen ready to send. */
  async function readyToSend() {
    const shots = new Screenshots('prescribing');
    const caseId = await callToCallback();
    const { context, page } = await consult(prescriberUser, caseId);

    // Allergies and current medication, with where each came from and who said so.
    const allergyForm = page.getByRole('form', { name: 'Record an allergy' });
    await allergyForm.getByLabel('Allergic to').fill('Penicillin');
    await allergyForm.getByLabel('Allergy class').selectOption('penicillin');
    await allergyForm.getByLabel('Where the allergy came from').selectOption({ label: 'The caller' });
    await allergyForm.getByLabel('Who said so').fill('The patient herself');
    await allergyForm.getByRole('button', { name: 'Record allergy' }).click();
    await page
      .getByTestId('allergies')
      .filter({ hasText: /Penicillin — from the caller, said by The patient herself/ })
      .waitFor(POLL);
    const medicationForm = page.getByRole('form', { name: 'Record a current medicine' });
    await medicationForm
      .getByLabel('Formulary medicine (if it is one)')
      .selectOption({ label: 'Ibuprofen 200 mg tablet' });
    await medicationForm
      .getByLabel('Where the medicine came from')
      .selectOption({ label: 'The patient’s record' });
    await medicationForm.getByLabel('Who said so').fill('GP summary care record');
    await medicationForm.getByRole('button', { name: 'Record medication' }).click();
    await page
      .getByTestId('medication')
      .filter({ hasText: /Ibuprofen 200 mg tablet — from the patient’s record/ })
      .waitFor(POLL);

    // The formulary is sample content, and says so where it is shown.
    const panel = page.getByTestId('prescribing-panel');
    await panel.getByText(FORMULARY_NOTICE).waitFor(POLL);
    expect(await page.getByText(FORMULARY_NOTICE).count()).toBeGreaterThanOrEqual(2);

    // Amoxicillin with a penicillin allergy: a hard stop, and Send stays unavailable.
    await fillPrescription(page, {
      medicine: 'Amoxicillin 500 mg capsule',
      dose: '500',
      times: '3',
      days: '5',
      quantity: '15',
    });
    const checks = page.getByTestId('prescription-checks');
    await checks.locator('tr[data-check="allergy"][data-outcome="hard_stop"]').waitFor(POLL);
    expect(await checks.locator('tr[data-check="allergy"]').innerText()).toMatch(/penicillin/i);
    const send = page.getByRole('button', { name: 'Send prescription' });
    expect(await send.isDisabled()).toBe(true);
    expect(await page.getByTestId('send-blocked').innerText()).toMatch(/hard stop cannot be overridden/);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1366);
    await shots.take(page, 'allergy-hard-stop');
    await scan(page, 'prescribing with a hard stop');

    // Naproxen with ibuprofen taken already: a warning, sent only with a reason.
    await fillPrescription(page, {
      medicine: 'Naproxen 250 mg tablet',
      dose: '250',
      times: '2',
      days: '5',
      quantity: '20',
    });
    await checks.locator('tr[data-check="duplicate"][data-outcome="warning"]').waitFor(POLL);
    expect(await checks.locator('[data-outcome="hard_stop"]').count()).toBe(0);
    expect(await send.isDisabled()).toBe(true);
    expect(await page.getByTestId('send-blocked').innerText()).toMatch(/give a reason to go ahead/);
    await page
      .getByLabel('Reason to override: Duplicate therapy')
      .fill('Ibuprofen stopped today; naproxen replaces it');
    await expect.poll(() => send.isDisabled(), POLL).toBe(false);
    await scan(page, 'prescribing with a warning');
    // The patient's nominated pharmacy is the one shown and chosen.
    expect(
      await page.getByRole('radio', { name: new RegExp(`nominated pharmacy: ${PHARMACY}`) }).isChecked(),
    ).toBe(true);
    return { shots, caseId, context, page, send };
  }
  /**
   * One consultation made ready to send serves both of the first two tests: the first checks what
   * it shows before anything is sent (every check is in readyToSend), the second sends from it.
   * Either test run alone prepares it itself.
   */
  let ready: ReturnType<typeof readyToSend> | null = null;
  const readyToSendOnce = () => (ready ??= readyToSend());

  it('a penicillin allergy stops amoxicillin; a warning needs a reason before Send; the formulary says it is not clinically validated', async () => {
    await readyToSendOnce();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 300_000);

  it('sent shows not yet received until the pharmacy says so; a failed send prints, and sending again needs a cancellation', async () => {
    const { shots, caseId, context, page, send } = await readyToSendOnce();
    await send.click();

    // Queued, not yet received, for as long as the pharmacy has not answered.
    const naproxen = page.getByRole('article', { name: 'Prescription of Naproxen 250 mg tablet' });
    await naproxen
      .getByTestId('prescription-state')
      .filter({ hasText: /not yet received by/ })
      .waitFor(POLL);
    await expect.poll(() => gate.held, POLL).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await naproxen.getByTestId('prescription-state').innerText()).toMatch(/not yet received by/);
    expect(await page.getByText(/^Received by /).count()).toBe(0);
    await shots.take(page, 'queued');
    await scan(page, 'prescription queued');
    gate.letThrough();
    await naproxen
      .getByTestId('prescription-state')
      .filter({ hasText: new RegExp(`^Received by ${PHARMACY}`) })
      .waitFor(POLL);
    expect(await naproxen.innerText()).toContain(
      'Duplicate therapy (Ibuprofen stopped today; naproxen replaces it)',
    );

    // A pharmacy that cannot be reached: the message fails and a paper prescription is offered.
    await fillPrescription(page, {
      medicine: 'Paracetamol 500 mg tablet',
      dose: '1000',
      times: '4',
      days: '3',
      quantity: '24',
    });
    await page.getByRole('radio', { name: 'A community pharmacy from the directory' }).check();
    await page.getByLabel('Search pharmacies by name or postcode').fill('harbour');
    await page
      .getByLabel('Community pharmacy', { exact: true })
      .selectOption({ label: `${DOWN_PHARMACY}, SP1 1AA` });
    await expect.poll(() => send.isDisabled(), POLL).toBe(false);
    await send.click();
    const paracetamol = page.getByRole('article', { name: 'Prescription of Paracetamol 500 mg tablet' });
    await paracetamol
      .first()
      .getByTestId('prescription-state')
      .filter({ hasText: new RegExp(`^Not received by ${DOWN_PHARMACY}`) })
      .waitFor({ timeout: 60_000 });
    await shots.take(page, 'failed');
    await scan(page, 'prescription failed');
    const popup = context.waitForEvent('page');
    await paracetamol.getByRole('button', { name: 'Print paper prescription' }).click();
    const pdf = await popup;
    expect(pdf.url()).toMatch(/\/api\/v1\/prescriptions\/[0-9a-f-]{36}\/pdf$/);
    await pdf.close();
    await paracetamol
      .getByTestId('prescription-state')
      .filter({ hasText: /^Printed for the paper route: not sent to any pharmacy/ })
      .waitFor(POLL);
    // Printed: no Send again, and the server refuses a new send of it until it is cancelled.
    expect(await paracetamol.getByRole('button', { name: 'Send again' }).count()).toBe(0);
    const printed = (
      await prescriberUser.call<{
        prescriptions: { state: string; draft: unknown; overrides: unknown; medicine: { code: string } }[];
      }>('GET', `/api/v1/cases/${caseId}/prescriptions`)
    ).prescriptions.find((p) => p.state === 'printed')!;
    await expect(
      prescriberUser.call('POST', `/api/v1/cases/${caseId}/prescriptions`, {
        draft: { ...(printed.draft as object), medicineCode: printed.medicine.code },
        overrides: printed.overrides,
        pharmacy: { odsCode: 'FHB22' },
      }),
    ).rejects.toThrow(/409.*cancel that prescription before sending another/);
    await paracetamol.getByRole('button', { name: 'Cancel prescription' }).click();
    await paracetamol
      .getByLabel(/Why cancel the prescription/)
      .fill('Paper copy torn up; sending electronically');
    await paracetamol.getByRole('button', { name: 'Confirm cancellation' }).click();
    await paracetamol
      .getByTestId('prescription-state')
      .filter({ hasText: /^Cancelled/ })
      .waitFor(POLL);
    await paracetamol.getByRole('button', { name: 'Send again' }).click();
    await expect.poll(() => paracetamol.count(), POLL).toBe(2);
    await shots.take(page, 'sent-again');
    await scan(page, 'prescriptions after sending again');
    await context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 300_000);

  it('a clinician without the prescriber role sees no prescribing controls, and the server refuses them', async () => {
    const caseId = await callToCallbackOverApi();
    const { context, page } = await consult(clinicianUser, caseId);
    await page.getByTestId('not-a-prescriber').waitFor(POLL);
    expect(await page.getByTestId('prescribing-panel').count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Send prescription' }).count()).toBe(0);
    // Clinicians still record allergies, with the formulary's notice beside its medicines.
    await page.getByRole('button', { name: 'Record allergy' }).waitFor(POLL);
    await page.getByText(FORMULARY_NOTICE).waitFor(POLL);
    await scan(page, 'clinician without the prescriber role');
    await expect(
      clinicianUser.call('POST', `/api/v1/cases/${caseId}/prescriptions`, {
        draft: {
          medicineCode: '322236009',
          doseMg: 1000,
          frequencyPerDay: 4,
          durationDays: 3,
          quantity: 24,
          quantityWords: null,
          directions: 'two tablets four times a day',
        },
        overrides: [],
        pharmacy: 'nominated',
      }),
    ).rejects.toThrow(/403/);
    await context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 240_000);
});
