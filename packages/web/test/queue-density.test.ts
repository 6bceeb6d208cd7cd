import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccountsService } from '../../server/src/accounts/service.ts';
import { SessionStore } from '../../server/src/auth/sessions.ts';
import { DEMO_TENANT } from '../../server/src/demo.ts';
import { ApiUser } from './support/api.ts';
import {
  addVirtualAuthenticator,
  describeViolations,
  launchChromium,
  seriousAxeViolations,
  staffContext,
} from './support/browser.ts';
import { PATIENTS } from './support/fixtures.ts';
import { enterPassword, useSessionCookie } from './support/flows.ts';
import { seedQueuedCases } from './support/seed.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * The clinician's queue under load (issue 12), against a real `holdfast serve` with 44 live cases in
 * Chromium at a call-centre monitor's 1366×768: 15 or more rows on screen, each row saying who the
 * patient is (name, age, sex), their flags, NEWS2 (a partial set as partial), the disposition, the
 * deadline state and who holds the case by name; the summary follows the filters. A user with no
 * sites (the admin is warned) sees no case and claims none; special notes outside one's sites are
 * said to be withheld, and break-glass with a reason shows them and is audited.
 */

const POLL = { timeout: 15_000 };
const MONITOR = { width: 1366, height: 768 };
const CASES = 44;
const NORTH_CLINICIAN = 'north-clinician@northshire';
const PASSWORD = 'correct horse battery staple';

