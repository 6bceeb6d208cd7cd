import type { Browser, BrowserContext, Dialog, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUser } from './support/api.ts';
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
 * The adviser under pressure (issue 12, "The adviser"; hazards H130–H134), in Chromium at a
 * call-centre monitor's 1366×768: a mis-keyed "1" only proposes an ambulance, and nothing is sent
 * until the adviser confirms; a correction after confirming is a recorded re-triage; Back mid-call
 * asks first and the call stays in "My open calls", resumable; a call ends with a reason and leaves
 * "calls with advisers"; field limits show while typing; the New call form and patient search
 * results fit above the fold, with the focus on the results. axe-core on every screen changed.
 * Screenshots go to .test-results/screenshots/adviser-calls/.
 */

interface CaseRead {
  status: string;
  record: { timeline: { type: string; what: string }[] };
}

describe('the adviser’s calls at 1366×768', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviser: ApiUser;
  let manager: ApiUser;
  let context: BrowserContext;
  let page: Page;
  const shots = new Screenshots('adviser-calls');
  const violations: string[] = [];
  const scan = async (screen: string) => {
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  };
  /** Dialogs the app raised (the leave warning), answered by `answerDialogs`. */
  const dialogs: string[] = [];
  let answerDialogs: (d: Dialog) => Promise<void> = (d) => d.dismiss();

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    manager = await ApiUser.signIn(server.url, DEMO.shiftManager, server.demoPassword);
    const sites = await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    await registerPatients(adviser, sites.sites[0]!.siteId);
    context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, adviser.sessionToken);
    page = await context.newPage();
    page.on('dialog', (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      void answerDialogs(d);
    });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const readCase = (caseId: string) => adviser.call<CaseRead>('GET', `/api/v1/cases/${caseId}`);
  const messagesOf = async (caseId: string) =>
    (await adviser.call<{ messages: unknown[] }>('GET', `/api/v1/messages?caseId=${caseId}`)).messages;

  /** Opens a call from the New call screen and returns its case id (the case screen is showing). */
  async function openCall(problem: string): Promise<string> {
    await page.getByRole('link', { name: 'New call' }).click();
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    await page.getByLabel("Caller's name").fill('Sam Caller');
    await page.getByLabel('Call-back number').fill('07911123456');
    await page.getByRole('checkbox', { name: /back to the caller/ }).check();
    await page.getByLabel('Where is the patient now?').fill('At home');
    await page.getByLabel('What is the problem?').fill(problem);
    await page.getByRole('button', { name: 'Open case' }).click();
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    const caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())?.[1];
    if (!caseId) throw new Error(`no case id in ${page.url()}`);
    return caseId;
  }

  it('a mis-keyed "1" only proposes an ambulance: nothing is sent until confirmed; a later correction is a recorded re-triage', async () => {
    await page.goto('/calls/new');
    const caseId = await openCall('Headache since this morning');
    await page.getByLabel('Pathway').selectOption({ label: 'Headache (sample, not clinically validated)' });
    await page.getByRole('button', { name: 'Start triage' }).click();
    const question = page.locator('#triage-question');
    for (const q of [/not breathing/, /unconscious/, /choking/, /heavy bleeding/]) {
      await question.filter({ hasText: q }).waitFor();
      await page.keyboard.press('2');
    }
    // The slip: "1" (Yes) on "Has the face drooped…", meant as "2".
    await question.filter({ hasText: /face drooped/ }).waitFor();
    await page.keyboard.press('1');
    await page.getByText('Proposed disposition').waitFor();
    await page.getByRole('button', { name: /Confirm: request an ambulance \(category 2\)/ }).waitFor();
    await shots.take(page, 'ambulance-proposed');
    await scan('disposition proposed');
    // The focus is on the heading, never the confirm button: stray keys do nothing irreversible.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('disposition-heading');
    for (const key of ['Enter', ' ', '1', '2', 'Enter']) await page.keyboard.press(key);
    await page.waitForTimeout(500);
    let read = await readCase(caseId);
    expect(read.status).toBe('disposition_reached');
    expect(read.record.timeline.map((l) => l.type)).not.toContain('case.ambulance_requested');
    expect(await messagesOf(caseId)).toEqual([]);
    await page.getByText('Nothing has been sent or arranged yet').waitFor();

    // Corrected before confirming: the proposal is set aside, triage walks on.
    await page.getByRole('button', { name: /Change the answer to: Has the face drooped/ }).click();
    await question.filter({ hasText: /face drooped/ }).waitFor();
    await page.keyboard.press('2');
    await question.filter({ hasText: /allergic reaction/ }).waitFor();
    await page.keyboard.press('2');
    await question.filter({ hasText: /How did the headache start/ }).waitFor();
    await page.keyboard.press('3');
    await question.filter({ hasText: /Do any of these apply/ }).waitFor();
    await page.keyboard.press('2');
    await page.keyboard.press('Enter');
    await page.getByRole('button', { name: 'Confirm this disposition' }).waitFor();
    read = await readCase(caseId);
    expect(read.record.timeline.map((l) => l.type)).toContain('case.disposition_withdrawn');
    expect(read.record.timeline.map((l) => l.type)).not.toContain('case.ambulance_requested');
    expect(await messagesOf(caseId)).toEqual([]);
    await page.getByRole('button', { name: 'Confirm this disposition' }).click();
    await page.getByText('What happens now').waitFor();
    expect((await readCase(caseId)).status).toBe('queued');

    // After confirming, a correction is a recorded re-triage with its reason.
    await page.getByRole('button', { name: 'Correct this disposition…' }).click();
    await page.getByLabel('What was wrong').fill('Caller corrected the onset: it was sudden');
    await page.getByText('41 of 300 characters').waitFor();
    await scan('correct a confirmed disposition');
    await shots.take(page, 'correction');
    await page.getByRole('button', { name: 'Re-triage this call' }).click();
    await page.getByText('The confirmed disposition was corrected').waitFor();
    await page.getByRole('button', { name: /Change the answer to: How did the headache start/ }).waitFor();
    read = await readCase(caseId);
    expect(read.status).toBe('in_triage');
    const what = read.record.timeline.map((l) => l.what);
    expect(
      what.some((w) => /corrected, back to triage: Caller corrected the onset: it was sudden$/.test(w)),
    ).toBe(true);
    expect(what.filter((w) => w.startsWith('Sent back to triage by '))).toHaveLength(1);
    await scan('re-triage');
  });

  it('Back mid-call asks first; the call stays in My open calls and resumes; closing the tab asks too', async () => {
    // Leaving the re-triaged call of the test before asks (closing the document): let it go.
    answerDialogs = (d) => d.accept();
    await page.goto('/calls/new');
    const caseId = await openCall('Cough for three days');
    const caseUrl = page.url();
    // Declined: the call stays on screen.
    dialogs.length = 0;
    answerDialogs = (d) => d.dismiss();
    await page.evaluate(() => history.back());
    await expect.poll(() => dialogs.length).toBe(1);
    expect(dialogs[0]).toMatch(/^confirm: This call is not finished\. Leave it\? It stays in My open calls/);
    await page.waitForTimeout(300);
    expect(page.url()).toBe(caseUrl);
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    // Accepted: the adviser leaves, and the call is listed with Resume.
    answerDialogs = (d) => d.accept();
    await page.evaluate(() => history.back());
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    expect(dialogs).toHaveLength(2);
    const resume = page.getByRole('button', { name: /^Resume call .* from Sam Caller$/ });
    await expect.poll(() => resume.count()).toBeGreaterThanOrEqual(1);
    await page.getByTestId('my-open-calls').getByText('Sam Caller: Cough for three days').waitFor();
    await shots.take(page, 'my-open-calls');
    await scan('new call with my open calls');
    // In-app links ask too.
    await page
      .getByTestId('my-open-calls')
      .getByRole('row', { name: /Cough for three days/ })
      .getByRole('button', { name: /^Resume/ })
      .click();
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    expect(page.url()).toBe(caseUrl);
    dialogs.length = 0;
    answerDialogs = (d) => d.dismiss();
    await page.getByRole('link', { name: 'My account' }).click();
    await expect.poll(() => dialogs.length).toBe(1);
    expect(page.url()).toBe(caseUrl);
    // Closing the tab: the browser's own question (beforeunload).
    dialogs.length = 0;
    await page.close({ runBeforeUnload: true });
    await expect.poll(() => dialogs.length).toBe(1);
    expect(dialogs[0]).toMatch(/^beforeunload:/);
    expect(page.isClosed()).toBe(false);
    // The menu's own screen lists it as well.
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    expect(
      (await adviser.call<{ calls: { caseId: string }[] }>('GET', '/api/v1/calls/mine')).calls.map(
        (c) => c.caseId,
      ),
    ).toContain(caseId);
  });

  it('ends a call with a reason: it leaves the calls with advisers and My open calls; no message is sent', async () => {
    type Dashboard = { sites: { callsWaiting: number }[] };
    const waiting = async () =>
      (await manager.call<Dashboard>('GET', '/api/v1/dashboard')).sites.reduce(
        (n, s) => n + s.callsWaiting,
        0,
      );
    const caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    const before = await waiting();
    await page.getByRole('button', { name: 'End call…' }).click();
    await page.getByRole('button', { name: 'End the call' }).click();
    await page.getByText('Choose why the call is ending.').waitFor();
    await page.getByRole('radio', { name: 'Other (say why)' }).check();
    await page.getByRole('button', { name: 'End the call' }).click();
    await page.getByText('Say why the call ended.').waitFor();
    await scan('end call');
    await page.getByRole('radio', { name: 'The caller hung up' }).check();
    await shots.take(page, 'end-call');
    await page.getByRole('button', { name: 'End the call' }).click();
    await page
      .getByTestId('call-ended')
      .getByText(/the caller hung up/)
      .waitFor();
    await scan('call ended');
    expect((await readCase(caseId)).status).toBe('call_ended');
    expect(await waiting()).toBe(before - 1);
    expect(await messagesOf(caseId)).toEqual([]);
    // Nothing left to warn about: leaving asks nothing.
    dialogs.length = 0;
    await page.getByRole('link', { name: 'My open calls' }).click();
    await page.getByRole('heading', { level: 1, name: 'My open calls' }).waitFor();
    expect(dialogs).toEqual([]);
    await expect
      .poll(async () => (await page.getByTestId('my-open-calls').textContent()) ?? '')
      .not.toContain('Cough for three days');
    await scan('my open calls');
  });

  it('shows limits while typing and refuses in plain words; notes are added to the case', async () => {
    await page.goto('/calls/new');
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    await page.getByLabel("Caller's name").fill('N'.repeat(101));
    await page.getByText('101 of 100 characters').waitFor();
    await page.getByText('This is 1 character too long: at most 100 characters.').waitFor();
    const place = 'x'.repeat(54);
    await page.getByLabel('Where is the patient now?').fill(place);
    await page.getByText('54 of 300 characters').waitFor();
    await scan('new call over a limit');
    await shots.take(page, 'limits');
    await page.getByRole('button', { name: 'Open case' }).click();
    await page.getByText('Some answers need correcting').waitFor();
    expect(page.url()).toMatch(/\/calls\/new$/);

    const caseId = await openCall('Rash on both arms');
    const note = page.getByLabel('Note on this call');
    await note.fill('y'.repeat(1001));
    await page.getByText('1001 of 1000 characters').waitFor();
    await page.getByText('This is 1 character too long: at most 1000 characters.').waitFor();
    await note.fill('Caller is the neighbour; daughter on her way');
    await page.getByText('44 of 1000 characters').waitFor();
    await page.getByRole('button', { name: 'Add note' }).click();
    await page
      .getByTestId('case-notes')
      .getByText(/Caller is the neighbour; daughter on her way/)
      .waitFor();
    await scan('case with a note');
    const read = await readCase(caseId);
    expect(read.record.timeline.map((l) => l.what)).toContain(
      'Note: Caller is the neighbour; daughter on her way',
    );
  });

  it('at 1366×768: Open case above the fold; search results get the focus and are in view; a failed search clears them', async () => {
    answerDialogs = (d) => d.accept();
    await page.goto('/calls/new');
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    const open = await page.getByRole('button', { name: 'Open case' }).boundingBox();
    expect(open).not.toBeNull();
    expect(await page.evaluate(() => window.scrollY)).toBe(0);
    expect(open!.y + open!.height).toBeLessThanOrEqual(768);

    await openCall('Vomiting since last night');
    await page.getByRole('textbox', { name: 'NHS number' }).fill(PATIENTS.david.nhsNumber);
    await page.getByRole('button', { name: 'Search by NHS number' }).click();
    const select = page.getByRole('button', { name: /Select David Okonjo/ });
    await select.waitFor();
    await expect
      .poll(() => page.evaluate(() => document.activeElement?.getAttribute('data-testid')))
      .toBe('search-results');
    // In view, below the sticky header: the results' column headings and the first Select button.
    const headerBottom = await page.evaluate(
      () => document.querySelector('.app-header')!.getBoundingClientRect().bottom,
    );
    const heading = await page
      .getByTestId('search-results')
      .getByRole('columnheader', { name: 'Name' })
      .boundingBox();
    expect(heading!.y).toBeGreaterThanOrEqual(headerBottom);
    const box = await select.boundingBox();
    expect(box).not.toBeNull();
    expect(box!.y).toBeGreaterThanOrEqual(headerBottom);
    expect(box!.y + box!.height).toBeLessThanOrEqual(768);
    await shots.take(page, 'search-results');
    await scan('search results');
    // A new search that fails leaves no stale results under its error.
    await page.getByRole('textbox', { name: 'Family name' }).fill('Okonjo');
    await page.getByRole('textbox', { name: 'Date of birth' }).fill('31/02/1987');
    await page.getByRole('button', { name: 'Search by name' }).click();
    await page
      .getByText(/The date of birth/)
      .first()
      .waitFor();
    expect(await page.getByTestId('search-results').count()).toBe(0);
    expect(await select.count()).toBe(0);
    await scan('search error');
  });

  it('lists calls open too long for the shift manager, from the dashboard', async () => {
    const managerContext = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(managerContext, server.url, manager.sessionToken);
    const managerPage = await managerContext.newPage();
    await managerPage.goto('/dashboard');
    // The figure opens its list, which links to the whole screen.
    await managerPage.getByTestId('figure-calls-open-too-long').click();
    await managerPage.getByRole('link', { name: 'Calls open too long' }).click();
    await managerPage.getByRole('heading', { level: 1, name: 'Calls open too long' }).waitFor();
    await managerPage.getByText(/without activity for 20 minutes or more/).waitFor();
    const found = await seriousAxeViolations(managerPage);
    if (found.length > 0) violations.push(describeViolations('calls open too long', found));
    await managerContext.close();
    expect(violations).toEqual([]);
  });
});
