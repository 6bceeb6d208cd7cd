import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { ApiUser } from './support/api.ts';
import { addVirtualAuthenticator, launchChromium, Screenshots, staffContext } from './support/browser.ts';
import { HEADACHE_TO_CALLBACK, PATIENTS, registerPatients } from './support/fixtures.ts';
import { enrolTotp, enterPassword, signInWithTotp, signOut } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * The whole journey of one case in two browsers, against a real `holdfast start` process:
 * an admin creates the staff; a health adviser signs in with TOTP, takes a call, identifies the
 * patient (special notes shown), triages to "speak to primary care within 1 hour"; a clinician, in a
 * second browser context, sees the case arrive in the queue without reloading, claims it, records a
 * failed call-back, records a consultation with observations (NEWS2 shown) and closes it; the
 * adviser's queue screen loses the case, also without reloading. Screenshots of every step go to
 * .test-results/screenshots/journey/.
 */

const ADVISER = { username: 'a.patel@northshire', name: 'Anita Patel', password: 'adviser journey pass 1' };
const CLINICIAN = {
  username: 'dr.jones@northshire',
  name: 'Dr Rhys Jones',
  password: 'clinician journey pass 1',
};
const CALLER = { name: 'Peter Holloway', phone: '0113 496 0987' };

/** A loaded CI machine can take seconds to render a step: poll, not the one-second default. */
const POLL = { timeout: 15_000 };

