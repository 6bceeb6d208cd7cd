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
import { AdminSession, service } from './support/directory.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * The directory editor in the browser (issue 15): the provider admin imports a file with a bad row
 * (line and field shown, nothing imported) and a good one, adds a service through the form (a bad
 * field named in plain words next to it), removes one with a reason, exports; a clinician sets a
 * service's capacity. axe-core finds nothing serious on the screen. Screenshots go to
 * .test-results/screenshots/directory/.
 */

const POLL = { timeout: 20_000 };

/** A directory CSV (docs/DIRECTORY.md layout) whose second service (line 3) has no latitude. */
const BAD_CSV = [
  'serviceId,name,odsCode,type,address,postcode,latitude,longitude,phone,alwaysOpen,mon,tue,wed,thu,fri,sat,sun,bankHolidays,exceptions,dispositions,symptomGroups,minAgeYears,maxAgeYears,sexes,referral,bookingSlotsEndpointId,notClinicallyValidated',
  '5a0e7c1e-0000-4000-8000-000000000021,Riverside UTC,RRV01,urgent_treatment_centre,1 River Road,SP1 1AA,53.81,-1.53,,true,,,,,,,,,,Dx02,,0,,,walk_in,,true',
  '5a0e7c1e-0000-4000-8000-000000000022,Hillside ED,RHS01,emergency_department,2 Hill Road,SP1 1AA,north,-1.53,,true,,,,,,,,,,Dx02,,0,,,walk_in,,true',
].join('\n');

