import type { BrowserContext, Page } from 'playwright-core';
import { normaliseSecret, TotpDevice } from './browser.ts';

/**
 * Steps staff take in the web app, written against what a person sees (roles, labels, headings),
 * shared by the journey, accessibility and screenshot runs. Screen names and labels are listed in
 * packages/web/UI-NOTES.md.
 */

/** The password step; the app then asks for the second factor the server wants. */
export async function enterPassword(page: Page, username: string, password: string): Promise<void> {
  if (!page.url().includes('/sign-in')) await page.goto('/sign-in');
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

/**
 * First sign-in of a TOTP user after the password step: show the QR code, read the key shown beside
 * it (as a person would type it into an authenticator app), confirm a code, acknowledge the recovery
 * codes. Returns the "authenticator app" for later sign-ins.
 */
export async function enrolTotp(page: Page, shot?: (name: string) => Promise<unknown>): Promise<TotpDevice> {
  await page.getByRole('button', { name: 'Show my QR code' }).click();
  const secret = normaliseSecret(await page.getByTestId('totp-secret').innerText());
  await page.getByRole('img', { name: /QR code/ }).waitFor();
  await shot?.('totp-enrolment-qr');
  const device = new TotpDevice(secret);
  await page.getByLabel(/6-digit code/).fill(device.code());
  await page.getByRole('button', { name: 'Confirm code' }).click();
  await page.getByTestId('recovery-codes').waitFor();
  await page.getByRole('button', { name: 'I have saved my recovery codes' }).click();
  return device;
}

/** A later sign-in: password, then the current code from the authenticator app. */
export async function signInWithTotp(
  page: Page,
  username: string,
  password: string,
  device: TotpDevice,
): Promise<void> {
  await enterPassword(page, username, password);
  await page.getByLabel(/6-digit code/).fill(device.code());
  await page.getByRole('button', { name: 'Verify code' }).click();
}

/** Signs a user in from scratch (enrolling TOTP at the first sign-in); returns their authenticator. */
export async function firstSignIn(page: Page, username: string, password: string): Promise<TotpDevice> {
  await enterPassword(page, username, password);
  return enrolTotp(page);
}

/** Signs out from the app's menu and waits for the sign-in screen. */
export async function signOut(page: Page): Promise<void> {
  await page.getByRole('button', { name: /sign out/i }).click();
  await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
}

/**
 * Hands a session made over the API to a browser context (the HttpOnly session cookie): the app
 * then starts signed in, reading its CSRF token from GET /api/v1/auth/session.
 */
export async function useSessionCookie(
  context: BrowserContext,
  baseUrl: string,
  token: string,
): Promise<void> {
  await context.addCookies([
    {
      name: 'hf_session',
      value: token,
      url: baseUrl,
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
    },
  ]);
}

/** What the adviser types for a call: the caller, the patient found by NHS number, what is wrong. */
export interface CallDetails {
  callerName: string;
  relationship: string;
  callbackNumber: string;
  location: string;
  problem: string;
  /** NHS number of a patient in the index, typed with spaces as read out. */
  nhsNumber: string;
  /** Accessible name of the search result's Select button, e.g. /Select Margaret Holloway/. */
  patient: RegExp;
  /** The patient has special notes, which must be acknowledged before triage. */
  hasSpecialNotes: boolean;
}

/**
 * The adviser's call from the New call screen to the disposition: the call, the patient identified
 * by NHS number (the special notes acknowledged), then the headache pathway answered with number
 * keys to "A clinician will call you back within 1 hour", confirmed. Returns the case id. `shot` is called at
 * each screen worth a picture.
 */
export async function takeCallToCallback(
  page: Page,
  call: CallDetails,
  triage: {
    pathwayLabel: string;
    answers: readonly { question: RegExp; keys: readonly number[]; multi?: boolean }[];
  },
  shot: (name: string) => Promise<unknown> = async () => undefined,
): Promise<string> {
  await page.getByRole('link', { name: 'New call' }).click();
  await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
  await page.getByLabel("Caller's name").fill(call.callerName);
  await page.getByLabel('Caller is').selectOption({ label: call.relationship });
  await page.getByLabel('Call-back number').fill(call.callbackNumber);
  await page.getByRole('checkbox', { name: /back to the caller/ }).check();
  await page.getByLabel('Where is the patient now?').fill(call.location);
  await page.getByLabel('What is the problem?').fill(call.problem);
  await shot('new-call');
  await page.getByRole('button', { name: 'Open case' }).click();
  await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
  const caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())?.[1];
  if (!caseId) throw new Error(`no case id in ${page.url()}`);

  await page.getByRole('textbox', { name: 'NHS number' }).fill(call.nhsNumber);
  await page.getByRole('button', { name: 'Search by NHS number' }).click();
  await page.getByRole('button', { name: call.patient }).waitFor();
  await shot('patient-search');
  await page.getByRole('button', { name: call.patient }).click();
  if (call.hasSpecialNotes) {
    await page.getByTestId('special-notes').waitFor();
    await shot('special-notes');
    await page.getByRole('button', { name: 'I have read the special notes' }).click();
  }

  await page.getByLabel('Pathway').selectOption({ label: triage.pathwayLabel });
  await page.getByRole('button', { name: 'Start triage' }).click();
  const question = page.locator('#triage-question');
  for (const [i, step] of triage.answers.entries()) {
    await question.filter({ hasText: step.question }).waitFor();
    if (i === triage.answers.length - 1) await shot('triage-question');
    for (const key of step.keys) await page.keyboard.press(String(key));
    if (step.multi) await page.keyboard.press('Enter');
  }
  await page.locator('#disposition-heading').waitFor();
  await shot('disposition-proposed');
  // The disposition is only proposed until the adviser confirms it.
  await page.getByRole('button', { name: 'Confirm this disposition' }).click();
  await page.getByText('What happens now').waitFor();
  await shot('disposition');
  return caseId;
}
