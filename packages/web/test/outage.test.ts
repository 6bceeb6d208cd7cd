import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caseReference } from '@holdfast/core';
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
import { DEMO, ensureWebBuild, freePort, spawnHoldfast, stopChild, waitForOutput } from './support/server.ts';

/**
 * When the server goes (issue 12, "When the server or the hub is gone"), against a real
 * `holdfast start` that the test SIGKILLs mid-call and starts again on the same data directory and
 * port: the continuity line turns degraded at the first failed request; the clinician's queue shows
 * the last list read, marked stale with its age, never "0 cases"; the adviser's call stays on screen
 * with "saving is paused", the answer given while the server was away is kept (not shown as saved)
 * and sent by itself when the server answers again, and the adviser carries on to the disposition;
 * the downtime pack kept in the browser opens with the node stopped, with its age, and holds the
 * call in progress. Screenshots go to .test-results/screenshots/outage/.
 */

const POLL = { timeout: 20_000 };
/** "At once": the first failed request, not the next status poll (10 s) or anything slower. */
const AT_ONCE = { timeout: 3_000 };
const PATHWAY = 'Headache (sample, not clinically validated)';

/** `holdfast start` on a data directory and port of the test's choosing, to kill and start again. */
class KillableHoldfast {
  private child: ChildProcess | null = null;
  private out = '';
  url = '';

  constructor(
    readonly dataDir: string,
    readonly port: number,
  ) {
    this.url = `http://localhost:${port}`;
  }

