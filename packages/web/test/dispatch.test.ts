import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUser } from './support/api.ts';
import {
  describeViolations,
  launchChromium,
  Screenshots,
  seriousAxeViolations,
  staffContext,
} from './support/browser.ts';
import { AdminSession, POSTCODES_CSV } from './support/directory.ts';
import { HEADACHE_TO_CALLBACK } from './support/fixtures.ts';
import { takeCallToCallback, useSessionCookie } from './support/flows.ts';
import { DEMO_CARS, demoVehicleId } from '../../server/src/dispatch/demo.ts';
import { DEMO, freePort, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * Home visits and dispatch in the browser (issue 17), against a real `holdfast start`: a clinician's
 * outcome "home visit within 2 hours" with its reason creates the visit; the dispatcher (who lands on
 * the board, not the CAS queue) sees it with the suggested car and allocates it — shown allocated only
 * once the server's board says so — and sees the address but never the key-safe code; the crew's
 * phone page at 390×844 shows the address and access instructions, sets the car's status, sends the
 * position from the browser's location and by hand (the board's car row and map marker follow), and
 * records the outcome; the case then closes and the Post Event Message to the practice is queued.
 * Screenshots go to .test-results/screenshots/dispatch/.
 */

const POLL = { timeout: 45_000 };
const KEY_SAFE = 'Key safe left of the back door, code 4321';
const PATIENT = {
  nhsNumber: '9434765919',
  givenName: 'Edna',
  familyName: 'Marsh',
  dateOfBirth: '1938-02-11',
  sex: 'female',
  phone: '07700 900456',
  address: '7 Harbour Row, Southport',
  postcode: 'SP2 7QT',
  accessInstructions: KEY_SAFE,
  specialNotes: [],
  registeredPractice: { odsCode: 'B86019', name: 'Harbour Row Surgery' },
};

