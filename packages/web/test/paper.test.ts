import { caseReference } from '@holdfast/core';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUser } from './support/api.ts';
import { describeViolations, launchChromium, seriousAxeViolations, staffContext } from './support/browser.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

const POLL = { timeout: 15_000 };

/** A moment as a UK wall clock "2026-12-06T02:14", as a datetime-local field takes it. */
function londonWallClock(ms: number): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/London',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    })
      .formatToParts(new Date(ms))
      .map((p) => [p.type, p.value]),
  );
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

/**
 * Back-entry after an outage (issue 13 §3), in the browser against a real `holdfast start`: an
 * adviser finds a case by the reference written on the paper, checks the caller, and enters a
 * call-back made on paper with the time written on it; the case's record shows it at that time,
 * marked as from paper. A reference that cannot be one is refused at the field.
 */
describe('entering paper records in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviser: ApiUser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('finds the case by its reference, enters a call-back made on paper, and the record shows it at the paper’s time', async () => {
    const siteId = (await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites')).sites[0]!
      .siteId;
    const { caseId } = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
      siteId,
      caller: {
        name: 'Rowan Pike',
        relationship: 'self',
        callbackNumber: '0113 496 0777',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Sore throat for three days',
    });
    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, adviser.sessionToken);
    const page = await context.newPage();
    await page.goto('/');
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'From paper' }).click();
    await page.getByRole('heading', { level: 1, name: 'Enter paper records' }).waitFor(POLL);

    // A reference that cannot be one: said at the field, nothing found.
    await page.getByLabel('Case reference on the paper').fill('3F2A-9C1');
    await page.getByRole('button', { name: 'Find the case' }).click();
    await page.getByText(/Must be a case reference such as 3F2A-9C1B/).waitFor(POLL);
    // A well-formed reference of no case here: said plainly, with what to do.
    await page.getByLabel('Case reference on the paper').fill('0000-0000');
    await page.getByRole('button', { name: 'Find the case' }).click();
    await page.getByText('No case with that reference at your sites').waitFor(POLL);

    // Written on the paper in lower case without the dash: found all the same, with the caller to check.
    const ref = caseReference(caseId);
    await page.getByLabel('Case reference on the paper').fill(ref.toLowerCase().replace('-', ''));
    await page.getByRole('button', { name: 'Find the case' }).click();
    const found = page.getByRole('region', { name: `Case ${ref}` });
    await found.getByText('Caller: Rowan Pike, call-back 0113 496 0777').waitFor(POLL);
    expect(await found.innerText()).toContain('Sore throat for three days');
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('paper records', violations)).toEqual([]);

    // The call-back was made on paper after the call came in (the paper gives the minute), typed in now.
    const paperTime = londonWallClock(Date.now());
    const form = page.getByRole('form', { name: `A paper record for case ${ref}` });
    await form.getByLabel('What the paper records').selectOption({ label: 'Call-back attempt' });
    expect(await form.getByLabel('What the paper records').locator('option').allInnerTexts()).not.toContain(
      'Clinical notes (entered by a clinician)',
    );
    await form.getByLabel(/When it happened/).fill(paperTime);
    await form.getByLabel(/Written by/).fill('A. Okoye');
    await form.getByLabel('What the paper says').fill('Rang back, no answer; voicemail left');
    await form.getByRole('button', { name: 'Enter into the case' }).click();
    await page
      .getByTestId('paper-entered')
      .getByText(new RegExp(`^Entered into case ${ref}: Call-back attempt written by A\\. Okoye`))
      .waitFor(POLL);

    // In the record at the paper's time, marked as from paper, with who typed it in.
    const record = await adviser.call<{
      record: { timeline: { at: string; type: string; what: string; enteredAt?: string }[] };
    }>('GET', `/api/v1/cases/${caseId}`);
    const paper = record.record.timeline.find((e) => e.type === 'case.paper_record_entered')!;
    expect(londonWallClock(Date.parse(paper.at))).toBe(paperTime);
    expect(paper.what).toBe('On paper, call-back written by A. Okoye: Rang back, no answer; voicemail left');
    expect(paper.enteredAt).toBeDefined();
    await page.goto(`/cases/${caseId}/summary`);
    const row = page.getByTestId('record-timeline').locator('tr[data-type="case.paper_record_entered"]');
    await row.waitFor(POLL);
    expect(await row.innerText()).toMatch(/entered from paper/);
    await context.close();
  }, 300_000);
});
