import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addVirtualAuthenticator, launchChromium, Screenshots, staffContext } from './support/browser.ts';
import { enterPassword, signOut } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * A passkey in the browser: the provider admin (whose role must use a passkey) creates one at the
 * first sign-in with Chromium's virtual authenticator, signs out, and signs in again with it. The
 * app is served from http://localhost:PORT, so the page is a secure context whose host is the
 * server's relying-party id (`localhost`), and the session cookie's Secure flag holds over plain
 * http on localhost.
 */
describe('passkey sign-in in Chromium', () => {
  let server: RunningHoldfast;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('creates a passkey at the first sign-in and signs in with it afterwards', async () => {
    const shots = new Screenshots('passkey');
    const context = await staffContext(browser, server.url);
    const page = await context.newPage();
    const authenticator = await addVirtualAuthenticator(page);

    await enterPassword(page, DEMO.admin, server.demoPassword);
    await page.getByRole('heading', { name: 'Create a passkey' }).waitFor();
    await shots.take(page, 'create-passkey');
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.getByRole('button', { name: /sign out/i }).waitFor();
    const [credential, ...others] = await authenticator.credentials();
    expect(others).toHaveLength(0);
    expect(credential!.rpId).toBe('localhost');
    const cookies = await context.cookies();
    expect(cookies.find((c) => c.name === 'hf_session')).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: 'Strict',
    });
    await shots.take(page, 'signed-in-after-creating');

    await signOut(page);
    await enterPassword(page, DEMO.admin, server.demoPassword);
    await page.getByRole('heading', { name: 'Use your passkey' }).waitFor();
    await shots.take(page, 'use-passkey');
    await page.getByRole('button', { name: 'Sign in with passkey' }).click();
    await page.getByRole('button', { name: /sign out/i }).waitFor();
    // The authenticator signed a second time: its counter moved on.
    expect((await authenticator.credentials())[0]!.signCount).toBeGreaterThan(credential!.signCount);
    const session = (await page.evaluate(async () => (await fetch('/api/v1/auth/session')).json())) as {
      user: { username: string; roles: string[] };
    };
    expect(session.user).toMatchObject({ username: DEMO.admin, roles: ['provider_admin'] });
    await shots.take(page, 'signed-in-with-passkey');

    // Without the passkey (a different device), the same password gets no further than the passkey step.
    await signOut(page);
    await authenticator.remove();
    await enterPassword(page, DEMO.admin, server.demoPassword);
    await page.getByRole('button', { name: 'Sign in with passkey' }).click();
    await page.waitForTimeout(1000);
    // The session is still at the password stage: nothing beyond the second-factor routes answers.
    expect(await page.evaluate(async () => (await fetch('/api/v1/auth/session')).status)).toBe(401);
    expect(await page.getByRole('button', { name: /sign out/i }).count()).toBe(0);
    await context.close();
  });
});