describe('home visits and dispatch in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviserUser: ApiUser;
  let clinicianUser: ApiUser;
  let dispatcherUser: ApiUser;
  let driverUser: ApiUser;
  let managerUser: ApiUser;
  let vehicleId: string;
  const contexts: BrowserContext[] = [];
  const violations: string[] = [];

  async function scan(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  }

  async function pageAs(
    user: ApiUser,
    options: Parameters<typeof staffContext>[2] = {},
  ): Promise<{ context: BrowserContext; page: Page }> {
    const context = await staffContext(browser, server.url, { bypassCSP: true, ...options });
    contexts.push(context);
    await useSessionCookie(context, server.url, user.sessionToken);
    return { context, page: await context.newPage() };
  }

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    const signIn = (name: string) => ApiUser.signIn(server.url, name, server.demoPassword);
    let prescriberUser: ApiUser;
    [adviserUser, clinicianUser, dispatcherUser, driverUser, managerUser, prescriberUser] = await Promise.all(
      [
        signIn(DEMO.adviser),
        signIn(DEMO.clinician),
        signIn('dispatcher@northshire'),
        signIn('driver@northshire'),
        signIn(DEMO.shiftManager),
        signIn('prescriber@northshire'),
      ],
    );
    const sites = await adviserUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    const siteId = sites.sites[0]!.siteId;
    // Registered by a clinician: an adviser's role may not write access instructions.
    await clinicianUser.call('POST', '/api/v1/patients', { homeSiteId: siteId, record: PATIENT });

    // Postcodes place the visit on the map; the practice takes Post Event Messages (nothing listens:
    // the queued message is what is checked).
    const admin = await AdminSession.open(browser, server);
    await admin.must('POST', '/api/v1/admin/postcodes/import', POSTCODES_CSV, 'text/csv');
    await admin.must('POST', '/api/v1/admin/endpoints', {
      endpointId: 'harbour-row-surgery',
      name: 'Harbour Row Surgery',
      kinds: ['post_event_message'],
      odsCode: 'B86019',
      transport: { type: 'http', url: `http://127.0.0.1:${await freePort()}/messages` },
      phone: '0113 496 0500',
      acceptWithinSeconds: 3600,
    });
    await admin.close();

    // One car, crewed now by the demo driver and the demo prescriber (a clinician role).
    const { vehicle } = await managerUser.call<{ vehicle: { vehicleId: string } }>(
      'POST',
      '/api/v1/vehicles',
      {
        callSign: 'NQ1',
        registration: 'NQ26 HFV',
        baseSiteId: siteId,
        baseLat: 50.51,
        baseLon: -3.98,
      },
    );
    vehicleId = vehicle.vehicleId;
    const startMs = Date.now() - 3_600_000;
    const endMs = Date.now() + 8 * 3_600_000;
    for (const [userName, role] of [
      [driverUser.username, 'driver'],
      [prescriberUser.username, 'prescriber'],
    ] as const)
      await managerUser.call('POST', '/api/v1/rota/shifts', {
        userName,
        role,
        location: { kind: 'car', id: vehicleId },
        startMs,
        endMs,
      });
  }, 300_000);
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
  });

  it('clinician requests a visit → dispatcher allocates → the crew works it from the phone → the case closes and the PEM goes', async () => {
    const shots = new Screenshots('dispatch');

    // The adviser's call, triaged to a clinical call-back.
    const adviser = await pageAs(adviserUser);
    await adviser.page.goto('/calls/new');
    const caseId = await takeCallToCallback(
      adviser.page,
      {
        callerName: 'Edna Marsh',
        relationship: 'The patient (self)',
        callbackNumber: '0113 496 0777',
        location: 'At home, 7 Harbour Row, SP2 7QT',
        problem: 'Headache',
        nhsNumber: PATIENT.nhsNumber,
        patient: /Select Edna Marsh/,
        hasSpecialNotes: false,
      },
      { pathwayLabel: 'Headache (sample, not clinically validated)', answers: HEADACHE_TO_CALLBACK.answers },
    );
    await adviser.context.close();

    // The clinician: home visit within 2 hours, with the reason; a missing reason is refused at its field.
    const clinician = await pageAs(clinicianUser, { viewport: { width: 1366, height: 768 } });
    await clinician.page.goto(`/queue/${caseId}`);
    await clinician.page.getByRole('button', { name: 'Claim this case' }).click();
    await clinician.page.getByRole('button', { name: 'Start consultation' }).click();
    await clinician.page.getByLabel('Outcome of the consultation').selectOption({ label: 'Home visit' });
    await clinician.page.getByLabel('Home visit within (hours)').fill('2');
    await clinician.page.getByRole('button', { name: 'Record outcome' }).click();
    await clinician.page
      .getByLabel('Reason for the home visit')
      .and(clinician.page.locator('[aria-invalid="true"]'))
      .waitFor(POLL);
    expect(await clinician.page.getByText(/Home visit requested/).count()).toBe(0);
    await clinician.page
      .getByLabel('Reason for the home visit')
      .fill('Frail, lives alone, cannot get to a centre: needs examining at home');
    await clinician.page.getByRole('button', { name: 'Record outcome' }).click();
    // The consultation form (and its passing "Outcome recorded" line) closes with the outcome; what
    // stays is the visit as the server holds it.
    await clinician.page
      .getByTestId('home-visit')
      .getByText(/Requested within 2 hours \(by \d\d:\d\d (GMT|BST)\): Waiting for a car\./)
      .waitFor(POLL);
    await shots.take(clinician.page, 'home-visit-outcome');
    await scan(clinician.page, 'clinician home visit outcome');
    const { visits } = await dispatcherUser.call<{ visits: { visitId: string }[] }>(
      'GET',
      `/api/v1/visits?caseId=${caseId}`,
    );
    expect(visits).toHaveLength(1);
    const visitId = visits[0]!.visitId;

    // The dispatcher lands on the board, sees the visit with the suggested car, and allocates it.
    const dispatcher = await pageAs(dispatcherUser, { viewport: { width: 1366, height: 768 } });
    await dispatcher.page.goto('/');
    await dispatcher.page.getByRole('heading', { level: 1, name: 'Dispatch board' }).waitFor(POLL);
    expect(new URL(dispatcher.page.url()).pathname).toBe('/dispatch');
    const row = dispatcher.page.locator(`[data-testid="board-visit"][data-visit-id="${visitId}"]`);
    await row.waitFor(POLL);
    expect(await row.getAttribute('data-status')).toBe('requested');
    expect(await row.getAttribute('data-timing')).toBe('on_time');
    expect(await row.innerText()).toContain('7 Harbour Row');
    const answer = await dispatcherUser.call<{
      visits: { visitId: string; suggestions: unknown[] }[];
    }>('GET', '/api/v1/dispatch/board');
    expect(
      answer.visits.find((v) => v.visitId === visitId)?.suggestions.length,
      JSON.stringify(answer).slice(0, 3000),
    ).toBeGreaterThan(0);
    await row
      .getByTestId('visit-suggestion')
      .filter({ hasText: /NQ1: arrives about/ })
      .waitFor(POLL);
    const car = dispatcher.page.locator(`[data-testid="board-vehicle"][data-vehicle-id="${vehicleId}"]`);
    expect(await car.getAttribute('data-available')).toBe('true');
    expect(await car.getByTestId('vehicle-position').innerText()).toBe('No position reported');
    // The map: the car (at its base) and the visit, drawn with no tiles.
    const map = dispatcher.page.getByTestId('dispatch-map');
    await map.locator(`g[data-vehicle-id="${vehicleId}"]`).waitFor(POLL);
    await map.locator(`g[data-visit-id="${visitId}"]`).waitFor(POLL);
    // The dispatcher sees the address, never the key-safe code.
    expect(await dispatcher.page.locator('body').innerText()).not.toContain('4321');
    await shots.take(dispatcher.page, 'board-waiting');
    await scan(dispatcher.page, 'dispatch board');
    await row.getByRole('button', { name: /^Allocate NQ1 to the visit at/ }).click();
    await dispatcher.page
      .locator(`[data-testid="board-visit"][data-visit-id="${visitId}"][data-status="allocated"]`)
      .waitFor(POLL);
    expect(await row.getByTestId('visit-status').innerText()).toMatch(/Car allocated: NQ1/);
    await shots.take(dispatcher.page, 'board-allocated');

    // Re-allocation: the visit moves to the demo's sample car (a reason is asked for at its field
    // first), NQ1 is free again; then it moves back to NQ1, whose crew works it below.
    const sample = demoVehicleId(DEMO_CARS[0]!);
    const reallocateTo = async (vehicle: string, callSign: string, reason: string) => {
      await row.getByRole('button', { name: /^Re-allocate the visit at/ }).click();
      const form = row.getByRole('form', { name: 'Re-allocate the visit' });
      await form.getByLabel('New car').selectOption(vehicle);
      await form.getByRole('button', { name: 'Re-allocate', exact: true }).click();
      await form.getByText('Say why the visit is moved to another car').waitFor(POLL);
      await form.getByLabel('Reason for re-allocating').fill(reason);
      await form.getByRole('button', { name: 'Re-allocate', exact: true }).click();
      await row
        .getByTestId('visit-status')
        .filter({ hasText: new RegExp(`Car allocated: ${callSign.replace(/[()]/g, '\\$&')}`) })
        .waitFor(POLL);
    };
    await reallocateTo(sample, DEMO_CARS[0]!.callSign, 'NQ1 has a flat tyre');
    await dispatcher.page
      .locator(`[data-testid="board-vehicle"][data-vehicle-id="${vehicleId}"][data-status="available"]`)
      .waitFor(POLL);
    await dispatcher.page
      .locator(`[data-testid="board-vehicle"][data-vehicle-id="${sample}"][data-status="allocated"]`)
      .waitFor(POLL);
    await shots.take(dispatcher.page, 'board-reallocated');
    await reallocateTo(vehicleId, 'NQ1', 'Tyre changed: NQ1 is nearer');
    await dispatcher.page
      .locator(`[data-testid="board-vehicle"][data-vehicle-id="${sample}"][data-status="available"]`)
      .waitFor(POLL);
    const moved = await dispatcherUser.call<{ visit: { vehicleId: string } }>(
      'GET',
      `/api/v1/visits/${visitId}`,
    );
    expect(moved.visit.vehicleId).toBe(vehicleId);

    // The crew's phone: the visit with the address and access instructions; statuses; position.
    const crew = await pageAs(driverUser, { viewport: { width: 390, height: 844 } });
    await crew.context.grantPermissions(['geolocation']);
    await crew.context.setGeolocation({ latitude: 50.505, longitude: -3.99, accuracy: 20 });
    await crew.page.goto('/');
    await crew.page.getByRole('heading', { level: 1, name: 'My car: NQ1' }).waitFor(POLL);
    expect(new URL(crew.page.url()).pathname).toBe('/crew');
    expect(await crew.page.getByTestId('crew-visit-address').innerText()).toContain('7 Harbour Row');
    expect(await crew.page.getByTestId('crew-access').innerText()).toContain(KEY_SAFE);
    await crew.page.getByRole('button', { name: /^Travelling/ }).click();
    await crew.page.locator('[data-testid="crew-car"][data-status="travelling"]').waitFor(POLL);
    await crew.page.getByRole('button', { name: 'Send my position' }).click();
    await crew.page
      .getByTestId('crew-position-sent')
      .filter({ hasText: /^Position sent at/ })
      .waitFor(POLL);
    // The board follows: the car's row and marker show the new position and its age.
    await dispatcher.page
      .locator(`[data-testid="board-vehicle"][data-vehicle-id="${vehicleId}"][data-status="travelling"]`)
      .waitFor(POLL);
    await car
      .getByTestId('vehicle-position')
      .filter({ hasText: /^50\.5050, -3\.9900 · / })
      .waitFor(POLL);
    const firstAt = Number(await car.getAttribute('data-position-at'));
    expect(firstAt).toBeGreaterThan(0);
    expect(await map.locator(`g[data-vehicle-id="${vehicleId}"]`).getAttribute('data-position-at')).toBe(
      String(firstAt),
    );

    // The position typed in by hand when the phone gives none: checked at the field first.
    await crew.page.getByRole('button', { name: 'Type the position in instead' }).click();
    await crew.page.getByLabel('Latitude').fill('north');
    await crew.page.getByLabel('Longitude').fill('-3.985');
    await crew.page.getByRole('button', { name: 'Send this position' }).click();
    await crew.page.getByText(/Give the latitude as a number/).waitFor(POLL);
    await crew.page.getByLabel('Latitude').fill('50.5');
    await crew.page.getByRole('button', { name: 'Send this position' }).click();
    await crew.page
      .getByTestId('crew-position-sent')
      .filter({ hasText: /^Position sent at/ })
      .waitFor(POLL);
    await car
      .getByTestId('vehicle-position')
      .filter({ hasText: /^50\.5000, -3\.9850 · / })
      .waitFor(POLL);
    expect(Number(await car.getAttribute('data-position-at'))).toBeGreaterThanOrEqual(firstAt);

    await crew.page.getByRole('button', { name: /^On scene/ }).click();
    await crew.page.locator('[data-testid="crew-car"][data-status="on_scene"]').waitFor(POLL);
    expect(await crew.page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shots.take(crew.page, 'crew-on-scene');
    await scan(crew.page, 'crew phone page');

    // The outcome: chosen, never preselected; then the case closes and the PEM is queued.
    await crew.page.getByRole('button', { name: 'Record visit outcome' }).click();
    await crew.page.getByText('Choose the outcome of the visit.').waitFor(POLL);
    await crew.page
      .getByLabel('Outcome', { exact: true })
      .selectOption({ label: 'Seen and treated at home' });
    await crew.page
      .getByLabel('Note')
      .fill('Examined at home; tension headache; safety-netting advice given');
    await crew.page.getByRole('button', { name: 'Record visit outcome' }).click();
    await crew.page
      .getByTestId('crew-outcome-sent')
      .filter({ hasText: 'Outcome recorded: Seen and treated at home.' })
      .waitFor(POLL);
    await shots.take(crew.page, 'crew-outcome');

    await expect
      .poll(
        async () => (await clinicianUser.call<{ status: string }>('GET', `/api/v1/cases/${caseId}`)).status,
        POLL,
      )
      .toBe('closed');
    await expect
      .poll(async () => {
        const { messages } = await managerUser.call<{ messages: { kind: string }[] }>(
          'GET',
          `/api/v1/messages?caseId=${caseId}`,
        );
        return messages.map((m) => m.kind);
      }, POLL)
      .toContain('post_event_message');
    // The visit leaves the board.
    await row.waitFor({ state: 'detached', ...POLL });
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 600_000);
});
