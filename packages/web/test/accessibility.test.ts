import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUser } from './support/api.ts';
import {
  addVirtualAuthenticator,
  describeViolations,
  launchChromium,
  normaliseSecret,
  Screenshots,
  seriousAxeViolations,
  staffContext,
  TotpDevice,
} from './support/browser.ts';
import { HEADACHE_TO_CALLBACK, PATIENTS, registerPatients } from './support/fixtures.ts';
import { enterPassword, useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * Accessibility: the adviser's whole flow done with the keyboard alone (page.keyboard only: Tab,
 * typing, Enter, number keys; nothing clicked), and an axe-core scan of every main screen, for each
 * role, that must find no serious or critical violation.
 */
/** A loaded CI machine can take seconds to render a step: poll, not the one-second default. */
const POLL = { timeout: 15_000 };

describe('accessibility', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let caseId = '';
  const scanned: string[] = [];
  const violations: string[] = [];

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    const setup = await ApiUser.signIn(server.url, DEMO.receptionist, server.demoPassword);
    const sites = await setup.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    await registerPatients(setup, sites.sites[0]!.siteId);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Scans the page as it is now; violations are collected and asserted at the end of each test. */
  async function scan(page: Page, screen: string): Promise<void> {
    scanned.push(screen);
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  }

  /** Presses Tab until `target` has the focus (at most 80 times): how a keyboard user gets there. */
  async function tabTo(page: Page, target: Locator): Promise<void> {
    await target.waitFor();
    for (let i = 0; i < 80; i++) {
      if (await target.evaluate((el) => el === document.activeElement)) return;
      await page.keyboard.press('Tab');
    }
    throw new Error(`Tab never reached ${String(target)}`);
  }

  it('the adviser flow works from the keyboard alone, and its screens pass axe', async () => {
    const shots = new Screenshots('keyboard');
    const context = await staffContext(browser, server.url, { bypassCSP: true });
    const page = await context.newPage();
    const k = page.keyboard;
    await page.goto('/');
    await page.getByRole('heading', { name: 'Sign in to Holdfast' }).waitFor();
    await scan(page, 'sign-in');

    // Password step.
    await tabTo(page, page.getByLabel('User name'));
    await k.type(DEMO.adviser);
    await tabTo(page, page.getByLabel('Password', { exact: true }));
    await k.type(server.demoPassword);
    await k.press('Enter');

    // Authenticator enrolment: the key shown is read (as a person reads it into their app).
    await tabTo(page, page.getByRole('button', { name: 'Show my QR code' }));
    await k.press('Enter');
    await page.getByTestId('totp-secret').waitFor();
    await scan(page, 'authenticator enrolment');
    const device = new TotpDevice(normaliseSecret(await page.getByTestId('totp-secret').innerText()));
    await tabTo(page, page.getByLabel(/6-digit code/));
    await k.type(device.code());
    await k.press('Enter');
    await page.getByTestId('recovery-codes').waitFor();
    await scan(page, 'recovery codes');
    await tabTo(page, page.getByRole('button', { name: 'I have saved my recovery codes' }));
    await k.press('Enter');

    // A new screen puts the focus on its heading, so a screen reader announces it and Tab starts there.
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');

    // New call.
    await scan(page, 'new call');
    await tabTo(page, page.getByLabel("Caller's name"));
    await k.type('Peter Holloway');
    await tabTo(page, page.getByLabel('Call-back number'));
    await k.type('0113 496 0987');
    await tabTo(page, page.getByRole('checkbox', { name: /back to the caller/ }));
    await k.press('Space');
    await tabTo(page, page.getByLabel('Where is the patient now?'));
    await k.type('At home');
    await tabTo(page, page.getByLabel('What is the problem?'));
    await k.type('Headache since this morning');
    await tabTo(page, page.getByRole('button', { name: 'Open case' }));
    await k.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    await scan(page, 'case: patient search');

    // Identify the patient by NHS number.
    await tabTo(page, page.getByRole('textbox', { name: 'NHS number' }));
    await k.type(PATIENTS.margaret.nhsNumber);
    await k.press('Enter');
    const select = page.getByRole('button', {
      name: new RegExp(`Select ${PATIENTS.margaret.givenName} ${PATIENTS.margaret.familyName}`),
    });
    await tabTo(page, select);
    await k.press('Enter');
    await page.getByTestId('special-notes').waitFor();
    await scan(page, 'case: special notes');
    await tabTo(page, page.getByRole('button', { name: 'I have read the special notes' }));
    await k.press('Enter');

    // Triage: the pathway is preselected from what the caller said; number keys answer.
    await tabTo(page, page.getByRole('button', { name: 'Start triage' }));
    await k.press('Enter');
    let scannedQuestion = false;
    for (const step of HEADACHE_TO_CALLBACK.answers) {
      const question = page.locator('#triage-question');
      await expect.poll(() => question.innerText(), POLL).toMatch(step.question);
      if (!scannedQuestion) {
        await scan(page, 'triage question');
        scannedQuestion = true;
      }
      if ('multi' in step && step.multi) {
        // B goes back to change the previous answer; the same key answers it again.
        await k.press('b');
        await page.getByText(/Changing an earlier answer/).waitFor();
        await expect.poll(() => question.innerText(), POLL).toMatch(/How did the headache start/);
        await k.press('3');
        await expect.poll(() => question.innerText(), POLL).toMatch(step.question);
      }
      for (const key of step.keys) await k.press(String(key));
      if ('multi' in step && step.multi) {
        await scan(page, 'triage: choose all that apply');
        await k.press('Enter');
      }
    }
    await page.locator('#disposition-heading').waitFor();
    expect(await page.locator('#disposition-heading').innerText()).toMatch(HEADACHE_TO_CALLBACK.disposition);
    await scan(page, 'disposition');
    await shots.take(page, 'disposition-by-keyboard');
    // Confirming by keyboard: Tab to the confirm button (the focus starts on the heading), then Enter.
    const confirmButton = page.getByRole('button', { name: 'Confirm this disposition' });
    for (let i = 0; i < 20 && !(await confirmButton.evaluate((b) => b === document.activeElement)); i++)
      await k.press('Tab');
    await k.press('Enter');
    await page.getByText('What happens now').waitFor();
    await scan(page, 'disposition confirmed');
    await context.close();
    expect(violations, violations.join('\n')).toEqual([]);
  });

  it('every other main screen passes axe, for the role that uses it', async () => {
    expect(caseId, 'needs the case made by the keyboard test').not.toBe('');
    const shots = new Screenshots('axe');
    const roles: { username: string; screens: { path: string; heading: RegExp; name: string }[] }[] = [
      {
        username: DEMO.clinician,
        screens: [
          { path: '/queue', heading: /CAS queue/, name: 'CAS queue' },
          { path: `/queue/${caseId}`, heading: /^Case:/, name: 'clinician case: claim' },
          { path: '/account', heading: /account/i, name: 'my account' },
        ],
      },
      {
        username: DEMO.shiftManager,
        screens: [{ path: '/dashboard', heading: /dashboard/i, name: 'dashboard' }],
      },
      {
        username: DEMO.auditor,
        screens: [{ path: '/audit', heading: /audit/i, name: 'audit trail' }],
      },
    ];
    for (const role of roles) {
      const api = await ApiUser.signIn(server.url, role.username, server.demoPassword);
      const context = await staffContext(browser, server.url, { bypassCSP: true });
      await useSessionCookie(context, server.url, api.sessionToken);
      const page = await context.newPage();
      for (const screen of role.screens) {
        await page.goto(screen.path);
        await page.getByRole('heading', { level: 1, name: screen.heading }).waitFor();
        await page.waitForLoadState('networkidle');
        await scan(page, screen.name);
        await shots.take(page, screen.name.replace(/\W+/g, '-'));
      }
      if (role.username === DEMO.clinician) {
        // The consultation, with observations typed and the NEWS2 score shown.
        await page.goto(`/queue/${caseId}`);
        await page.getByRole('button', { name: 'Claim this case' }).click();
        await page.getByRole('button', { name: 'Start consultation' }).click();
        await page.getByLabel(/^Respiration rate/).fill('22');
        await page.getByLabel(/^Pulse/).fill('112');
        await page.getByTestId('news2').getByText(/NEWS2/).waitFor();
        await scan(page, 'consultation with NEWS2');
        await shots.take(page, 'consultation');
      }
      await context.close();
    }

    // The provider admin signs in with a passkey (its role must), in the browser.
    const context = await staffContext(browser, server.url, { bypassCSP: true });
    const page = await context.newPage();
    await addVirtualAuthenticator(page);
    await enterPassword(page, DEMO.admin, server.demoPassword);
    await page.getByRole('heading', { name: 'Create a passkey' }).waitFor();
    await scan(page, 'create a passkey');
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    for (const screen of [
      { path: '/admin/users', heading: /users/i, name: 'users' },
      { path: '/admin/sites', heading: /sites/i, name: 'sites' },
    ]) {
      await page.goto(screen.path);
      await page.getByRole('heading', { level: 1, name: screen.heading }).waitFor();
      await page.waitForLoadState('networkidle');
      await scan(page, screen.name);
      await shots.take(page, screen.name);
    }
    await context.close();
    expect(scanned.length).toBeGreaterThanOrEqual(15);
    expect(violations, violations.join('\n')).toEqual([]);
  });
});