describe('the clinician’s queue at 1366×768', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviser: ApiUser;
  let clinician: ApiUser;
  let manager: ApiUser;
  let north: string;
  let south: string;
  let caseIds: string[];
  /** A north case for Margaret (DNACPR, end of life), held by the demo clinician with a partial NEWS2. */
  let margaretCase: string;
  let margaretId: string;
  /** A north case for a patient whose record is the south site's (a DNACPR note). */
  let southPatientCase: string;
  let southPatientId: string;

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'holdfast-web-queue-'));
    const seeded = await seedQueuedCases(dataDir, CASES, { spreadMinutes: 120 });
    [north, south] = seeded.siteIds as [string, string];
    // A clinician of the north site only: the south site's records are outside their sites.
    await new AccountsService(
      seeded.node.store,
      seeded.node.ledger,
      new SessionStore(seeded.node.store, seeded.node.clock),
      seeded.node.providerKeys,
    ).create(
      DEMO_TENANT,
      {
        username: NORTH_CLINICIAN,
        displayName: 'Dr N Northam',
        roles: ['clinician'],
        siteIds: [north],
        password: PASSWORD,
      },
      'system:test',
    );
    await seeded.node.close();
    caseIds = seeded.caseIds;
    [server, browser] = await Promise.all([
      startHoldfast({ seeded: { dataDir, demoPassword: seeded.demoPassword } }),
      launchChromium(),
    ]);
    adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    clinician = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    manager = await ApiUser.signIn(server.url, DEMO.shiftManager, server.demoPassword);

    margaretId = (
      await adviser.call<{ patientId: string }>('POST', '/api/v1/patients', {
        homeSiteId: north,
        record: PATIENTS.margaret,
      })
    ).patientId;
    southPatientId = (
      await adviser.call<{ patientId: string }>('POST', '/api/v1/patients', {
        homeSiteId: south,
        record: {
          givenName: 'Walter',
          familyName: 'Southgate',
          dateOfBirth: '1950-07-01',
          sex: 'male',
          specialNotes: [{ kind: 'dnacpr', text: 'DNACPR in place since 2026-10-01, form at home.' }],
        },
      })
    ).patientId;
    // Seeded case k is at site k % 2 (north for even k). A pathway may be for some ages only: the
    // first north case whose triage suits the patient takes them.
    const northCases = caseIds.filter((_, k) => k % 2 === 0);
    const identify = async (patientId: string, skip: string[]): Promise<string> => {
      for (const caseId of northCases) {
        if (skip.includes(caseId)) continue;
        try {
          await adviser.call('POST', `/api/v1/cases/${caseId}/patient`, { patientId });
          return caseId;
        } catch {
          // not this case's pathway's age range: try the next
        }
      }
      throw new Error('no north case could take the patient');
    };
    margaretCase = await identify(margaretId, []);
    southPatientCase = await identify(southPatientId, [margaretCase]);
    await clinician.call('POST', `/api/v1/cases/${margaretCase}/claim`);
    await clinician.call('POST', `/api/v1/cases/${margaretCase}/consultation`);
    await clinician.call('POST', `/api/v1/cases/${margaretCase}/consultation/record`, {
      observations: { temperature: 37.0 },
    });
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function pageAs(user: ApiUser): Promise<Page> {
    // bypassCSP: axe-core is injected as an inline script.
    const context = await staffContext(browser, server.url, { bypassCSP: true, viewport: MONITOR });
    await useSessionCookie(context, server.url, user.sessionToken);
    return context.newPage();
  }

  async function expectNoAxeViolations(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    expect(found.length === 0 ? '' : describeViolations(screen, found)).toBe('');
  }

  /**
   * A case's row, scrolled to: the list is virtualised, so a row exists in the page only near the
   * visible part; the list is scrolled a screen at a time until it appears.
   */
  async function rowOf(page: Page, caseId: string) {
    const row = page.locator(`[data-case-id="${caseId}"]`);
    await page.locator('.queue-row').first().waitFor(POLL);
    const scroller = page.getByTestId('queue-scroll');
    // Each scroll is followed by two animation frames: the list renders its new rows in between.
    const settle = () =>
      page.evaluate(
        () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done(null)))),
      );
    await scroller.evaluate((el) => el.scrollTo(0, 0));
    await settle();
    for (let i = 0; i < 20 && (await row.count()) === 0; i++) {
      await scroller.evaluate((el) => el.scrollBy(0, el.clientHeight - 60));
      await settle();
    }
    await row.scrollIntoViewIfNeeded();
    return row;
  }

  /** Rows wholly inside the browser's viewport (the list is virtualised: only these matter). */
  function rowsOnScreen(page: Page): Promise<number> {
    return page.evaluate(
      () =>
        [...document.querySelectorAll('.queue-row')].filter((el) => {
          const r = el.getBoundingClientRect();
          return r.top >= 0 && r.bottom <= window.innerHeight && r.height > 0;
        }).length,
    );
  }

  it('shows 15 or more rows on screen, each with patient, age, sex, flags, NEWS2, disposition, deadline and holder', async () => {
    const page = await pageAs(manager);
    await page.goto('/queue');
    await page.locator('.queue-row').first().waitFor(POLL);
    await expect
      .poll(() => page.getByTestId('queue-summary').textContent(), POLL)
      .toMatch(new RegExp(`^${CASES} cases: \\d+ breached, \\d+ at risk, \\d+ on time$`));
    const onScreen = await rowsOnScreen(page);
    expect(onScreen).toBeGreaterThanOrEqual(15);

    const margaret = await rowOf(page, margaretCase);
    const col = (row: typeof margaret, name: string) => row.locator(`[data-col="${name}"]`).textContent();
    expect(await col(margaret, 'patient')).toBe('Margaret Holloway');
    expect(await col(margaret, 'age-sex')).toContain('85 years, female');
    expect(await col(margaret, 'flags')).toContain('DNACPR');
    expect(await col(margaret, 'flags')).toContain('End of life');
    expect(await col(margaret, 'news2')).toBe('NEWS2 partial: 1 of 7 recorded');
    expect(await col(margaret, 'holder')).toBe('Held by Demo clinician');
    expect(await col(margaret, 'disposition')).toMatch(/^Seeded call \d+ · .+|^Template call \d+ · .+/);
    expect(await col(margaret, 'deadline')).toMatch(/(On time|At risk|Breached).*(left|overdue)/);
    expect(await col(margaret, 'site')).toBe('Northshire 111 call centre');
    const walter = await rowOf(page, southPatientCase);
    expect(await col(walter, 'patient')).toBe('Walter Southgate');
    expect(await col(walter, 'holder')).toBe('Waiting: not held');
    expect(await col(walter, 'news2')).toBe('No NEWS2');
    // A case with no patient yet names the caller instead.
    const unnamed = await rowOf(page, caseIds[5]!);
    expect(await col(unnamed, 'patient')).toMatch(/^Not identified \(caller .+\)$/);
    await expectNoAxeViolations(page, 'dense queue');

    // The summary follows the filters: only breached cases, and it counts only those.
    await page.getByLabel('Deadline state').selectOption('breached');
    await expect.poll(() => page.getByTestId('queue-summary').textContent(), POLL).toMatch(/\(filtered\)$/);
    const summary = (await page.getByTestId('queue-summary').textContent())!;
    const [, shown, breached] = /^(\d+) cases?: (\d+) breached, 0 at risk, 0 on time \(filtered\)$/.exec(
      summary,
    )!;
    expect(Number(shown)).toBe(Number(breached));
    expect(Number(shown)).toBeGreaterThan(0);
    expect(Number(shown)).toBeLessThan(CASES);
    await page.context().close();
  });

  it('an admin creating a user with no sites is warned; that user sees no case and claims none', async () => {
    const context = await staffContext(browser, server.url, { bypassCSP: true, viewport: MONITOR });
    const page = await context.newPage();
    await addVirtualAuthenticator(page);
    await enterPassword(page, DEMO.admin, server.demoPassword);
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.getByRole('button', { name: /sign out/i }).waitFor(POLL);
    await page.goto('/admin/users');
    await page.getByLabel('Full name').fill('Dr Siteless');
    await page.getByLabel('User name').fill('siteless@northshire');
    await page.getByLabel('Initial password').fill(PASSWORD);
    await page.getByLabel('Reason', { exact: true }).fill('Joins the clinical rota');
    await page.getByRole('checkbox', { name: 'Clinician' }).check();
    // Warned while choosing, before anything is saved.
    await expect
      .poll(() => page.getByTestId('no-sites-warning').textContent(), POLL)
      .toMatch(/This user has no sites: they will see no queue and no cases/);
    await expectNoAxeViolations(page, 'new user with no sites');
    await page.getByRole('button', { name: 'Create user' }).click();
    await expect
      .poll(() => page.getByText(/^Created Dr Siteless/).textContent(), POLL)
      .toMatch(/This user has no sites: they will see no queue/);
    await context.close();

    const siteless = await ApiUser.signIn(server.url, 'siteless@northshire', PASSWORD);
    const queue = await siteless.call<{ cases: unknown[] }>('GET', '/api/v1/queue');
    expect(queue.cases).toEqual([]);
    await expect(siteless.call('POST', `/api/v1/cases/${southPatientCase}/claim`)).rejects.toThrow(
      /: 403 .*you have no sites yet/,
    );
    await expect(siteless.call('GET', `/api/v1/cases/${southPatientCase}`)).rejects.toThrow(
      /: 403 .*you have no sites yet/,
    );
    const view = await pageAs(siteless);
    await view.goto('/queue');
    await expect
      .poll(() => view.getByTestId('queue-summary').textContent(), POLL)
      .toBe('0 cases: 0 breached, 0 at risk, 0 on time');
    expect(await view.locator('.queue-row').count()).toBe(0);
    await view.context().close();
  });

  it('special notes outside one’s sites are said to be withheld; break-glass with a reason shows them and is audited', async () => {
    const northClinician = await ApiUser.signIn(server.url, NORTH_CLINICIAN, PASSWORD);
    const page = await pageAs(northClinician);
    await page.goto('/queue');
    // Held by name, seen by another clinician.
    const margaret = await rowOf(page, margaretCase);
    expect(await margaret.locator('[data-col="holder"]').textContent()).toBe('Held by Demo clinician');
    const walter = await rowOf(page, southPatientCase);
    expect(await walter.locator('[data-col="flags"]').textContent()).toContain(
      'Special notes withheld — break glass to read',
    );

    await walter.getByRole('link', { name: /^Open: Walter Southgate/ }).click();
    const withheld = page.getByTestId('special-notes-withheld');
    await withheld.waitFor(POLL);
    expect(await withheld.getByRole('heading').textContent()).toContain(
      'Special notes withheld — break glass to read',
    );
    expect(await page.getByTestId('special-notes').count()).toBe(0);
    await expectNoAxeViolations(page, 'case with special notes withheld');
    const reason = 'Calling back now: need to know of any DNACPR';
    await page.getByLabel(/Why you need the record/).fill(reason);
    await page.getByRole('button', { name: 'Break glass and read the notes' }).click();
    const notes = page.getByTestId('special-notes');
    await expect.poll(() => notes.textContent(), POLL).toContain('DNACPR in place since 2026-10-01');
    expect(await page.getByTestId('break-glass-read').count()).toBe(1);
    await page.context().close();

    const auditor = await ApiUser.signIn(server.url, DEMO.auditor, server.demoPassword);
    const trail = await auditor.call<{
      events: { resourceId: string; breakGlass: boolean; reason: string | null; userId: string }[];
    }>('GET', `/api/v1/audit?patientId=${southPatientId}&breakGlass=true`);
    expect(trail.events).toEqual([
      expect.objectContaining({ resourceId: southPatientId, breakGlass: true, reason }),
    ]);
  });
});
