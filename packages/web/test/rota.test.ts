import type { Browser, BrowserContext, Page } from 'playwright-core';
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
 * The rota in the browser (issue 17), against a real `holdfast start`: the shift manager sees the
 * gaps against the minimums first; a car with a driver on shift but no clinician is shown as a gap on
 * the rota and as "not offered" on the dispatch board; a shift entered in the form shows on the day's
 * list and among those on duty now; a rota file with mistakes is refused whole with its problems by
 * line and column, and a good one makes the car's crew whole so the board offers the car.
 * Screenshots go to .test-results/screenshots/rota/.
 */

const POLL = { timeout: 45_000 };

/** Today's UK date, "2026-12-05" (the test's times are UK wall-clock times, like a rota file's). */
function ukToday(): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: 'Europe/London',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date());
}

describe('the rota in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let managerUser: ApiUser;
  let vehicleId: string;
  const contexts: BrowserContext[] = [];
  const violations: string[] = [];

  async function scan(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  }

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    managerUser = await ApiUser.signIn(server.url, DEMO.shiftManager, server.demoPassword);
    const sites = await managerUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    const { vehicle } = await managerUser.call<{ vehicle: { vehicleId: string } }>(
      'POST',
      '/api/v1/vehicles',
      {
        callSign: 'NQ2',
        registration: 'NQ26 ROT',
        baseSiteId: sites.sites[0]!.siteId,
        baseLat: 50.51,
        baseLon: -3.98,
      },
    );
    vehicleId = vehicle.vehicleId;
    // The car needs a driver and a clinician at all times.
    for (const role of ['driver', 'clinician'])
      await managerUser.call('POST', '/api/v1/rota/minimums', {
        role,
        location: { kind: 'car', id: vehicleId },
        minimum: 1,
      });
  }, 300_000);
  afterAll(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await server?.stop();
  });

  it('a car with no clinician on shift is a gap for the manager and is not offered; a shift entered and a rota file imported make it whole', async () => {
    const shots = new Screenshots('rota');
    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    contexts.push(context);
    await useSessionCookie(context, server.url, managerUser.sessionToken);
    const page = await context.newPage();
    await page.goto('/rota');
    await page.getByRole('heading', { level: 1, name: 'Rota' }).waitFor(POLL);
    const gaps = page.getByTestId('rota-gaps');
    const clinicianGap = gaps.locator(
      `[data-testid="rota-gap"][data-role="clinician"][data-location="car:${vehicleId}"]`,
    );
    // The car named by its call sign once the cars are read.
    await clinicianGap
      .filter({ hasText: /Car: NQ2/ })
      .first()
      .waitFor(POLL);
    expect(await clinicianGap.first().innerText()).toMatch(/Car: NQ2.*Clinician.*0 of 1/s);

    // The driver's shift, entered in the form (today, all day): on the day's list and on duty now.
    const form = page.getByRole('form', { name: 'Enter a shift' });
    await form.getByLabel('Who').selectOption({ label: 'Demo driver (driver@northshire)' });
    expect(await form.getByLabel('Role').inputValue()).toBe('driver');
    await form.getByLabel('Where').selectOption({ label: 'Car' });
    await form.getByLabel('Car', { exact: true }).selectOption({ label: 'NQ2' });
    await form.getByLabel('Day the shift starts').fill(ukToday());
    await form.getByLabel('Start (UK time)').fill('00:00');
    await form.getByLabel('End (UK time)').fill('23:59');
    await form.getByRole('button', { name: 'Add shift' }).click();
    await page
      .getByTestId('shift-added')
      .filter({ hasText: /^Shift added: Demo driver, Driver, Car: NQ2/ })
      .waitFor(POLL);
    await page.getByTestId('rota-shifts').filter({ hasText: 'Demo driver' }).waitFor(POLL);
    await page.getByTestId('on-duty-now').filter({ hasText: 'Demo driver' }).waitFor(POLL);
    // Still no clinician on the car: still a gap, and the board does not offer the car.
    await clinicianGap.first().waitFor(POLL);
    await shots.take(page, 'rota-gap');
    await scan(page, 'rota with a gap');

    const board = await context.newPage();
    await board.goto('/dispatch');
    const car = board.locator(`[data-testid="board-vehicle"][data-vehicle-id="${vehicleId}"]`);
    await car.waitFor(POLL);
    expect(await car.getAttribute('data-available')).toBe('false');
    expect(await car.innerText()).toContain('Crew not on shift: not offered');

    // A rota file with mistakes: refused whole, each problem by line and column.
    const today = ukToday();
    await page
      .getByLabel('Or paste the rota (CSV)')
      .fill(
        [
          'user,role,location,locationId,start,end',
          `clinician@northshire,clinician,car,${vehicleId},${today} 25:00,${today} 23:59`,
          `clinician@northshire,surgeon,car,${vehicleId},${today} 00:00,${today} 23:59`,
        ].join('\n'),
      );
    await page.getByRole('button', { name: 'Import rota' }).click();
    const problems = page.getByTestId('import-problems');
    await problems.waitFor(POLL);
    await problems.locator('tr[data-line="2"][data-field="start"]').waitFor(POLL);
    await problems.locator('tr[data-line="3"][data-field="role"]').waitFor(POLL);
    expect(await page.getByTestId('rota-shifts').innerText()).not.toContain('Demo clinician');
    await shots.take(page, 'import-refused');
    await scan(page, 'rota import refused');

    // The good file: the clinician on the car; the crew is whole and the board offers the car.
    await page
      .getByLabel('Or paste the rota (CSV)')
      .fill(
        [
          'user,role,location,locationId,start,end',
          `clinician@northshire,clinician,car,${vehicleId},${today} 00:00,${today} 23:59`,
        ].join('\n'),
      );
    await page.getByRole('button', { name: 'Import rota' }).click();
    await page.getByTestId('rota-imported').filter({ hasText: 'Imported 1 shift.' }).waitFor(POLL);
    await page.getByTestId('rota-shifts').filter({ hasText: 'Demo clinician' }).waitFor(POLL);
    await board
      .locator(`[data-testid="board-vehicle"][data-vehicle-id="${vehicleId}"][data-available="true"]`)
      .waitFor(POLL);
    await shots.take(board, 'board-car-offered');
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 300_000);
});
