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