describe('the journey of a case through the web app', () => {
  let server: RunningHoldfast;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    // The patient index holds the patient before the call (as a FHIR load or an earlier call would).
    const setup = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    const sites = await setup.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    await registerPatients(setup, sites.sites[0]!.siteId);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** Creates a user on the Users screen, as the provider admin. */
  async function createUser(
    page: Page,
    user: { username: string; name: string; password: string },
    role: string,
  ): Promise<void> {
    const form = page.getByRole('form', { name: 'Add a user' });
    await form.getByLabel('Full name').fill(user.name);
    await form.getByLabel('User name').fill(user.username);
    await form.getByLabel('Initial password').fill(user.password);
    // A clinical role is granted with a reason (recorded and shown to the other administrators).
    await form.getByLabel('Reason', { exact: true }).fill('Starts on tonight’s rota');
    await form.getByRole('checkbox', { name: role, exact: true }).check();
    await form.getByRole('checkbox', { name: 'Northshire 111 call centre' }).check();
    await form.getByRole('button', { name: 'Create user' }).click();
    await page.getByRole('cell', { name: user.username, exact: true }).waitFor();
  }

  it('an adviser queues a case, a clinician works it to a close, and the queue updates live', async () => {
    const shots = new Screenshots('journey');

    // --- The provider admin (passkey) creates the adviser and the clinician.
    const adminContext = await staffContext(browser, server.url);
    const admin = await adminContext.newPage();
    await addVirtualAuthenticator(admin);
    await enterPassword(admin, DEMO.admin, server.demoPassword);
    await admin.getByRole('button', { name: 'Create a passkey' }).click();
    await admin.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Users' }).click();
    await admin.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    // Bad input is answered next to the field, in plain words, and nothing is created.
    const form = admin.getByRole('form', { name: 'Add a user' });
    await form.getByLabel('Full name').fill('Someone');
    await form.getByLabel('User name').fill('Not Valid!');
    await form.getByLabel('Initial password').fill('a long enough password');
    await form.getByRole('checkbox', { name: 'Health adviser', exact: true }).check();
    await form.getByRole('button', { name: 'Create user' }).click();
    await expect.poll(() => form.getByLabel('User name').getAttribute('aria-invalid'), POLL).toBe('true');
    await shots.take(admin, 'admin-bad-user-name');
    await admin.reload();
    await createUser(admin, ADVISER, 'Health adviser');
    await createUser(admin, CLINICIAN, 'Clinician');
    await shots.take(admin, 'admin-created-users');
    await adminContext.close();

    // --- The adviser: first sign-in enrols the authenticator app; then a sign-in with a code.
    const adviserContext = await staffContext(browser, server.url);
    const adviser = await adviserContext.newPage();
    await enterPassword(adviser, ADVISER.username, ADVISER.password);
    const authenticator = await enrolTotp(adviser, (name) => shots.take(adviser, `adviser-${name}`));
    await signOut(adviser);
    await signInWithTotp(adviser, ADVISER.username, ADVISER.password, authenticator);
    await adviser.getByRole('button', { name: 'Sign out' }).waitFor();
    await shots.take(adviser, 'adviser-signed-in');

    // --- The clinician signs in and opens the CAS queue before the call; the page is never reloaded.
    const clinicianContext = await staffContext(browser, server.url);
    const clinician = await clinicianContext.newPage();
    // A failure once left nothing to go on: the screens as they were, and what the server printed.
    onTestFailed(async () => {
      for (const [who, page] of [
        ['adviser', adviser],
        ['clinician', clinician],
      ] as const)
        await shots.take(page, `failed-${who}`).catch(() => undefined);
      console.error(`holdfast's last output:\n${server.output().split('\n').slice(-80).join('\n')}`);
    });
    await enterPassword(clinician, CLINICIAN.username, CLINICIAN.password);
    await enrolTotp(clinician);
    await clinician
      .getByRole('navigation', { name: 'Main' })
      .getByRole('link', { name: 'CAS queue' })
      .click();
    await clinician.getByRole('heading', { level: 1, name: /queue/i }).waitFor();
    // A marker in the page's JavaScript state: a reload or a navigation by URL would lose it.
    await clinician.evaluate(() => ((window as unknown as { loadedOnce?: boolean }).loadedOnce = true));
    await shots.take(clinician, 'clinician-queue-before-the-call');

    // --- The call.
    await adviser.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'New call' }).click();
    await adviser.getByLabel("Caller's name").fill(CALLER.name);
    await adviser.getByLabel('Caller is').selectOption({ label: 'Relative' });
    await adviser.getByLabel('Call-back number').fill(CALLER.phone);
    await adviser.getByRole('checkbox', { name: /back to the caller/ }).check();
    await adviser.getByLabel('Where is the patient now?').fill('At home');
    await adviser
      .getByLabel('What is the problem?')
      .fill('Headache since this morning, and her sight is blurred');
    await shots.take(adviser, 'adviser-new-call');
    await adviser.getByRole('button', { name: 'Open case' }).click();
    await adviser.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    const caseId = /\/cases\/([0-9a-f-]{36})/.exec(adviser.url())![1]!;

    // --- Identifying the patient: the NHS number is checked as it is typed.
    const nhs = adviser.getByRole('textbox', { name: 'NHS number' });
    await nhs.fill('943 476 5918');
    await expect.poll(() => nhs.getAttribute('aria-invalid'), POLL).toBe('true');
    await nhs.fill('943 476 5919');
    await expect.poll(() => nhs.getAttribute('aria-invalid'), POLL).not.toBe('true');
    await adviser.getByRole('button', { name: 'Search by NHS number' }).click();
    await adviser
      .getByRole('button', {
        name: new RegExp(`Select ${PATIENTS.margaret.givenName} ${PATIENTS.margaret.familyName}`),
      })
      .click();
    const notes = adviser.getByTestId('special-notes');
    await notes.waitFor();
    expect(await notes.innerText()).toMatch(/DNACPR/);
    await shots.take(adviser, 'adviser-patient-special-notes');
    await adviser.getByRole('button', { name: 'I have read the special notes' }).click();

    // --- Triage, answered with the number keys.
    await adviser
      .getByLabel('Pathway')
      .selectOption({ label: 'Headache (sample, not clinically validated)' });
    await adviser.getByRole('button', { name: 'Start triage' }).click();
    for (const step of HEADACHE_TO_CALLBACK.answers) {
      const question = adviser.locator('#triage-question');
      await expect.poll(() => question.innerText(), POLL).toMatch(step.question);
      for (const key of step.keys) await adviser.keyboard.press(String(key));
      if ('multi' in step && step.multi) await adviser.keyboard.press('Enter');
    }
    const disposition = adviser.locator('#disposition-heading');
    await disposition.waitFor();
    expect(await disposition.innerText()).toMatch(HEADACHE_TO_CALLBACK.disposition);
    expect(await adviser.getByText(/not clinically validated/).count()).toBeGreaterThan(0);
    // Proposed only: nothing is done until the adviser confirms.
    await adviser.getByText('Confirm before anything is done').waitFor();
    await adviser.getByRole('button', { name: 'Confirm this disposition' }).click();
    await expect
      .poll(() => adviser.getByRole('status').filter({ hasText: 'CAS' }).innerText(), POLL)
      .toMatch(/queue/);
    await shots.take(adviser, 'adviser-disposition');

    // --- The clinician's queue, live: the case arrives without a reload.
    const row = clinician.locator(`[data-case-id="${caseId}"]`);
    await row.waitFor();
    expect(await clinician.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(
      true,
    );
    await shots.take(clinician, 'clinician-queue-case-arrived');

    // The adviser watches the queue too.
    await adviser.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'CAS queue' }).click();
    const adviserRow = adviser.locator(`[data-case-id="${caseId}"]`);
    await adviserRow.waitFor();
    await adviser.evaluate(() => ((window as unknown as { loadedOnce?: boolean }).loadedOnce = true));

    // --- Claim, a failed call-back, the consultation with observations, the outcome.
    await row.getByRole('button', { name: /^Claim:/ }).click();
    await clinician.getByRole('heading', { level: 1, name: /^Case:/ }).waitFor();
    await clinician.getByLabel('Outcome of the call-back').selectOption({ label: 'No answer' });
    await clinician.getByRole('button', { name: 'Record call-back attempt' }).click();
    await clinician.getByText(/Recorded: No answer/).waitFor();
    await shots.take(clinician, 'clinician-failed-callback');
    await clinician.getByRole('button', { name: 'Start consultation' }).click();
    await clinician
      .getByLabel('History', { exact: true })
      .fill('Headache since the morning, blurred vision in the left eye.');
    await clinician.getByLabel(/^Respiration rate/).fill('22');
    await clinician.getByLabel(/^SpO2 \(/).fill('95');
    await clinician.getByLabel('Air or oxygen').selectOption({ label: 'Air' });
    await clinician.getByLabel(/^Systolic blood pressure/).fill('105');
    await clinician.getByLabel(/^Pulse/).fill('112');
    await clinician.getByLabel('Consciousness (ACVPU)').selectOption({ label: 'Alert' });
    await clinician.getByLabel(/^Temperature/).fill('38.4');
    // NEWS2 (RCP 2017) for these: respiration 22 → 2, SpO2 95 → 1, air 0, systolic 105 → 1,
    // pulse 112 → 2, alert 0, temperature 38.4 → 1: total 7, high.
    const news2 = clinician.getByTestId('news2');
    await expect.poll(() => news2.innerText(), POLL).toMatch(/NEWS2 7/);
    await shots.take(clinician, 'clinician-consultation-news2');
    await clinician.getByLabel('Assessment', { exact: true }).fill('New visual disturbance with headache.');
    await clinician
      .getByLabel('Plan', { exact: true })
      .fill('Same-day eye casualty assessment this evening.');
    await clinician.getByRole('button', { name: 'Save consultation' }).click();
    await clinician.getByText(/Consultation saved at .* with NEWS2 7/).waitFor();
    await clinician
      .getByLabel('Outcome of the consultation')
      .selectOption({ label: 'Advice given: close the case' });
    // NEWS2 7 asks for an urgent response: closing with advice needs the clinician's reason.
    await clinician
      .getByLabel('Why is this outcome right despite the raised NEWS2?')
      .fill('Eye casualty has accepted her this evening; her daughter is driving her there now.');
    await clinician.getByRole('button', { name: 'Record outcome' }).click();
    await clinician.getByText('Case closed').waitFor();
    await shots.take(clinician, 'clinician-closed');

    // --- The case leaves the adviser's queue screen without a reload.
    await adviserRow.waitFor({ state: 'detached' });
    expect(await adviser.evaluate(() => (window as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(
      true,
    );
    await shots.take(adviser, 'adviser-queue-after-close');
    await clinicianContext.close();
    await adviserContext.close();
  });
});
