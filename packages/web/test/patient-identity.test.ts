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
 * Finding the right patient and the right call-back number (hazards H30–H33), in Chromium set to
 * US English, where a browser date field reads 03/05/1980 as 5 March: the date of birth is typed
 * day first and read day first; impossible and month-first dates are refused in plain words; two
 * people at one postcode are told apart by age, sex, address and practice; a day/month swap is
 * found and flagged. The call-back number is checked while it is typed and cannot be accepted until
 * the adviser confirms it was read back; the case then shows that it was. Screenshots go to
 * .test-results/screenshots/patient-identity/.
 */

describe('patient identity in a browser set to US English', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviserUser: ApiUser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    adviserUser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    const sites = await adviserUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    const homeSiteId = sites.sites[0]!.siteId;
    const register = (record: Record<string, unknown>) =>
      adviserUser.call('POST', '/api/v1/patients', {
        homeSiteId,
        record: { specialNotes: [], ...record },
      });
    // Born 3 May 1980, and her neighbour born the same day at the same postcode.
    await register({
      givenName: 'Nia',
      familyName: 'Okafor',
      dateOfBirth: '1980-05-03',
      sex: 'female',
      address: '7 Harbour Row, Whitby',
      postcode: 'YO21 3PU',
      registeredPractice: { odsCode: 'B86001', name: 'Harbour Surgery' },
    });
    await register({
      givenName: 'Ruth',
      familyName: 'Abbott',
      dateOfBirth: '1980-05-03',
      sex: 'male',
      address: 'Flat 2, 9 Harbour Row, Whitby',
      postcode: 'YO21 3PU',
      registeredPractice: { odsCode: 'B86002', name: 'Quayside Practice' },
    });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('takes a read-back UK call-back number and finds the patient by a day-first date of birth', async () => {
    const shots = new Screenshots('patient-identity');
    const violations: string[] = [];
    const scan = async (page: Page, screen: string) => {
      const found = await seriousAxeViolations(page);
      if (found.length > 0) violations.push(describeViolations(screen, found));
    };
    const context = await staffContext(browser, server.url, { bypassCSP: true, locale: 'en-US' });
    await useSessionCookie(context, server.url, adviserUser.sessionToken);
    const page = await context.newPage();
    expect(await page.evaluate(() => navigator.language)).toBe('en-US');

    // --- The call: the number is checked as it is typed, and must be read back before it is taken.
    await page.goto('/calls/new');
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    await page.getByLabel("Caller's name").fill('Sam Okafor');
    const number = page.getByLabel('Call-back number');
    const readBack = page.getByRole('checkbox', { name: /back to the caller/ });
    await number.fill('0791112345');
    await page.getByText('This number is not a UK telephone number in use: check each digit').waitFor();
    expect(await readBack.isDisabled()).toBe(true);
    await number.fill('079111234567');
    await page.getByText('This number is too long for a UK telephone number').waitFor();
    await number.fill('07911123456');
    await page.getByText('UK number: 07911 123456').waitFor();
    await page.getByLabel('Where is the patient now?').fill('At home');
    await page.getByLabel('What is the problem?').fill('Headache since this morning');
    await page.getByRole('button', { name: 'Open case' }).click();
    await page
      .getByText('Read the number back to the caller, then tick this once they agree it is right.')
      .waitFor();
    expect(page.url()).toMatch(/\/calls\/new$/);
    await scan(page, 'new call: number not read back');
    await shots.take(page, 'number-not-read-back');
    await page
      .getByRole('checkbox', { name: 'I read 07911 123456 back to the caller and they agreed it is right' })
      .check();
    await page.getByRole('button', { name: 'Open case' }).click();
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    expect(await page.getByTestId('callback-read-back').innerText()).toBe(
      '(read back to the caller and agreed)',
    );
    await expect.poll(() => page.getByText('call back on 07911 123456').count()).toBe(1);

    // --- The date of birth, typed the UK way on a US-English PC.
    const search = page.getByRole('form', { name: 'Find by name and date of birth' });
    const dob = search.getByLabel('Date of birth');
    await search.getByLabel('Family name').fill('Okafor');
    await dob.fill('12/31/1980');
    await search.getByRole('button', { name: 'Search by name' }).click();
    await search
      .getByText(
        'The date of birth has no month 31: write the day first, then the month (31/12/1980, not 12/31/1980).',
      )
      .waitFor();
    await dob.fill('31/02/1980');
    await search.getByRole('button', { name: 'Search by name' }).click();
    await search
      .getByText('The date of birth is not a real date: February 1980 has 29 days, not 31.')
      .waitFor();
    await dob.fill('03/05/1980');
    await search.getByRole('button', { name: 'Search by name' }).click();
    const results = page.getByRole('region', { name: 'Search results' });
    await results.getByText('1 patient found').waitFor();
    const nia = results.getByRole('row', { name: /Nia OKAFOR/ });
    expect(await nia.innerText()).toMatch(
      /3 May 1980 \(age \d+\)\s+Female\s+—\s+7 Harbour Row, YO21 3PU\s+Harbour Surgery/,
    );

    // Day and month swapped: still found, flagged for the adviser to check.
    await dob.fill('05/03/1980');
    await search.getByRole('button', { name: 'Search by name' }).click();
    await results.getByText('Day and month swapped from what you typed: check with the caller').waitFor();

    // No family name: date of birth and postcode find both people there, told apart.
    await search.getByLabel('Family name').fill('');
    await dob.fill('03/05/1980');
    await search.getByLabel('Postcode (optional)').fill('yo21 3pu');
    await search.getByRole('button', { name: 'Search by name' }).click();
    await results.getByText('2 patients found, best match first').waitFor();
    const ruth = results.getByRole('row', { name: /Ruth ABBOTT/ });
    expect(await ruth.innerText()).toMatch(/Male\s+—\s+Flat 2, YO21 3PU\s+Quayside Practice/);
    await scan(page, 'case: search results');
    await shots.take(page, 'search-by-date-of-birth-and-postcode');

    // The year alone, with the family name.
    await search.getByLabel('Family name').fill('Okafor');
    await search.getByLabel('Postcode (optional)').fill('');
    await dob.fill('1980');
    await search.getByRole('button', { name: 'Search by name' }).click();
    await results.getByText('1 patient found').waitFor();
    await results.getByRole('button', { name: /Select Nia Okafor, born 3 May 1980/ }).click();
    await page.getByText('Born 3 May 1980').waitFor();

    expect(violations, violations.join('\n')).toEqual([]);
    await context.close();
  });
});
