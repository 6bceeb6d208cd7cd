/**
 * `npm run screenshots`: PNGs of the main screens in docs/screenshots/, for the README.
 *
 * Starts a real node on a fresh data directory (the demo provider, 40 cases waiting in the CAS
 * queue, two made-up patients), serves the built web app, and drives Debian's Chromium through each
 * role's screens: sign-in and authenticator enrolment, the adviser's call (patient search, special
 * notes, triage, disposition), the clinician's queue and consultation, the shift manager's dashboard,
 * the admin's users and the auditor's trail. Same viewport and a UTC browser clock every time.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { ApiUser } from '../packages/web/test/support/api.ts';
import {
  addVirtualAuthenticator,
  launchChromium,
  staffContext,
} from '../packages/web/test/support/browser.ts';
import { HEADACHE_TO_CALLBACK, PATIENTS, registerPatients } from '../packages/web/test/support/fixtures.ts';
import {
  enrolTotp,
  enterPassword,
  takeCallToCallback,
  useSessionCookie,
} from '../packages/web/test/support/flows.ts';
import { seedQueuedCases } from '../packages/web/test/support/seed.ts';
import { DEMO, REPO_ROOT, startHoldfast } from '../packages/web/test/support/server.ts';

const OUT = join(REPO_ROOT, 'docs/screenshots');
const VIEWPORT = { width: 1280, height: 800 };
const QUEUED = 40;

async function main(): Promise<void> {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const written: string[] = [];
  const shoot = async (page: Page, name: string): Promise<void> => {
    // Let fonts, data and transitions settle so every run draws the same picture.
    await page.waitForLoadState('networkidle');
    await page.evaluate(() => document.fonts.ready);
    const file = join(OUT, `${name}.png`);
    await page.screenshot({ path: file });
    written.push(file);
    console.error(`  ${name}.png`);
  };

  const dataDir = join(REPO_ROOT, '.test-results', `screenshots-data-${process.pid}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  console.error(`screenshots: seeding ${QUEUED} queued cases`);
  const seeded = await seedQueuedCases(dataDir, QUEUED, { spreadMinutes: 75 });
  await seeded.node.close();
  const server = await startHoldfast({ seeded: { dataDir, demoPassword: seeded.demoPassword } });
  const browser = await launchChromium();
  const contexts: BrowserContext[] = [];
  const context = async (): Promise<BrowserContext> => {
    const c = await staffContext(browser, server.url, { viewport: VIEWPORT });
    contexts.push(c);
    return c;
  };
  const signedIn = async (username: string): Promise<Page> => {
    const api = await ApiUser.signIn(server.url, username, seeded.demoPassword);
    const c = await context();
    await useSessionCookie(c, server.url, api.sessionToken);
    return c.newPage();
  };
  try {
    const receptionist = await ApiUser.signIn(server.url, DEMO.receptionist, seeded.demoPassword);
    await registerPatients(receptionist, seeded.siteIds[0]!);

    // Sign-in and the authenticator enrolment, as the adviser's first sign-in.
    console.error('screenshots: sign-in and the adviser');
    const adviser = await (await context()).newPage();
    await adviser.goto('/sign-in');
    await adviser.getByLabel('User name').fill(DEMO.adviser);
    await shoot(adviser, 'sign-in');
    await enterPassword(adviser, DEMO.adviser, seeded.demoPassword);
    await enrolTotp(adviser, (name) => shoot(adviser, name));

    const caseId = await takeCallToCallback(
      adviser,
      {
        callerName: 'Peter Holloway',
        relationship: 'Relative',
        callbackNumber: '0113 496 0987',
        location: 'At home',
        problem: 'Headache since this morning, and her sight is blurred',
        nhsNumber: '943 476 5919',
        patient: new RegExp(`Select ${PATIENTS.margaret.givenName} ${PATIENTS.margaret.familyName}`),
        hasSpecialNotes: true,
      },
      { pathwayLabel: 'Headache (sample, not clinically validated)', answers: HEADACHE_TO_CALLBACK.answers },
      (name) => shoot(adviser, `adviser-${name}`),
    );

    console.error('screenshots: the clinician');
    const clinician = await signedIn(DEMO.clinician);
    await clinician.goto('/queue');
    await clinician.getByRole('heading', { level: 1, name: /queue/i }).waitFor();
    await clinician.locator('[data-case-id]').first().waitFor();
    await shoot(clinician, 'clinician-queue');
    await clinician.goto(`/queue/${caseId}`);
    await clinician.getByRole('button', { name: 'Claim this case' }).click();
    await clinician.getByLabel('Outcome of the call-back').selectOption({ label: 'No answer' });
    await clinician.getByRole('button', { name: 'Record call-back attempt' }).click();
    await clinician.getByText(/Recorded: No answer/).waitFor();
    await clinician.getByRole('button', { name: 'Start consultation' }).click();
    await clinician
      .getByLabel('History', { exact: true })
      .fill('Headache since the morning, blurred vision in the left eye.');
    for (const [label, value] of [
      [/^Respiration rate/, '22'],
      [/^SpO2 \(/, '95'],
      [/^Systolic blood pressure/, '105'],
      [/^Pulse/, '112'],
      [/^Temperature/, '38.4'],
    ] as const)
      await clinician.getByLabel(label).fill(value);
    await clinician.getByLabel('Air or oxygen').selectOption({ label: 'Air' });
    await clinician.getByLabel('Consciousness (ACVPU)').selectOption({ label: 'Alert' });
    await clinician
      .getByTestId('news2')
      .getByText(/NEWS2 7/)
      .waitFor();
    await clinician.getByTestId('news2').scrollIntoViewIfNeeded();
    await shoot(clinician, 'clinician-consultation-news2');

    console.error('screenshots: the shift manager, the auditor, the admin');
    const manager = await signedIn(DEMO.shiftManager);
    await manager.goto('/dashboard');
    await manager.getByRole('heading', { level: 1, name: /dashboard/i }).waitFor();
    await shoot(manager, 'manager-dashboard');

    const auditor = await signedIn(DEMO.auditor);
    await auditor.goto('/audit');
    await auditor.getByRole('heading', { level: 1, name: /audit/i }).waitFor();
    await shoot(auditor, 'auditor-audit-trail');

    const admin = await (await context()).newPage();
    await addVirtualAuthenticator(admin);
    await enterPassword(admin, DEMO.admin, seeded.demoPassword);
    await admin.getByRole('button', { name: 'Create a passkey' }).waitFor();
    await shoot(admin, 'admin-create-passkey');
    await admin.getByRole('button', { name: 'Create a passkey' }).click();
    await admin.getByRole('button', { name: 'Sign out' }).waitFor();
    await admin.goto('/admin/users');
    await admin.getByRole('heading', { level: 1, name: /users/i }).waitFor();
    await shoot(admin, 'admin-users');

    console.log(`wrote ${written.length} screenshots to ${OUT}`);
  } finally {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser.close();
    await server.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