  async start(): Promise<void> {
    this.out = '';
    const child = spawnHoldfast(['-d', this.dataDir, 'start', '--port', String(this.port)]);
    child.stdout!.on('data', (d: Buffer) => (this.out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child = child;
    await waitForOutput(child, () => this.out, /listening on http:\/\/localhost:\d+/);
  }

  /** Waits for the running process to print `pattern`. */
  waitFor(pattern: RegExp): Promise<RegExpExecArray> {
    return waitForOutput(this.child!, () => this.out, pattern, 10_000);
  }

  /** SIGKILL: no clean shutdown, connections refused from now on. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await exited;
  }

  async stop(): Promise<void> {
    if (this.child) await stopChild(this.child);
  }
}

async function openCall(page: Page, callerName: string): Promise<string> {
  await page.getByRole('link', { name: 'New call' }).click();
  await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
  await page.getByLabel("Caller's name").fill(callerName);
  await page.getByLabel('Caller is').selectOption({ label: 'The patient (self)' });
  await page.getByLabel('Call-back number').fill('0113 496 0555');
  await page.getByRole('checkbox', { name: /back to the caller/ }).check();
  await page.getByLabel('Where is the patient now?').fill('At home, 3 Mill Lane');
  await page.getByLabel('What is the problem?').fill('Headache');
  await page.getByRole('button', { name: 'Open case' }).click();
  await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
  const caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())![1]!;
  await page.getByRole('textbox', { name: 'NHS number' }).fill(PATIENTS.david.nhsNumber);
  await page.getByRole('button', { name: 'Search by NHS number' }).click();
  await page.getByRole('button', { name: /Select David Okonjo/ }).click();
  await page.getByLabel('Pathway').selectOption({ label: PATHWAY });
  await page.getByRole('button', { name: 'Start triage' }).click();
  return caseId;
}

/** Waits for the question, then answers it with number keys (and Enter for a "choose all"). */
async function answer(page: Page, question: RegExp, keys: number[], multi = false): Promise<void> {
  await page.locator('#triage-question').filter({ hasText: question }).waitFor();
  for (const key of keys) await page.keyboard.press(String(key));
  if (multi) await page.keyboard.press('Enter');
}

/** The headache pathway to "A clinician will call you back within 1 hour", from question `from`. */
const TO_CALLBACK: { question: RegExp; keys: number[]; multi?: boolean }[] = [
  { question: /not breathing/, keys: [2] },
  { question: /unconscious/, keys: [2] },
  { question: /choking/, keys: [2] },
  { question: /heavy bleeding/, keys: [2] },
  { question: /face drooped/, keys: [2] },
  { question: /allergic reaction/, keys: [2] },
  { question: /How did the headache start/, keys: [3] },
  { question: /Do any of these apply/, keys: [2], multi: true },
];

async function answerSteps(page: Page, from: number, to = TO_CALLBACK.length): Promise<void> {
  for (const step of TO_CALLBACK.slice(from, to)) await answer(page, step.question, step.keys, step.multi);
}

async function expectNoSeriousViolations(page: Page, screen: string): Promise<void> {
  const violations = await seriousAxeViolations(page);
  expect(violations, describeViolations(screen, violations)).toEqual([]);
}

describe('when the server goes', () => {
  let server: KillableHoldfast;
  let browser: Browser;
  let adviserUser: ApiUser;
  let clinicianUser: ApiUser;

  beforeAll(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'holdfast-outage-'));
    const [port] = await Promise.all([freePort(), ensureWebBuild()]);
    server = new KillableHoldfast(dataDir, port);
    [browser] = await Promise.all([launchChromium(), server.start()]);
    // Printed once, at the first start.
    const password = (await server.waitFor(/all with the password (\S+)/))[1]!;
    adviserUser = await ApiUser.signIn(server.url, DEMO.adviser, password);
    clinicianUser = await ApiUser.signIn(server.url, DEMO.clinician, password);
    const sites = await adviserUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    await registerPatients(adviserUser, sites.sites[0]!.siteId);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (server) rmSync(server.dataDir, { recursive: true, force: true });
  });

  it('keeps the call, the queue and the downtime pack on screen through a SIGKILL, then carries on', async () => {
    const shots = new Screenshots('outage');

    // --- The adviser takes one call to a clinician call-back: the queue has one case.
    const adviserContext = await staffContext(browser, server.url, { bypassCSP: true });
    await useSessionCookie(adviserContext, server.url, adviserUser.sessionToken);
    const adviser = await adviserContext.newPage();
    await adviser.goto('/calls/new');
    const firstCase = await openCall(adviser, 'First Caller');
    await answerSteps(adviser, 0);
    await adviser.getByRole('button', { name: 'Confirm this disposition' }).click();
    await adviser.getByText('What happens now').waitFor();

    // --- The clinician's queue, read while the server answers.
    const clinicianContext = await staffContext(browser, server.url, { bypassCSP: true });
    await useSessionCookie(clinicianContext, server.url, clinicianUser.sessionToken);
    const clinician = await clinicianContext.newPage();
    await clinician.goto('/queue');
    const summary = clinician.getByTestId('queue-summary');
    await expect.poll(() => summary.innerText(), POLL).toMatch(/^1 case: /);

    // --- A second call, two answers in; the page is loaded again, as at a sign-in, so the pack kept
    // in the browser is fetched after this call was opened.
    const secondCase = await openCall(adviser, 'Second Caller');
    await answerSteps(adviser, 0, 2);
    await adviser
      .locator('#triage-question')
      .filter({ hasText: /choking/ })
      .waitFor();
    const reloadedAt = Date.now();
    await adviser.reload();
    await adviser
      .locator('#triage-question')
      .filter({ hasText: /choking/ })
      .waitFor();
    // Everything read before the server goes: the patient too.
    await adviser.getByText('David OKONJO').waitFor();
    // Kept while connected without changing the page (only the download button's data says so).
    const download = adviser.getByTestId('downtime-pack-download');
    await expect
      .poll(async () => Date.parse((await download.getAttribute('data-kept-at')) ?? '0'), POLL)
      .toBeGreaterThanOrEqual(reloadedAt - 1000);
    expect(await adviser.getByTestId('kept-downtime-pack').count()).toBe(0);
    const kept = adviser.getByTestId('kept-downtime-pack');
    const continuity = adviser.getByTestId('continuity-status');
    expect(await continuity.getAttribute('data-level')).toBe('ok');

    // --- The server is killed mid-call. The adviser answers the next question.
    await server.kill();
    await adviser.keyboard.press('2');
    // Degraded at the first failed request, not at the next poll.
    await expect.poll(() => continuity.getAttribute('data-level'), AT_ONCE).toBe('bad');
    expect(await continuity.innerText()).toMatch(/The server is not answering since \d\d:\d\d (GMT|BST)/);
    // The call stays on screen, and says plainly that the answer is not saved.
    await adviser.getByTestId('saving-paused').waitFor();
    await expect(adviser.getByTestId('saving-paused').innerText()).resolves.toMatch(
      /Saving is paused\s+The server is not answering since \d\d:\d\d (GMT|BST)\. This call stays on screen/,
    );
    // What the browser had read is still there: the patient and the answers so far.
    expect(await adviser.getByText('David OKONJO').isVisible()).toBe(true);
    expect(await adviser.getByTestId('triage-path').locator('li').count()).toBe(2);
    await adviser.getByTestId('answer-not-saved').waitFor();
    expect(await adviser.getByTestId('answer-not-saved').innerText()).toMatch(/“No” is not saved/);
    expect(await adviser.getByRole('heading', { level: 1, name: 'Call in progress' }).isVisible()).toBe(true);
    expect(await adviser.getByTestId('case-ref').innerText()).toBe(`Case ref ${caseReference(secondCase)}`);
    expect(await adviser.locator('#triage-question').innerText()).toMatch(/choking/);
    await expect(adviser.getByText('Case not available').count()).resolves.toBe(0);
    await shots.take(adviser, 'call-kept-server-down');
    await expectNoSeriousViolations(adviser, 'call screen, server down');

    // --- The clinician's queue: the last list, stale with its age, never "0 cases".
    await expect.poll(() => summary.getAttribute('data-stale'), POLL).toBe('true');
    const stale = await summary.innerText();
    expect(stale).toMatch(/^Last read (just now|\d+ s ago|\d+ min ago) — the server is not answering/);
    expect(stale).toContain('Showing the last list read (1 case)');
    expect(stale).not.toMatch(/0 cases|breached/);
    await shots.take(clinician, 'queue-stale');
    // A list never read (another site's, chosen now): no count at all, never "0 cases".
    const site = clinician.getByLabel('Site');
    await site.selectOption({ label: 'Northshire 111 call centre' });
    await expect
      .poll(() => summary.innerText(), POLL)
      .toMatch(/^The queue could not be read — the server is not answering\. No list has been read yet/);
    expect(await summary.innerText()).not.toMatch(/\d+ cases?/);
    expect(await clinician.getByText('No cases match.').count()).toBe(0);
    await site.selectOption({ label: 'All sites' });
    await expect.poll(() => summary.innerText(), POLL).toContain('Showing the last list read (1 case)');
    await expectNoSeriousViolations(clinician, 'queue, server down');

    // --- The downtime pack kept in the browser opens with the node stopped, with its age, and holds
    // the call in progress (its reference and adviser) and the queued call-back.
    expect(await kept.innerText()).toMatch(
      /^Open the downtime pack from \d\d:\d\d (GMT|BST) \((just now|\d+ s ago|\d+ min ago)\)$/,
    );
    const [saved] = await Promise.all([adviser.waitForEvent('download'), kept.click()]);
    expect(saved.suggestedFilename()).toMatch(/^downtime-pack-kept-\d{8}T\d{4}Z\.pdf$/);
    const pdf = readFileSync((await saved.path())!);
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    const rows = pdfTexts(pdf)
      .map((t) => t.replace(/\s+/g, ' '))
      .find((t) => t.includes(caseReference(secondCase)));
    expect(rows, 'no text of the PDF holds the second call').toBeDefined();
    expect(rows).toContain(caseReference(firstCase));
    expect(rows).toContain('with adviser Demo health adviser');
    expect(rows).toContain('David Okonjo');
    const headings = pdfTexts(pdf).find((t) => t.includes('Calls in progress with health advisers'));
    expect(headings).toBeDefined();

    // --- The server comes back on the same data and port: the kept answer is sent by itself, the
    // next question comes, the line turns connected, and the adviser carries on to the disposition.
    await server.start();
    await adviser
      .locator('#triage-question')
      .filter({ hasText: /heavy bleeding/ })
      .waitFor(POLL);
    await expect.poll(() => continuity.getAttribute('data-level'), POLL).toBe('ok');
    expect(await adviser.getByTestId('answer-not-saved').count()).toBe(0);
    expect(await adviser.getByTestId('saving-paused').count()).toBe(0);
    await answerSteps(adviser, 3);
    await adviser.getByRole('button', { name: 'Confirm this disposition' }).click();
    await adviser.getByText('What happens now').waitFor();
    await shots.take(adviser, 'call-carried-on');
    // Every answer is in the record once: the one given during the outage too.
    const walk = await adviserUser.call<{ status: string; path: { question: string; answer: string }[] }>(
      'GET',
      `/api/v1/cases/${secondCase}/triage`,
    );
    expect(walk.status).toBe('disposition');
    expect(walk.path).toHaveLength(TO_CALLBACK.length);
    expect(walk.path[2]!.question).toMatch(/choking/);
    expect(walk.path[2]!.answer).toBe('No');

    // The queue reads itself again: both calls, no longer stale.
    await expect.poll(() => summary.innerText(), POLL).toMatch(/^2 cases: /);
    expect(await summary.getAttribute('data-stale')).toBe('false');

    // The kept pack holds patient data: signing out deletes it from the browser.
    const keptPacks = () =>
      adviser.evaluate(
        () =>
          new Promise<number>((resolve, reject) => {
            const open = indexedDB.open('holdfast-downtime');
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
              const db = open.result;
              if (!db.objectStoreNames.contains('packs')) return resolve(0);
              const count = db.transaction('packs').objectStore('packs').count();
              count.onsuccess = () => resolve(count.result);
              count.onerror = () => reject(count.error);
            };
          }),
      );
    expect(await keptPacks()).toBe(1);
    await adviser.getByRole('button', { name: 'Sign out' }).click();
    await adviser.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
    expect(await keptPacks()).toBe(0);
    expect(await adviser.getByTestId('kept-downtime-pack').count()).toBe(0);
    await adviserContext.close();
    await clinicianContext.close();
  }, 300_000);
});
