import { caseReference } from '@holdfast/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUser } from './support/api.ts';
import {
  describeViolations,
  launchChromium,
  Screenshots,
  seriousAxeViolations,
  staffContext,
} from './support/browser.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * The shift manager's live dashboard in Chromium against a real `holdfast start` (issue 12): a figure
 * changes within a second of a queue change (the same server-sent events as the queue), a figure
 * opens the list behind it, and the per-hour chart shows today's and last week's series from calls
 * whose times the test set. Screenshots go to .test-results/screenshots/dashboard/.
 */
describe('the live shift dashboard in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviser: ApiUser;
  let manager: ApiUser;
  let siteId: string;
  const openCall = async (receivedAt?: string) =>
    (
      await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
        siteId,
        ...(receivedAt ? { receivedAt } : {}),
        caller: {
          name: 'Test Caller',
          relationship: 'self',
          callbackNumber: '0113 496 0000',
          callbackNumberReadBack: true,
        },
        location: 'At home',
        presentingComplaint: 'Dizzy',
      })
    ).caseId;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    manager = await ApiUser.signIn(server.url, DEMO.shiftManager, server.demoPassword);
    siteId = (await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites')).sites[0]!.siteId;
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function dashboardPage(): Promise<Page> {
    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, manager.sessionToken);
    const page = await context.newPage();
    await page.goto('/dashboard');
    await page.getByRole('heading', { level: 1, name: 'Shift dashboard' }).waitFor();
    await page.getByTestId('dashboard-live').filter({ hasText: /^Live/ }).waitFor();
    return page;
  }

  it('a figure changes within a second of a queue change, and opens the list of its cases', async () => {
    const shots = new Screenshots('dashboard');
    const page = await dashboardPage();
    const figure = page.getByTestId('stat-calls-with-advisers');
    const before = Number((await figure.innerText()).replace(/\D/g, ''));
    // Measured from the change being committed (the API's answer) to the figure showing it.
    const caseId = await openCall();
    const started = Date.now();
    await page.waitForFunction(
      (expected) =>
        document.querySelector('[data-testid="stat-calls-with-advisers"]')?.textContent?.trim() === expected,
      String(before + 1),
      { polling: 'raf', timeout: 5_000 },
    );
    const elapsed = Date.now() - started;
    expect(elapsed).toBeLessThan(1000);

    // Every figure is a button that opens its list; this one lists the new call by its reference.
    const button = page.getByTestId('figure-calls-with-advisers');
    expect(await button.getAttribute('aria-expanded')).toBe('false');
    await button.click();
    expect(await button.getAttribute('aria-expanded')).toBe('true');
    const list = page.getByTestId('list-calls-with-advisers');
    await list.getByRole('rowheader', { name: caseReference(caseId) }).waitFor();
    expect(await list.getByRole('heading', { level: 2 }).innerText()).toBe(
      `Calls with advisers: ${before + 1}`,
    );
    await list.getByRole('link', { name: `Open case ${caseReference(caseId)}` }).waitFor();
    // Another figure shows its own list instead; staff signed in lists roles.
    await page.getByTestId('figure-staff-on-duty').click();
    await page.getByTestId('list-staff-on-duty').getByRole('rowheader', { name: 'Shift manager' }).waitFor();
    await shots.take(page, 'figure-list');
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('dashboard with a list open', violations)).toEqual([]);
    await page.context().close();
  });

  it("charts calls per hour today against the same weekday last week, from the calls' own times", async () => {
    const now = Date.now();
    const lastWeek = new Date(now - 7 * 24 * 3600_000).toISOString();
    await openCall(lastWeek);
    await openCall(lastWeek);
    const page = await dashboardPage();
    const hourLabel = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/London',
      hour: '2-digit',
      hourCycle: 'h23',
    }).format(new Date(now));
    const hourly = await manager.call<{
      hours: { label: string; calls: number | null; callsLastWeek: number | null }[];
    }>('GET', '/api/v1/dashboard/hourly');
    const point = hourly.hours.find((h) => h.label.startsWith(`${hourLabel}:00`))!;
    // This hour: the call of the first test (and none other today at this hour); two a week earlier.
    expect(point.callsLastWeek).toBe(2);
    expect(point.calls).toBeGreaterThanOrEqual(1);

    const chart = page.getByTestId('chart-calls');
    // Attached, not visible: in the first hour after midnight today's series has one point, and a
    // line through one point draws no path (its layer is then hidden, though it is there).
    await chart.locator('.recharts-line').first().waitFor({ state: 'attached' });
    // Two series drawn, named in the legend.
    expect(await chart.locator('.recharts-line').count()).toBe(2);
    expect(await chart.innerText()).toMatch(/Today \(/);
    expect(await chart.innerText()).toMatch(/A week earlier \(/);
    // The same numbers as a table (what the chart draws): the hour's row holds the fixture counts.
    await page.getByText('The same figures as a table').click();
    const row = page.getByTestId('hourly-table').locator(`tr[data-hour^="${hourLabel}:00"]`);
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[0]).toBe(String(point.calls));
    expect(cells[1]).toBe('2');
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('dashboard charts', violations)).toEqual([]);
    await page.context().close();
  });
});
