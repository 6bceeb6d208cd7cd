import { formatLocal, utcMsToLocal } from '@holdfast/core';
import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { slotWhen, waitingState } from '../src/lib/booking.ts';
import { ApiUser, callToDispositionOverApi } from './support/api.ts';
import {
  describeViolations,
  launchChromium,
  Screenshots,
  seriousAxeViolations,
  staffContext,
} from './support/browser.ts';
import { PATIENTS, registerPatients } from './support/fixtures.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * Treatment-centre appointments in the browser (issue 16), against a real `holdfast start`: a shift
 * manager's diary for two centres (one whose slots this node owns, one held by another node); the
 * health adviser's call reaches a bookable disposition and books while on the call — the screen says
 * nothing is booked while the server has not answered, and shows the centre's address and time only
 * from its 201; the other node's slots say "held by … — not bookable from here" and a time outside the
 * timeframe is not offered to an adviser (the server refuses it too); the appointment is moved with a
 * reason; the receptionist marks the patient arrived (waiting, on time); a clinician opens the case
 * from reception into the consultation, records the patient seen and closes the case. Every screen is
 * scanned with axe at 1366×768. Screenshots go to .test-results/screenshots/booking/.
 */

const POLL = { timeout: 30_000 };
const VIEWPORT = { width: 1366, height: 768 };
const CENTRE = 'Quayside Treatment Centre';
const CENTRE_ADDRESS = '4 Harbour Road, Southport';
const OTHER = 'Millbrook Treatment Centre';
const OTHER_NODE = 'Millbrook site node';

/**
 * The first whole quarter hour at least 20 minutes from now, as UK date and time; or the next UK
 * midnight when fewer than three quarter hours are left of the day, because the test books one slot
 * and then moves the booking to another of the same session (a session starting at 23:45 has one).
 */
function sessionStart(nowMs: number): { date: string; time: string; ms: number } {
  const quarter = 15 * 60_000;
  let ms = Math.ceil((nowMs + 20 * 60_000) / quarter) * quarter;
  const leftOfDay = 24 * 60 - minutesOf(utcMsToLocal(ms).time);
  if (leftOfDay < 45) ms += leftOfDay * 60_000;
  const local = utcMsToLocal(ms);
  return { date: local.date, time: local.time, ms };
}

/** Minutes into the day of an 'HH:mm' time. */
function minutesOf(time: string): number {
  return Number(time.slice(0, 2)) * 60 + Number(time.slice(3, 5));
}

