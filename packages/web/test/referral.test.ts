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
import { PATIENTS, registerPatients } from './support/fixtures.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * Referrals in the browser (issue 15), against a real `holdfast start` and a real receiving
 * service (`holdfast receiver --kind service`) behind a gate that holds its answers: an ED
 * disposition shows the ranked services and why the others were left out; choosing one that is not
 * first needs a reason; the screen says "Waiting for … to accept…" until the service has accepted,
 * and "Accepted by … (ref …)" only after; a time is booked and shown as booked only once the
 * service confirms it; a refusal shows its reason, opens the list again and raises an alert the
 * shift manager acknowledges. Screenshots go to .test-results/screenshots/referral/.
 */

const POLL = { timeout: 20_000 };
const ED = 'Southport Emergency Department';
const UTC = 'Millbrook Urgent Treatment Centre';

describe('referrals in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  const receiver = new ServiceReceiver(ED);
  let gate: Gate;
  let adviserUser: ApiUser;
  let managerUser: ApiUser;
  let clinicianUser: ApiUser;
  let siteId = '';
  let patientIds: Record<keyof typeof PATIENTS, string>;
  const violations: string[] = [];

  async function scan(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  }

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium(), receiver.start()]);
    gate = new Gate(receiver.url);
    const gateUrl = await gate.start();
    adviserUser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    managerUser = await ApiUser.signIn(server.url, DEMO.shiftManager, server.demoPassword);
    clinicianUser = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    const sites = await adviserUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    siteId = sites.sites[0]!.siteId;
    patientIds = await registerPatients(adviserUser, siteId);

    // The provider admin sets up the receiving service, the region's postcodes and the directory.
    const admin = await AdminSession.open(browser, server);
    await admin.must('POST', '/api/v1/admin/endpoints', {
      endpointId: 'southport-ed',
      name: ED,
      kinds: ['referral', 'booking'],
      odsCode: 'RSP01',
      transport: { type: 'http', url: `${gateUrl}/messages` },
      phone: '0113 496 0100',
      acceptWithinSeconds: 600,
    });
    await admin.must('POST', '/api/v1/admin/postcodes/import', POSTCODES_CSV, 'text/csv');
    const ed = ['SAMPLE-ED-1H', 'SAMPLE-UTC-4H'];
    await admin.must('POST', '/api/v1/admin/directory/import', {
      services: [
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-000000000001',
          name: ED,
          type: 'emergency_department',
          postcode: 'SP1 1AA',
          latitude: 50.51,
          longitude: -3.98,
          dispositions: ed,
          referral: { kind: 'message', endpointId: 'southport-ed' },
          booking: { slotsEndpointId: 'southport-ed' },
          odsCode: 'RSP01',
        }),
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-000000000002',
          name: UTC,
          type: 'urgent_treatment_centre',
          postcode: 'SP3 9ZZ',
          latitude: 50.55,
          longitude: -3.95,
          dispositions: ed,
          referral: { kind: 'phone', phone: '0113 496 0200' },
        }),
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-000000000003',
          name: 'Farley General Emergency Department',
          type: 'emergency_department',
          postcode: 'FA9 9FA',
          latitude: 52.3,
          longitude: -4.0,
          dispositions: ed,
          referral: { kind: 'walk_in' },
        }),
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-000000000005',
          name: 'Southport GP Out-of-Hours Base',
          type: 'gp_out_of_hours_base',
          postcode: 'SP1 1AA',
          latitude: 50.51,
          longitude: -3.98,
          dispositions: ['Dx11'],
          referral: { kind: 'walk_in' },
        }),
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-000000000004',
          name: 'Southport Dental Access Centre',
          type: 'dental',
          postcode: 'SP1 1AA',
          latitude: 50.51,
          longitude: -3.98,
          dispositions: ['Dx118'],
          referral: { kind: 'walk_in' },
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

  /** David Okonjo's head injury, knocked out: "Go to an emergency department within 1 hour", confirmed. */
  async function callToEd(page: Page): Promise<string> {
    await page.goto('/calls/new');
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    await page.getByLabel("Caller's name").fill('Grace Okonjo');
    await page.getByLabel('Caller is').selectOption({ label: 'Relative' });
    await page.getByLabel('Call-back number').fill('0113 496 0321');
    await page.getByRole('checkbox', { name: /back to the caller/ }).check();
    await page.getByLabel('Where is the patient now?').fill('At home, 3 Mill Lane, SP2 7QT');
    await page.getByLabel('What is the problem?').fill('Headache after hitting his head');
    await page.getByRole('button', { name: 'Open case' }).click();
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    const caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    await page.getByRole('textbox', { name: 'NHS number' }).fill(PATIENTS.david.nhsNumber);
    await page.getByRole('button', { name: 'Search by NHS number' }).click();
    await page.getByRole('button', { name: /Select David Okonjo/ }).click();
    await page.getByLabel('Pathway').selectOption({ label: 'Headache (sample, not clinically validated)' });
    await page.getByRole('button', { name: 'Start triage' }).click();
    const question = page.locator('#triage-question');
    for (const asked of [
      /not breathing/,
      /unconscious/,
      /choking/,
      /heavy bleeding/,
      /face drooped/,
      /allergic/,
    ]) {
      await question.filter({ hasText: asked }).waitFor();
      await page.keyboard.press('2');
    }
    await question.filter({ hasText: /How did the headache start/ }).waitFor();
    await page.keyboard.press('2');
    await question.filter({ hasText: /Since the head injury/ }).waitFor();
    await page.keyboard.press('3');
    await page.keyboard.press('Enter');
    await page
      .locator('#disposition-heading')
      .filter({ hasText: /emergency department within 1 hour/ })
      .waitFor();
    await page.getByRole('button', { name: 'Confirm this disposition' }).click();
    return caseId;
  }

  it('an ED disposition: ranked services, why not others, a reason to skip the first, waiting until the service accepts, a booking confirmed by the service', async () => {
    const shots = new Screenshots('referral');
    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, adviserUser.sessionToken);
    const page = await context.newPage();
    await callToEd(page);

    // The location comes from the case (the postcode in "Where is the patient now?").
    const choice = page.getByTestId('service-choice');
    await expect
      .poll(() => page.getByLabel('Postcode where the patient is now').inputValue(), POLL)
      .toBe('SP2 7QT');
    const rows = page.getByTestId('ranked-services').locator('tbody tr');
    await rows.first().waitFor(POLL);
    expect(await rows.count()).toBe(2);
    const first = await rows.nth(0).innerText();
    expect(first).toContain(ED);
    expect(first).toMatch(/\d+\.\d km \(\d+\.\d miles\)/);
    expect(first).toContain('open 24 hours');
    expect(first).toContain('Electronic referral; times can be booked');
    expect(await rows.nth(1).innerText()).toContain(`Phone only: 0113 496 0200`);
    await choice
      .getByText('Directory of services: sample content for demonstration — not clinically validated')
      .waitFor();
    // Why not the others: each left-out service with its reasons in words.
    await page.getByText(/Why not others\? \(\d+ services left out\)/).click();
    const whyNot = page.getByTestId('why-not-others');
    expect(
      await whyNot.locator('li[data-service="Farley General Emergency Department"]').innerText(),
    ).toMatch(/too far|km/i);
    expect(await whyNot.locator('li[data-service="Southport Dental Access Centre"]').innerText()).toMatch(
      /disposition|Dx/i,
    );
    // It fits a 1366-pixel call-centre screen: nothing wider than the window.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(1366);
    await shots.take(page, 'ranked-services');
    await scan(page, 'disposition with ranked services');

    // A postcode the directory does not know is named in plain words under the field.
    const postcode = page.getByLabel('Postcode where the patient is now');
    await postcode.fill('ZZ9 9ZZ');
    await page.getByRole('button', { name: 'Find services' }).click();
    await expect.poll(() => postcode.getAttribute('aria-invalid'), POLL).toBe('true');
    expect(await page.locator('[data-testid="service-choice"] .mantine-TextInput-error').innerText()).toMatch(
      /postcode/i,
    );
    await postcode.fill('SP2 7QT');
    await page.getByRole('button', { name: 'Find services' }).click();
    await rows.first().waitFor(POLL);

    // The second service needs a reason; the phone-only one asks who took it.
    await page.getByRole('button', { name: `Choose ${UTC}` }).click();
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.textContent ?? ''), POLL)
      .toBe(`Refer to ${UTC}`);
    await page.getByRole('button', { name: 'Record the phone referral' }).click();
    await page.getByText(`Say why ${UTC} rather than the first service offered.`).waitFor();
    await page.getByLabel('Why this service and not the first one offered?').fill('The caller has no car');
    await page.getByRole('button', { name: 'Record the phone referral' }).click();
    await page.getByText(`Say who at ${UTC} took the referral.`).waitFor();
    await page.getByRole('button', { name: 'Choose a different service' }).click();

    // The first: sent, and shown as waiting while the service has not answered.
    expect(gate.forwarded).toBe(0);
    await page.getByRole('button', { name: `Choose ${ED}` }).click();
    await page.getByRole('button', { name: `Send the referral to ${ED}` }).click();
    const status = page.getByTestId('referral-status');
    await status.filter({ hasText: `Waiting for ${ED} to accept…` }).waitFor(POLL);
    await expect.poll(() => gate.held, POLL).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await status.innerText()).toContain(`Waiting for ${ED} to accept…`);
    expect(await page.getByText(/Accepted by/).count()).toBe(0);
    await shots.take(page, 'referral-waiting');
    await scan(page, 'referral waiting');

    gate.letThrough();
    await status.filter({ hasText: new RegExp(`Accepted by ${ED} \\(ref REF-\\d{6}\\)`) }).waitFor(POLL);
    await page
      .getByTestId('case-referral')
      .filter({ hasText: `Referral: Accepted by ${ED}` })
      .waitFor(POLL);
    await shots.take(page, 'referral-accepted');

    // A time is booked; "Booked for" only once the service has confirmed it.
    gate.hold();
    await page.getByRole('button', { name: 'Book a time' }).click();
    const times = page.getByRole('radiogroup', { name: `Free times at ${ED}` });
    await times.waitFor(POLL);
    await times.getByRole('radio').first().check();
    await page.getByRole('button', { name: 'Book this time' }).click();
    const booking = page.getByTestId('booking-status');
    await booking.filter({ hasText: `Waiting for ${ED} to confirm the booking` }).waitFor(POLL);
    await expect.poll(() => gate.held, POLL).toBeGreaterThanOrEqual(1);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await page.getByText(/Booked for/).count()).toBe(0);
    gate.letThrough();
    await booking
      .filter({ hasText: new RegExp(`Booked for .*\\d\\d:\\d\\d (GMT|BST) at ${ED}`) })
      .waitFor(POLL);
    await shots.take(page, 'booked');
    await scan(page, 'referral accepted and booked');
    await context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 240_000);

  it('a refusal shows its reason and the list again, and the shift manager acknowledges the alert', async () => {
    const shots = new Screenshots('referral-refused');
    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, adviserUser.sessionToken);
    const page = await context.newPage();
    // The first test's call, taken over the API (the first test takes it on the adviser's screens).
    const caseId = await callToDispositionOverApi(adviserUser, {
      siteId,
      patientId: patientIds.david,
      caller: { name: 'Grace Okonjo', relationship: 'relative', callbackNumber: '0113 496 0321' },
      location: 'At home, 3 Mill Lane, SP2 7QT',
      presentingComplaint: 'Headache after hitting his head',
      pathwayId: 'headache',
      want: (d) => d.dxCode === 'SAMPLE-ED-1H',
    });
    await page.goto(`/cases/${caseId}`);
    await receiver.refuseNext('No beds in the department tonight');
    gate.letThrough();
    await page.getByRole('button', { name: `Choose ${ED}` }).click();
    await page.getByRole('button', { name: `Send the referral to ${ED}` }).click();
    const status = page.getByTestId('referral-status');
    await status
      .filter({
        hasText: `Refused by ${ED}: No beds in the department tonight — choose another service or phone it`,
      })
      .waitFor(POLL);
    await page.getByRole('heading', { name: 'Choose another service', exact: true }).waitFor();
    await shots.take(page, 'refused');
    await scan(page, 'referral refused');
    await context.close();

    const managerContext = await staffContext(browser, server.url, { bypassCSP: true });
    await useSessionCookie(managerContext, server.url, managerUser.sessionToken);
    const manager = await managerContext.newPage();
    await manager.goto('/dashboard');
    await expect.poll(() => manager.getByTestId('stat-referral-alerts').innerText(), POLL).toMatch(/1$/);
    await manager.getByRole('link', { name: 'Referral alerts' }).click();
    await manager.getByRole('heading', { level: 1, name: 'Referral alerts' }).waitFor();
    const card = manager.locator('[data-alert="rejected"]');
    await card.filter({ hasText: `Referral refused: ${ED}` }).waitFor(POLL);
    await scan(manager, 'referral alerts');
    await card.getByRole('button', { name: 'Acknowledge' }).click();
    await card.getByText('Say what was done about it.').waitFor();
    await card
      .getByLabel('What was done about it')
      .fill('Phoned the department; patient sent to Millbrook UTC');
    await card.getByRole('button', { name: 'Acknowledge' }).click();
    await manager.getByText('No referral needs attention.').waitFor(POLL);
    await shots.take(manager, 'alerts-acknowledged');
    await managerContext.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 240_000);

  it("a clinician's refer outcome shows the same list; a walk-in service tells the caller where to go", async () => {
    const shots = new Screenshots('referral-clinician');
    // The adviser's call to a clinical call-back (Dx11), the patient now at SP2 7QT, taken over the
    // API (the adviser's screens are the first test's).
    const caseId = await callToDispositionOverApi(adviserUser, {
      siteId,
      patientId: patientIds.margaret,
      caller: { name: 'Margaret Holloway', relationship: 'self', callbackNumber: '0113 496 0777' },
      location: 'Visiting her son at 3 Mill Lane, SP2 7QT',
      presentingComplaint: 'Headache',
      pathwayId: 'headache',
      want: (d) => d.dxCode === 'Dx11',
    });

    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, clinicianUser.sessionToken);
    const page = await context.newPage();
    await page.goto(`/queue/${caseId}`);
    await page.getByRole('button', { name: 'Claim this case' }).click();
    await page.getByRole('button', { name: 'Start consultation' }).click();
    await page.getByLabel('Outcome of the consultation').selectOption({ label: 'Refer to another service' });
    await page.getByRole('button', { name: 'Record outcome' }).click();
    const rows = page.getByTestId('ranked-services').locator('tbody tr');
    await rows.first().waitFor(POLL);
    expect(await rows.count()).toBe(1);
    expect(await rows.first().innerText()).toContain('Southport GP Out-of-Hours Base');
    // Clinicians set capacity from the list too.
    await rows
      .first()
      .getByRole('combobox', { name: 'Capacity of Southport GP Out-of-Hours Base' })
      .selectOption('green');
    await rows
      .first()
      .getByRole('button', { name: 'Set capacity of Southport GP Out-of-Hours Base' })
      .click();
    await rows.first().locator('[data-testid="capacity"][data-status="green"]').waitFor(POLL);
    await page.getByRole('button', { name: 'Choose Southport GP Out-of-Hours Base' }).click();
    const advice = page.getByTestId('walk-in-advice');
    expect(await advice.innerText()).toMatch(
      /Go to Southport GP Out-of-Hours Base, 1 Hospital Road, Southport, SP1 1AA\. It is open 24 hours\./,
    );
    await scan(page, 'clinician outcome with services');
    await page.getByRole('button', { name: 'Record the advice given' }).click();
    await page
      .getByTestId('referral-status')
      .filter({ hasText: 'The caller was told to go to Southport GP Out-of-Hours Base' })
      .waitFor(POLL);
    // The case record says so too.
    await page
      .getByTestId('record-referral')
      .filter({ hasText: 'The caller was told to go to Southport GP Out-of-Hours Base' })
      .waitFor(POLL);
    await shots.take(page, 'clinician-walk-in');
    await context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 240_000);
});
