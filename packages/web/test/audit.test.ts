import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pdfTexts } from '../../server/test/downtime/pdf-text.ts';
import { ApiUser } from './support/api.ts';
import {
  describeViolations,
  launchChromium,
  Screenshots,
  seriousAxeViolations,
  staffContext,
} from './support/browser.ts';
import { PATIENTS, registerPatients } from './support/fixtures.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * The auditor's trail in Chromium against a real `holdfast start` (issue 12): filtered by NHS number
 * and user name (refused in words when they match nothing), names and NHS numbers shown instead of
 * ids, three reads within a minute shown as one row with a count, and the filtered trail exported as
 * CSV and PDF. The NHS number never appears in a URL the browser requested.
 */
describe('the audit trail in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let auditor: ApiUser;
  let clinician: ApiUser;
  let margaretId: string;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    const adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    clinician = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    auditor = await ApiUser.signIn(server.url, DEMO.auditor, server.demoPassword);
    const sites = await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    margaretId = (await registerPatients(adviser, sites.sites[0]!.siteId)).margaret;
    // Three reads of Margaret's record by the clinician, within a few seconds.
    for (let i = 0; i < 3; i++) await clinician.call('GET', `/api/v1/patients/${margaretId}`);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function auditPage(): Promise<{ page: Page; urls: string[] }> {
    const context = await staffContext(browser, server.url, {
      bypassCSP: true,
      viewport: { width: 1366, height: 768 },
    });
    await useSessionCookie(context, server.url, auditor.sessionToken);
    const page = await context.newPage();
    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.goto('/audit');
    await page.getByRole('heading', { level: 1, name: 'Audit trail' }).waitFor();
    return { page, urls };
  }

  it('filters by NHS number and user name, shows names, groups repeated reads, refuses what matches nothing', async () => {
    const shots = new Screenshots('audit');
    const { page, urls } = await auditPage();
    await page.getByLabel("Patient's NHS number").fill('943 476 5919');
    await page.getByLabel("User's name or login").fill('Demo clinician');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const rows = page.getByTestId('audit-row');
    await rows.filter({ hasText: 'Opened a patient record' }).first().waitFor();
    const texts = await rows.allInnerTexts();
    // Only the clinician's events, for Margaret: her three reads as one row with a count of 3.
    expect(texts).toHaveLength(1);
    const cells = await rows.first().locator('td').allInnerTexts();
    expect(cells.slice(1)).toEqual([
      'Opened a patient record',
      '3',
      'Demo clinician (Clinician)',
      'Patient record',
      `${PATIENTS.margaret.givenName} ${PATIENTS.margaret.familyName}`,
      '943 476 5919',
      'No',
    ]);
    expect(cells[0]).toMatch(/\(first /);
    // No truncated ids anywhere in the table.
    expect(await page.getByTestId('audit-table').innerText()).not.toContain(margaretId.slice(0, 8));
    await shots.take(page, 'filtered-grouped');
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('audit trail', violations)).toEqual([]);

    // An NHS number no patient has is refused next to its field, in words.
    await page.getByLabel("Patient's NHS number").fill('401 023 2137');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('Matches no patient on record: check the number.').waitFor();
    await page.getByLabel("Patient's NHS number").fill('');
    await page.getByLabel("User's name or login").fill('Nobody Atall');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByText('Matches no user of your provider: check the name.').waitFor();
    // The NHS number travelled in request bodies only.
    expect(urls.some((u) => /9434765919|943%20476|401%20023|4010232137/.test(u))).toBe(false);
    await page.context().close();
  });

  it('exports the filtered trail as CSV and as PDF', async () => {
    const { page } = await auditPage();
    await page.getByLabel("Patient's NHS number").fill('9434765919');
    await page.getByLabel("User's name or login").fill('clinician@northshire');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByTestId('audit-row').first().waitFor();

    const [csvDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export as CSV' }).click(),
    ]);
    expect(csvDownload.suggestedFilename()).toMatch(/^audit-trail-.*\.csv$/);
    const csv = await readFile((await csvDownload.path())!, 'utf8');
    const lines = csv.trimEnd().split('\r\n');
    expect(lines).toHaveLength(2);
    expect(lines[1]!.split(',').slice(1, 8)).toEqual([
      '3',
      'Opened a patient record',
      'Demo clinician',
      'clinician',
      'patient',
      'Margaret Holloway',
      '943 476 5919',
    ]);

    const [pdfDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export as PDF' }).click(),
    ]);
    const pdf = await readFile((await pdfDownload.path())!);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const text = pdfTexts(pdf).join('\n');
    expect(text).toContain('Margaret Holloway');
    expect(text).toContain('943 476 5919');
    expect(text).toContain('Opened a patient record');

    // Both exports are in the trail, by the auditor.
    await page.getByLabel("Patient's NHS number").fill('');
    await page.getByLabel("User's name or login").fill('Demo auditor');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByTestId('audit-row').filter({ hasText: 'Exported the audit trail' }).nth(1).waitFor();
    await page.context().close();
  });
});