/** 'HH:mm' an hour after a UK start time, kept within the day ('24:00' at most). */
function sessionEnd(startTime: string): string {
  const minutes = Math.min(24 * 60, minutesOf(startTime) + 60);
  return minutes === 24 * 60
    ? '24:00'
    : `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

describe('waiting at the centre, coloured as the CAS queue (pure)', () => {
  const arrivedAtMs = Date.UTC(2026, 9, 25, 0, 30);
  const row = { state: 'arrived' as const, arrivedAtMs, timeframeMinutes: 120, waiting: null };
  it('is on time, then at risk in the last fifth of the window, then breached; nothing before arrival', () => {
    expect(waitingState(row, arrivedAtMs + 60 * 60_000)?.timing).toBe('on_time');
    expect(waitingState(row, arrivedAtMs + 97 * 60_000)?.timing).toBe('at_risk');
    expect(waitingState(row, arrivedAtMs + 121 * 60_000)).toMatchObject({
      timing: 'breached',
      waitedMinutes: 121,
    });
    expect(waitingState({ ...row, state: 'booked', arrivedAtMs: null }, arrivedAtMs)).toBeNull();
    expect(waitingState({ ...row, state: 'seen' }, arrivedAtMs)).toBeNull();
  });
  it('says the day and UK time the patient is told, across the autumn clock change', () => {
    expect(slotWhen('2026-10-25 01:30')).toBe('Sunday 25 October, 01:30');
    expect(formatLocal(Date.UTC(2026, 9, 25, 1, 30))).toBe('2026-10-25 01:30');
  });
});

describe('treatment-centre appointments in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviserUser: ApiUser;
  let clinicianUser: ApiUser;
  let receptionistUser: ApiUser;
  let managerUser: ApiUser;
  const violations: string[] = [];
  let start: { date: string; time: string; ms: number };
  let siteId = '';
  let patientIds: Record<keyof typeof PATIENTS, string>;

  async function scan(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  }

  async function pageAs(user: ApiUser) {
    const context = await staffContext(browser, server.url, { bypassCSP: true, viewport: VIEWPORT });
    await useSessionCookie(context, server.url, user.sessionToken);
    return { context, page: await context.newPage() };
  }

  async function fitsTheScreen(page: Page) {
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(
      VIEWPORT.width,
    );
  }

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    [adviserUser, clinicianUser, receptionistUser, managerUser] = await Promise.all([
      ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword),
      ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword),
      ApiUser.signIn(server.url, DEMO.receptionist, server.demoPassword),
      ApiUser.signIn(server.url, DEMO.shiftManager, server.demoPassword),
    ]);
    const sites = await adviserUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    siteId = sites.sites[0]!.siteId;
    patientIds = await registerPatients(adviserUser, siteId);

    // The shift manager's diaries: this node's centre with a session starting soon, and one later
    // (outside a 12-hour window); another centre whose home is another node holds its own slots.
    start = sessionStart(Date.now());
    const centre = (centreId: string, name: string, extra: Record<string, string> = {}) => ({
      centreId,
      siteId,
      name,
      address: centreId === 'quayside' ? CENTRE_ADDRESS : '1 Mill Street, Millbrook',
      postcode: centreId === 'quayside' ? 'SP1 1AA' : 'SP3 9ZZ',
      lat: 50.51,
      lon: -3.98,
      phone: '0113 496 0500',
      rooms: [{ roomId: 'room-1', name: 'Room 1' }],
      ...extra,
    });
    const template = {
      templateId: 'urgent-15',
      name: 'Urgent, 15 minutes',
      slotMinutes: 15,
      patientsPerSlot: 1,
      kinds: ['urgent_face_to_face'],
    };
    for (const [id, name, extra] of [
      ['quayside', CENTRE, {}],
      ['millbrook', OTHER, { homeNodeId: 'millbrook-node', homeNodeName: OTHER_NODE }],
    ] as const) {
      await managerUser.call('POST', '/api/v1/centres', centre(id, name, extra));
      await managerUser.call('POST', `/api/v1/centres/${id}/templates`, template);
      await managerUser.call('POST', `/api/v1/centres/${id}/sessions`, {
        templateId: 'urgent-15',
        roomId: 'room-1',
        clinicianName: 'Dr Amara Wells',
        date: start.date,
        startLocal: start.time,
        endLocal: sessionEnd(start.time),
      });
    }
    // The demo's own centres (holdfast start makes two) are closed for this test, so that the list
    // shows this test's centres, the other node's slots among them.
    const all = await managerUser.call<{ centres: { centreId: string }[] }>('GET', '/api/v1/centres');
    for (const c of all.centres.filter((c) => !['quayside', 'millbrook'].includes(c.centreId))) {
      for (const day of [0, 1, 2, 3, 4].map((d) => utcMsToLocal(start.ms + d * 24 * 3600_000).date)) {
        const diary = await managerUser.call<{ slots: { slotId: string; blocked: boolean }[] }>(
          'GET',
          `/api/v1/centres/${c.centreId}/diary?date=${day}`,
        );
        const open = diary.slots.filter((s) => !s.blocked).map((s) => s.slotId);
        for (let i = 0; i < open.length; i += 500)
          await managerUser.call('POST', '/api/v1/slots/block', {
            slotIds: open.slice(i, i + 500),
            reason: 'Closed for this test',
          });
      }
    }
    const later = utcMsToLocal(start.ms + 2 * 24 * 3600_000);
    await managerUser.call('POST', '/api/v1/centres/quayside/sessions', {
      templateId: 'urgent-15',
      roomId: 'room-1',
      clinicianName: 'Dr Amara Wells',
      date: later.date,
      startLocal: '10:00',
      endLocal: '11:00',
    });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /**
   * The adviser's call for David Okonjo, a new kind of headache: "Contact a GP or out-of-hours
   * service within 12 hours" (Dx07, bookable at a treatment centre), confirmed. Returns the case id.
   */
  async function callToBookableDisposition(page: Page): Promise<string> {
    await page.goto('/calls/new');
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    await page.getByLabel("Caller's name").fill('David Okonjo');
    await page.getByLabel('Caller is').selectOption({ label: 'The patient (self)' });
    await page.getByLabel('Call-back number').fill('0113 496 0777');
    await page.getByRole('checkbox', { name: /back to the caller/ }).check();
    await page.getByLabel('Where is the patient now?').fill('At home, 3 Mill Lane, SP2 7QT');
    await page.getByLabel('What is the problem?').fill('Headache');
    await page.getByRole('button', { name: 'Open case' }).click();
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    const caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    await page.getByRole('textbox', { name: 'NHS number' }).fill(PATIENTS.david.nhsNumber);
    await page.getByRole('button', { name: 'Search by NHS number' }).click();
    // Selecting can meet a case changed a moment before (a conflict, shown): select again then.
    for (let attempt = 0; attempt < 3; attempt++) {
      await page.getByRole('button', { name: /Select David Okonjo/ }).click();
      const identified = page.getByText('Identified', { exact: true });
      if (
        await identified.waitFor({ timeout: 5_000 }).then(
          () => true,
          () => false,
        )
      )
        break;
    }
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
    await page.keyboard.press('3');
    await question.filter({ hasText: /Do any of these apply/ }).waitFor();
    await page.keyboard.press('4');
    await page.keyboard.press('Enter');
    await page
      .locator('#disposition-heading')
      .filter({ hasText: /within 12 hours/ })
      .waitFor();
    await page.getByRole('button', { name: 'Confirm this disposition' }).click();
    return caseId;
  }

  it('book from a disposition, arrive at reception, seen by a clinician, the case closes', async () => {
    const shots = new Screenshots('booking');

    // --- The adviser books while on the call.
    const adviser = await pageAs(adviserUser);
    const caseId = await callToBookableDisposition(adviser.page);
    const panel = adviser.page.getByTestId('booking-panel');
    const options = panel.getByTestId('appointment-options');
    await options.locator('tbody tr').first().waitFor(POLL);
    const mine = options.locator(`tbody tr[data-bookable="yes"][data-within="yes"]`, { hasText: CENTRE });
    const held = options.locator('tbody tr[data-bookable="no"]', { hasText: OTHER });
    await held.first().waitFor(POLL);
    expect(await held.first().innerText()).toContain(`Held by ${OTHER_NODE} — not bookable from here`);
    expect(await held.first().getByRole('button').count()).toBe(0);
    const firstWhen = slotWhen(`${start.date} ${start.time}`);
    expect(await mine.first().innerText()).toContain(firstWhen);
    await fitsTheScreen(adviser.page);
    await shots.take(adviser.page, 'booking-options');
    await scan(adviser.page, 'booking options on the call');

    // A later time (two days ahead, outside the 12-hour window) is not offered to an adviser, and
    // the server refuses it from them too.
    const outsideSlot = await adviserUser
      .call<{ options: { slot: { slotId: string }; withinTimeframe: boolean }[] }>(
        'GET',
        `/api/v1/cases/${caseId}/appointment-options?limit=100`,
      )
      .then((r) => r.options.find((o) => !o.withinTimeframe));
    if (outsideSlot) {
      const row = options.locator(`tbody tr[data-slot-id="${outsideSlot.slot.slotId}"]`);
      if ((await row.count()) > 0) expect(await row.innerText()).toContain('Only a clinician can book');
      await expect(
        adviserUser.call('POST', `/api/v1/cases/${caseId}/appointments`, {
          slotId: outsideSlot.slot.slotId,
          outsideTimeframeReason: 'The patient prefers a later day',
        }),
      ).rejects.toThrow(/outsideTimeframeReason|only a clinician/);
    }

    // Booking: while the server has not answered, the screen does not say booked.
    let release!: () => void;
    const held201 = new Promise<void>((r) => (release = r));
    await adviser.page.route('**/api/v1/cases/*/appointments', async (route: Route) => {
      if (route.request().method() === 'POST') await held201;
      await route.continue();
    });
    await mine
      .first()
      .getByRole('button', { name: `Book ${firstWhen} at ${CENTRE}` })
      .click();
    await panel.getByTestId('booking-sending').waitFor(POLL);
    expect(await panel.getByTestId('booking-sending').innerText()).toContain('not booked yet');
    expect(await panel.getByTestId('appointment').count()).toBe(0);
    expect(await panel.innerText()).not.toMatch(/^Booked$/m);
    await shots.take(adviser.page, 'booking-waiting-for-server');
    release();
    const appointment = panel.getByTestId('appointment');
    await appointment.waitFor(POLL);
    await adviser.page.unroute('**/api/v1/cases/*/appointments');
    expect(await appointment.getAttribute('data-state')).toBe('booked');
    const told = await appointment.getByTestId('appointment-when-where').innerText();
    expect(told).toBe(`${firstWhen} at ${CENTRE}, ${CENTRE_ADDRESS}, SP1 1AA`);
    await shots.take(adviser.page, 'booked');
    await scan(adviser.page, 'appointment booked');

    // Moved to the next time with a reason: the old one is listed as cancelled with it.
    await appointment.getByRole('button', { name: 'Rebook…' }).click();
    await panel.getByLabel('Why is the appointment being moved?').fill('The patient needs a lift first');
    const moveTo = panel
      .getByTestId('slot-choice')
      .locator('tbody tr[data-bookable="yes"][data-within="yes"]', { hasText: CENTRE })
      .first();
    const movedWhen = (await moveTo.locator('td').first().innerText()).split('\n')[0]!.trim();
    await moveTo.getByRole('button', { name: `Move to ${movedWhen} at ${CENTRE}` }).click();
    await panel
      .getByTestId('appointment-when-where')
      .filter({ hasText: `${movedWhen} at ${CENTRE}` })
      .waitFor(POLL);
    expect(await panel.getByTestId('earlier-appointments').innerText()).toContain(
      `${firstWhen} at ${CENTRE}: Cancelled (The patient needs a lift first)`,
    );
    await scan(adviser.page, 'appointment moved');
    await adviser.context.close();

    // --- Reception: the patient arrives.
    const reception = await pageAs(receptionistUser);
    await reception.page.goto('/reception');
    await reception.page.getByRole('heading', { level: 1, name: 'Reception' }).waitFor();
    await reception.page.getByLabel('Treatment centre', { exact: true }).selectOption({ label: CENTRE });
    await reception.page.getByLabel('Day', { exact: true }).fill(start.date);
    const list = reception.page.getByTestId('reception-list');
    const patientRow = list.locator('tbody tr', { hasText: /Okonjo/i }).first();
    await patientRow.waitFor(POLL);
    expect(await patientRow.getAttribute('data-state')).toBe('booked');
    // No clinical notes at the desk: the list is who and when, not why.
    expect(await list.innerText()).not.toContain('Headache');
    await patientRow.getByRole('button', { name: /^Arrived: / }).click();
    await list.locator('tbody tr[data-state="arrived"]', { hasText: /Okonjo/i }).waitFor(POLL);
    const arrived = list.locator('tbody tr[data-state="arrived"]', { hasText: /Okonjo/i });
    expect(await arrived.getAttribute('data-waiting')).toBe('on_time');
    expect(await arrived.getByTestId('waiting').innerText()).toMatch(/On time/i);
    await fitsTheScreen(reception.page);
    await shots.take(reception.page, 'reception-arrived');
    await scan(reception.page, 'reception list');

    // A walk-in: a case opened at the desk, arrived at once.
    await reception.page.getByRole('button', { name: 'Walk-in patient…' }).click();
    await reception.page.getByLabel("Patient's name").fill('Rosa Finch');
    await reception.page.getByLabel('Phone number').fill('0113 496 0999');
    await reception.page.getByLabel('Why have they come?').fill('Cut hand');
    await scan(reception.page, 'walk-in form');
    await reception.page.getByRole('button', { name: 'Open a case and mark arrived' }).click();
    // A walk-in arrives today; the booked session may be tomorrow's (see sessionStart).
    const today = utcMsToLocal(Date.now()).date;
    if (today !== start.date) await reception.page.getByLabel('Day', { exact: true }).fill(today);
    await reception.page
      .getByRole('button', { name: /Open the case|Seen: Rosa Finch/ })
      .first()
      .waitFor(POLL);
    await reception.context.close();

    // --- The clinician opens the case from reception, records the patient seen, and closes it.
    const clinician = await pageAs(clinicianUser);
    await clinician.page.goto('/reception');
    await clinician.page.getByLabel('Treatment centre', { exact: true }).selectOption({ label: CENTRE });
    await clinician.page.getByLabel('Day', { exact: true }).fill(start.date);
    const row = clinician.page
      .getByTestId('reception-list')
      .locator('tbody tr', { hasText: /Okonjo/i })
      .first();
    await row.getByRole('button', { name: /^Seen: / }).click();
    await clinician.page
      .getByTestId('reception-list')
      .locator('tbody tr[data-state="seen"]', { hasText: /Okonjo/i })
      .waitFor(POLL);
    await row.getByRole('button', { name: /^Open the case: / }).click();
    await clinician.page.waitForURL(`**/queue/${caseId}`);
    await clinician.page.getByRole('heading', { level: 1, name: /^Case: Headache/ }).waitFor();
    await clinician.page.getByRole('button', { name: 'Claim this case' }).click();
    await clinician.page.getByRole('button', { name: 'Start consultation' }).click();
    await clinician.page.getByLabel('History').fill('Seen at the treatment centre.');
    await clinician.page.getByLabel('Outcome of the consultation').selectOption({
      label: 'Advice given: close the case',
    });
    await clinician.page.getByRole('button', { name: 'Record outcome' }).click();
    await clinician.page.getByRole('status').filter({ hasText: 'This case is closed' }).waitFor(POLL);
    await scan(clinician.page, 'case closed after the consultation at the centre');
    await shots.take(clinician.page, 'case-closed');
    const closed = await clinicianUser.call<{ status: string }>('GET', `/api/v1/cases/${caseId}`);
    expect(closed.status).toBe('closed');
    const seen = await receptionistUser.call<{
      appointments: { caseId: string; state: string; seenByName: string | null }[];
    }>('GET', `/api/v1/centres/quayside/reception?date=${start.date}`);
    const mineSeen = seen.appointments.find((a) => a.caseId === caseId);
    expect(mineSeen).toMatchObject({ state: 'seen' });
    expect(mineSeen?.seenByName).toBeTruthy();
    await clinician.context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 400_000);

  it('a clinician books outside the timeframe only with a reason, and cancels with one', async () => {
    // The same call as the first test's, taken over the API: the adviser's screens are the first test's.
    const caseId = await callToDispositionOverApi(adviserUser, {
      siteId,
      patientId: patientIds.david,
      caller: { name: 'David Okonjo', relationship: 'self', callbackNumber: '0113 496 0777' },
      location: 'At home, 3 Mill Lane, SP2 7QT',
      presentingComplaint: 'Headache',
      pathwayId: 'headache',
      want: (d) => d.dxCode === 'Dx07',
    });
    const { context, page } = await pageAs(clinicianUser);
    await page.goto(`/queue/${caseId}`);
    await page.getByRole('button', { name: 'Claim this case' }).click();
    await page.getByRole('button', { name: 'Start consultation' }).click();
    await page.getByLabel('Outcome of the consultation').selectOption({ label: 'Book an appointment' });
    const panel = page.getByTestId('booking-panel');
    const outside = panel.locator('tbody tr[data-within="no"][data-bookable="yes"]').first();
    await outside.waitFor(POLL);
    const when = (await outside.locator('td').first().innerText()).split('\n')[0]!.trim();
    await outside.getByRole('button', { name: `Choose ${when} at ${CENTRE}` }).click();
    const form = panel.getByRole('form', { name: 'Book outside the timeframe' });
    // Without a reason the server refuses, and says so at the field.
    await form.getByRole('button', { name: 'Book outside the timeframe' }).click();
    await form.locator('[aria-invalid="true"]').waitFor(POLL);
    expect(await panel.getByTestId('appointment').count()).toBe(0);
    await scan(page, 'outside the timeframe without a reason');
    await form
      .getByLabel('Why book outside the timeframe? (recorded with the booking)')
      .fill('The patient is away until Monday; safety-netting given');
    await form.getByRole('button', { name: 'Book outside the timeframe' }).click();
    const appointment = panel.getByTestId('appointment');
    await appointment.waitFor(POLL);
    expect(await appointment.innerText()).toContain(
      'Booked outside the timeframe: The patient is away until Monday; safety-netting given',
    );
    await appointment.getByRole('button', { name: 'Cancel appointment…' }).click();
    await panel.getByLabel('Why is the appointment being cancelled?').fill('The patient will go to their GP');
    await panel.getByRole('button', { name: 'Cancel the appointment', exact: true }).click();
    await panel
      .getByTestId('earlier-appointments')
      .filter({ hasText: `${when} at ${CENTRE}: Cancelled (The patient will go to their GP)` })
      .waitFor(POLL);
    expect(await panel.getByTestId('appointment').count()).toBe(0);
    await fitsTheScreen(page);
    await scan(page, 'clinician booking panel after a cancellation');
    await context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 300_000);

  it('the diaries screen shows centres, the day’s slots with who holds them, and blocks with a reason', async () => {
    const { context, page } = await pageAs(managerUser);
    await page.goto('/admin/centres');
    await page.getByRole('heading', { level: 1, name: 'Treatment centres and diaries' }).waitFor();
    const centres = page.getByTestId('centres');
    await centres.locator('tbody tr', { hasText: OTHER }).waitFor(POLL);
    expect(await centres.locator('tbody tr', { hasText: OTHER }).innerText()).toContain(OTHER_NODE);
    await page.getByLabel('Centre to plan').selectOption({ label: CENTRE });
    await page.getByLabel('Day of the diary').fill(start.date);
    const slots = page.getByTestId('diary-slots');
    await slots.locator('tbody tr').first().waitFor(POLL);
    const last = slots.locator('tbody tr').last();
    await last.getByRole('checkbox').check();
    await page.getByLabel('Reason for blocking or releasing').fill('Room 1 closed for cleaning');
    await page.getByRole('button', { name: 'Block the chosen slots' }).click();
    await slots.locator('tbody tr[data-blocked="yes"]').first().waitFor(POLL);
    expect(await slots.locator('tbody tr[data-blocked="yes"]').first().innerText()).toContain(
      'Room 1 closed for cleaning',
    );
    await fitsTheScreen(page);
    await scan(page, 'diaries');
    await context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 240_000);
});