describe('the directory editor in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let clinicianUser: ApiUser;
  const violations: string[] = [];

  async function scan(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    if (found.length > 0) violations.push(describeViolations(screen, found));
  }

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    clinicianUser = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('a provider admin imports, sees a bad row by line and field with nothing imported, adds, removes and exports', async () => {
    const shots = new Screenshots('directory');
    const admin = await AdminSession.open(browser, server, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    const page = admin.page;
    await page.getByRole('link', { name: 'Directory' }).click();
    await page.getByRole('heading', { level: 1, name: 'Directory of services' }).waitFor();
    const table = page.getByTestId('directory-services');
    // The demo's sample services are listed before anything is counted (the list loads after the heading).
    await table.locator('tbody tr').first().waitFor(POLL);
    const countBefore = await table.locator('tbody tr').count();
    expect(countBefore).toBeGreaterThan(0);

    // A file with a bad row: refused whole, the row named by line and field; nothing imported.
    const file = page.getByLabel('Directory file (CSV or JSON)');
    await file.setInputFiles({ name: 'directory.csv', mimeType: 'text/csv', buffer: Buffer.from(BAD_CSV) });
    await page.getByRole('button', { name: 'Import file' }).click();
    const problems = page.getByTestId('import-problems');
    await problems.waitFor(POLL);
    expect(await problems.innerText()).toContain(
      'directory.csv was not imported: nothing in it was imported',
    );
    const problemRow = problems.locator('tbody tr').first();
    expect(await problemRow.locator('td').nth(0).innerText()).toBe('3');
    expect(await problemRow.locator('td').nth(1).innerText()).toBe('latitude');
    expect(await table.locator('tbody tr').count()).toBe(countBefore);
    expect(await page.getByText('Riverside UTC').count()).toBe(0);
    await shots.take(page, 'import-refused');
    await scan(page, 'directory import refused');

    // A good JSON file: imported, listed.
    const good = {
      services: [
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-000000000011',
          name: 'Northshire Royal Emergency Department',
          type: 'emergency_department',
          postcode: 'SP1 1AA',
          latitude: 50.51,
          longitude: -3.98,
          dispositions: ['Dx02', 'SAMPLE-ED-1H'],
          referral: { kind: 'walk_in' },
        }),
        service({
          serviceId: '5a0e7c1e-0000-4000-8000-000000000012',
          name: 'Quay Street Pharmacy',
          type: 'community_pharmacy',
          postcode: 'SP1 1AA',
          latitude: 50.51,
          longitude: -3.98,
          dispositions: ['Dx80'],
          referral: { kind: 'phone', phone: '0113 496 0300' },
        }),
      ],
    };
    await file.setInputFiles({
      name: 'directory.json',
      mimeType: 'application/json',
      buffer: Buffer.from(JSON.stringify(good)),
    });
    await page.getByRole('button', { name: 'Import file' }).click();
    await page.getByText(/directory\.json imported/).waitFor(POLL);
    await table.locator('tr[data-service="Quay Street Pharmacy"]').waitFor(POLL);
    await page
      .getByText('Directory of services: sample content for demonstration — not clinically validated')
      .first()
      .waitFor();

    // Add a service: a bad field is named next to it in plain words; then it is added.
    await page.getByRole('button', { name: 'Add a service' }).click();
    await page.getByLabel('Name', { exact: true }).fill('Mill Lane Dental Access Centre');
    await page.getByLabel('ODS code').fill('RML01');
    await page.getByLabel('Type of service').selectOption({ label: 'Dental service' });
    await page.getByLabel('Address (one line per line)').fill('4 Mill Lane\nSouthport');
    await page.getByLabel('Postcode', { exact: true }).fill('SP2 7QT');
    await page.getByLabel('Latitude').fill('fifty-three');
    await page.getByLabel('Longitude').fill('-1.55');
    await page.getByLabel('Monday opening times').fill('08:00-18:30');
    await page.getByLabel('Tuesday opening times').fill('8 till 6');
    await page.getByLabel('Dispositions taken (Dx codes)').fill('Dx118, Dx119');
    await page.getByLabel('How to refer').selectOption({ label: 'Walk in' });
    await page.getByRole('button', { name: 'Add service', exact: true }).click();
    await page.getByText('Latitude must be a number from -90 to 90.').waitFor();
    await page.getByText(/Tuesday opening times: "8 till 6" is not an opening time/).waitFor();
    expect(await page.getByLabel('Latitude').getAttribute('aria-invalid')).toBe('true');
    await shots.take(page, 'add-service-problems');
    await scan(page, 'directory add service with problems');
    await page.getByLabel('Latitude').fill('53.80');
    await page.getByLabel('Tuesday opening times').fill('08:00-18:00');
    await page.getByRole('button', { name: 'Add service', exact: true }).click();
    await page.getByText('Mill Lane Dental Access Centre saved.').waitFor(POLL);
    await table.locator('tr[data-service="Mill Lane Dental Access Centre"]').waitFor(POLL);

    // Remove with a reason.
    await page.getByRole('button', { name: 'Remove Quay Street Pharmacy' }).click();
    await page.getByRole('heading', { name: 'Remove Quay Street Pharmacy' }).waitFor();
    await page.getByRole('button', { name: 'Remove from the directory' }).click();
    await page.getByText('Say why Quay Street Pharmacy is being removed.').waitFor();
    await page.getByLabel('Why is it being removed?').fill('The pharmacy closed for good in November');
    await page.getByRole('button', { name: 'Remove from the directory' }).click();
    await page.getByText('Quay Street Pharmacy removed from the directory.').waitFor(POLL);
    expect(await table.locator('tr[data-service="Quay Street Pharmacy"]').count()).toBe(0);

    // Export: what the links download holds the directory as it is now.
    const exported = await page.evaluate(async () => {
      const csv = await (await fetch('/api/v1/admin/directory/export?format=csv')).text();
      const json = await (await fetch('/api/v1/admin/directory/export?format=json')).text();
      return { csv, json };
    });
    expect(exported.csv).toContain('Mill Lane Dental Access Centre');
    expect(exported.csv).not.toContain('Quay Street Pharmacy');
    expect(JSON.parse(exported.json)).toMatchObject({
      services: expect.arrayContaining([
        expect.objectContaining({ serviceId: '5a0e7c1e-0000-4000-8000-000000000011' }),
      ]),
    });
    await shots.take(page, 'directory');
    await scan(page, 'directory');
    await admin.close();

    // A clinician sets capacity from the same list.
    const context = await staffContext(browser, server.url, { bypassCSP: true });
    await useSessionCookie(context, server.url, clinicianUser.sessionToken);
    const clinician = await context.newPage();
    await clinician.goto('/admin/directory');
    await clinician.getByRole('heading', { level: 1, name: 'Directory of services' }).waitFor();
    const row = clinician.locator('tr[data-service="Northshire Royal Emergency Department"]');
    await row.waitFor(POLL);
    await row
      .getByRole('combobox', { name: 'Capacity of Northshire Royal Emergency Department' })
      .selectOption('amber');
    await row.getByRole('button', { name: 'Set capacity of Northshire Royal Emergency Department' }).click();
    await row.locator('[data-testid="capacity"][data-status="amber"]').waitFor(POLL);
    expect(await row.getByTestId('capacity').textContent()).toMatch(/Amber: busy\s+set \d\d:\d\d (GMT|BST)/);
    expect(await clinician.getByRole('button', { name: 'Add a service' }).count()).toBe(0);
    await scan(clinician, 'directory as a clinician');
    await context.close();
    expect(violations, violations.join('\n\n')).toEqual([]);
  }, 240_000);
});
