import { walk, type WalkResult } from '@holdfast/core/triage/engine';
import type { TriageProtocol } from '@holdfast/core/triage/pack';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../server/src/triage/packs.ts';
import { ApiUser } from './support/api.ts';
import { describeViolations, launchChromium, seriousAxeViolations, staffContext } from './support/browser.ts';
import { registerPatients } from './support/fixtures.ts';
import { enterPassword, useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * A record people can read (C5) in Chromium against a real `holdfast start`: a closed case still
 * shows its consultation; the patient screen lists the previous encounters; the printable summary
 * carries the record under the print stylesheet; notes typed and not saved survive a reload and an
 * idle sign-out; and the case held by the clinician who was signed out goes back to the queue.
 */

const POLL = { timeout: 15_000 };
type Answer = { nodeId: string; value: string | string[] };

/** Answers that walk `protocol` to a speak-to-primary-care disposition (depth-first over the engine). */
function answersToCallback(protocol: TriageProtocol): Answer[] | null {
  const search = (answers: Answer[], depth: number): Answer[] | null => {
    if (depth > 40) return null;
    const r: WalkResult = walk(protocol, answers);
    if (r.status === 'disposition') return r.disposition.kind === 'speak_to_primary_care' ? answers : null;
    const node = r.node;
    const candidates: Answer['value'][] =
      node.type === 'single_choice'
        ? node.options.map((o) => o.id)
        : node.type === 'multi_choice'
          ? [[], ...node.options.map((o) => [o.id])]
          : [];
    for (const value of candidates) {
      const found = search([...answers, { nodeId: node.id, value }], depth + 1);
      if (found) return found;
    }
    return null;
  };
  return search([], 0);
}

describe('the readable record in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviser: ApiUser;
  let clinician: ApiUser;
  let margaretId: string;
  let siteIds: string[];
  let closedCase: string;
  let openCase: string;

  /** A call for Margaret, triaged over the API to a clinician call-back and confirmed. */
  async function queuedCase(siteId: string, problem: string): Promise<string> {
    const { caseId } = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
      siteId,
      caller: {
        name: 'Joan Holloway',
        relationship: 'relative',
        callbackNumber: '0113 496 0321',
        callbackNumberReadBack: true,
      },
      patientId: margaretId,
      location: 'At home',
      presentingComplaint: problem,
    });
    const { protocols } = await requireProtocolPack(SAMPLE_PACK_DIR);
    const headache = protocols.get('headache') ?? [...protocols.values()][0]!;
    const answers = answersToCallback(headache);
    if (!answers) throw new Error('the sample headache pathway has no call-back disposition');
    await adviser.call('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId: headache.content.pathwayId });
    let last: WalkResult | null = null;
    for (const a of answers)
      last = await adviser.call<WalkResult>('POST', `/api/v1/cases/${caseId}/triage/answers`, a);
    if (last?.status !== 'disposition') throw new Error('triage did not reach a disposition');
    await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
      dxCode: last.disposition.dxCode,
    });
    return caseId;
  }

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    clinician = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    siteIds = (await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites')).sites.map(
      (s) => s.siteId,
    );
    margaretId = (await registerPatients(adviser, siteIds[0]!)).margaret;
    // An earlier case at the second site, seen and closed by the clinician with a full consultation.
    closedCase = await queuedCase(siteIds[1] ?? siteIds[0]!, 'Severe headache since yesterday');
    await clinician.call('POST', `/api/v1/cases/${closedCase}/claim`);
    await clinician.call('POST', `/api/v1/cases/${closedCase}/callback-attempts`, { outcome: 'answered' });
    await clinician.call('POST', `/api/v1/cases/${closedCase}/consultation`);
    await clinician.call('POST', `/api/v1/cases/${closedCase}/consultation/record`, {
      history: 'Frontal headache for a day, no visual change',
      examination: 'Alert and orientated, no neck stiffness',
      observations: { respirationRate: 16, spo2: 97, pulse: 76, temperature: 36.9 },
      assessment: 'Tension-type headache',
      plan: 'Paracetamol and fluids',
      safetyNetting: 'Call 111 again if vision changes or a rash appears',
    });
    await clinician.call('POST', `/api/v1/cases/${closedCase}/outcome`, { outcome: 'advice_and_close' });
    openCase = await queuedCase(siteIds[0]!, 'Headache again today');
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** The authenticator's next unused code (each is accepted once): waits for a new step if need be. */
  async function freshCode(): Promise<string> {
    for (;;) {
      try {
        return clinician.totp!.code();
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }
  }

  async function signInAsClinician(page: Page): Promise<void> {
    await enterPassword(page, DEMO.clinician, server.demoPassword);
    await page.getByLabel(/6-digit code/).fill(await freshCode());
    await page.getByRole('button', { name: 'Verify code' }).click();
    await page.getByRole('button', { name: 'Sign out' }).waitFor(POLL);
  }

  /**
   * Holds the consultation screen's read of its draft until the returned function is called, as a
   * slow network would: what the clinician types meanwhile must still be kept, and not overwritten.
   */
  async function holdDraftRead(page: Page): Promise<() => Promise<void>> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const pattern = `**/api/v1/cases/${openCase}/consultation/draft`;
    await page.route(pattern, async (route) => {
      if (route.request().method() === 'GET') await released;
      await route.fallback();
    });
    return async () => {
      release();
      await page.unroute(pattern);
    };
  }

  /**
   * The consultation screen's first read of its draft answers 503 (a server restarting), once the
   * returned function is called; later reads reach the server. Records the order of the screen's
   * draft requests, each as `GET 503`, `GET 200` or `PUT`.
   */
  async function failFirstDraftRead(page: Page): Promise<{ fail: () => void; sent: string[] }> {
    let fail!: () => void;
    const failed = new Promise<void>((resolve) => (fail = resolve));
    const sent: string[] = [];
    let first = true;
    const pattern = `**/api/v1/cases/${openCase}/consultation/draft`;
    await page.route(pattern, async (route) => {
      const method = route.request().method();
      if (method === 'GET' && first) {
        first = false;
        await failed;
        sent.push('GET 503');
        await route.fulfill({ status: 503, contentType: 'application/json', body: '{}' });
        return;
      }
      sent.push(method === 'GET' ? 'GET 200' : method);
      await route.fallback();
    });
    return { fail, sent };
  }

  async function clinicianPage(): Promise<Page> {
    // bypassCSP only lets axe-core be injected for the accessibility checks.
    const context = await staffContext(browser, server.url, { bypassCSP: true });
    await useSessionCookie(context, server.url, clinician.sessionToken);
    return context.newPage();
  }

  it('a closed case shows its consultation, triage path and what happened', async () => {
    const page = await clinicianPage();
    await page.goto(`/queue/${closedCase}`);
    await page.getByRole('heading', { level: 1, name: /Severe headache/ }).waitFor(POLL);
    await page.getByText('This case is closed and has left the queue').waitFor(POLL);
    const consultation = page.getByTestId('record-consultation');
    await expect.poll(() => consultation.innerText(), POLL).toContain('Tension-type headache');
    const text = await consultation.innerText();
    for (const expected of [
      'Frontal headache for a day, no visual change',
      'Alert and orientated, no neck stiffness',
      'Paracetamol and fluids',
      'Call 111 again if vision changes or a rash appears',
      'Pulse (beats per minute): 76',
    ])
      expect(text).toContain(expected);
    const timeline = await page.getByTestId('record-timeline').innerText();
    expect(timeline).toContain('Call-back attempt 1: answered');
    expect(timeline).toContain('Outcome: advice given and closed');
    expect((await page.getByTestId('record-triage-path').locator('li').count()) > 3).toBe(true);
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('closed case with its record', violations)).toEqual([]);
    await page.context().close();
  });

  it('the patient screen shows special notes and the previous encounters at every site', async () => {
    const page = await clinicianPage();
    await page.goto(`/queue/${openCase}`);
    await page.getByRole('link', { name: 'Patient record and previous encounters' }).click();
    await page.getByRole('heading', { level: 1, name: 'Patient: Margaret HOLLOWAY' }).waitFor(POLL);
    await page.getByText('DNACPR form signed 2026-09-02', { exact: false }).waitFor(POLL);
    const rows = page.getByTestId('encounters').locator('tbody tr');
    await expect.poll(() => rows.count(), POLL).toBe(2);
    // Newest first: today's open case, then the closed one from the other site.
    expect(await rows.nth(0).getAttribute('data-case-id')).toBe(openCase);
    expect(await rows.nth(1).getAttribute('data-case-id')).toBe(closedCase);
    expect(await rows.nth(1).innerText()).toContain('Closed');
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('patient record', violations)).toEqual([]);
    // Each encounter opens its summary.
    await rows.nth(1).getByRole('link').click();
    await page.getByRole('heading', { level: 1, name: /Case summary: Severe headache/ }).waitFor(POLL);
    await page.context().close();
  });

  it('prints a case summary: the record without menus or buttons', async () => {
    const page = await clinicianPage();
    await page.goto(`/cases/${closedCase}/summary`);
    await page.getByRole('heading', { level: 1, name: /Case summary/ }).waitFor(POLL);
    await page.getByTestId('record-consultation').waitFor(POLL);
    await page.emulateMedia({ media: 'print' });
    expect(await page.getByRole('navigation', { name: 'Main' }).isVisible()).toBe(false);
    expect(await page.getByRole('button', { name: 'Print this summary' }).isVisible()).toBe(false);
    // The patient line fills in when the patient's record has been read: wait for it, not for luck.
    await expect
      .poll(() => page.getByTestId('summary-call').innerText(), POLL)
      .toMatch(
        /Caller: Joan Holloway[\s\S]*Patient: Margaret HOLLOWAY, born 14 Mar 1941, NHS number 9434765919/,
      );
    expect(await page.getByTestId('record-consultation').isVisible()).toBe(true);
    expect(await page.getByTestId('record-consultation').innerText()).toContain('Tension-type headache');
    // The PDF Chromium prints has the record in it (a real print, not only the stylesheet).
    const pdf = await page.pdf({ format: 'A4' });
    expect(pdf.length).toBeGreaterThan(10_000);
    await page.emulateMedia({ media: 'screen' });
    expect(await page.getByRole('button', { name: 'Print this summary' }).isVisible()).toBe(true);
    await page.context().close();
  });

  it('keeps notes typed and not saved through a reload and an idle sign-out; the held case is released', async () => {
    // The clinician's API session ends first: the browser is then their only place signed in.
    await clinician.call('POST', '/api/v1/auth/sign-out');
    const context = await staffContext(browser, server.url);
    const page = await context.newPage();
    // The page's clock is ours to move, for the idle timeout (the server's sessions use real time).
    await page.clock.install();
    await signInAsClinician(page);
    await page.goto(`/queue/${openCase}`);
    await page.getByRole('button', { name: 'Claim this case' }).click();
    // Typed before the screen has heard whether there is a draft: kept all the same, without another key.
    const releaseFirstRead = await holdDraftRead(page);
    await page.getByRole('button', { name: 'Start consultation' }).click();
    await page.getByLabel('History').fill('Worse than last time, woke her at 4am');
    await page.getByLabel('Pulse (beats per minute)').fill('92');
    await releaseFirstRead();
    await page.getByText(/Draft kept at/).waitFor(POLL);

    await page.reload();
    await expect
      .poll(() => page.getByLabel('History').inputValue(), POLL)
      .toBe('Worse than last time, woke her at 4am');
    expect(await page.getByLabel('Pulse (beats per minute)').inputValue()).toBe('92');
    await page
      .getByText(/Unsaved notes from .* brought back into History and Pulse \(beats per minute\):/)
      .waitFor(POLL);
    expect(await page.getByTestId('draft-differing').count()).toBe(0);

    // Nothing done for 30 minutes: the screen signs out, and the case goes back to the queue.
    await page.getByLabel('Plan').fill('Review by GP');
    // "Draft kept at" is already on screen from the first draft: wait for the server to hold this one.
    await expect
      .poll(
        () =>
          page.evaluate(
            async (url) => JSON.stringify(((await (await fetch(url)).json()) as { draft: unknown }).draft),
            `/api/v1/cases/${openCase}/consultation/draft`,
          ),
        POLL,
      )
      .toContain('Review by GP');
    await page.clock.fastForward('31:00');
    await page.getByText(/You were signed out because nothing was done for a while/).waitFor(POLL);
    const released = await adviser.call<{ status: string; record: { timeline: { what: string }[] } }>(
      'GET',
      `/api/v1/cases/${openCase}`,
    );
    expect(released.status).toBe('queued');
    expect(released.record.timeline.map((e) => e.what)).toContain(
      'Released back to the queue because Demo clinician signed out while holding it; they had typed notes that were not saved',
    );

    // Signed in again, the clinician takes the case back and finds what they typed.
    await signInAsClinician(page);
    await page.goto(`/queue/${openCase}`);
    await page.getByRole('button', { name: 'Claim this case' }).click();
    // A field typed before the draft arrives keeps what was typed; the draft fills the untouched ones.
    // The first read of the draft fails: nothing is kept over it until a read has answered.
    const firstRead = await failFirstDraftRead(page);
    await page.getByRole('button', { name: 'Start consultation' }).click();
    await page.getByLabel('Examination').fill('Pupils equal and reactive');
    await page.getByLabel('Pulse (beats per minute)').fill('88');
    firstRead.fail();
    await page.getByText(/Could not check for unsaved notes on this case: trying again/).waitFor(POLL);
    await expect
      .poll(() => page.getByLabel('History').inputValue(), POLL)
      .toBe('Worse than last time, woke her at 4am');
    expect(await page.getByLabel('Plan').inputValue()).toBe('Review by GP');
    expect(await page.getByLabel('Examination').inputValue()).toBe('Pupils equal and reactive');
    expect(await page.getByLabel('Pulse (beats per minute)').inputValue()).toBe('88');
    // The merged form is kept at once, and the screen still says which fields came from the draft,
    // and shows the draft's pulse, which differed from the one typed: not settled silently.
    await page.getByText(/Draft kept at/).waitFor(POLL);
    await page.getByText(/Unsaved notes from .* brought back into History and Plan:/).waitFor(POLL);
    expect(firstRead.sent.slice(0, 2)).toEqual(['GET 503', 'GET 200']);
    expect(firstRead.sent).toContain('PUT');
    expect(await page.getByText(/Could not check for unsaved notes/).count()).toBe(0);
    const differing = page.getByTestId('draft-differing');
    await differing.waitFor(POLL);
    expect(await differing.innerText()).toMatch(/What you typed is kept/);
    expect((await differing.getByRole('listitem').allInnerTexts()).map((t) => t.trim())).toEqual([
      'Pulse (beats per minute): 92',
    ]);
    // ... and at the field itself, as its description.
    const pulse = page.getByLabel('Pulse (beats per minute)');
    const describedBy = (await pulse.getAttribute('aria-describedby')) ?? '';
    expect(
      await page.evaluate(
        (ids) => ids.map((id) => document.getElementById(id)?.textContent ?? '').join(' '),
        describedBy.split(' ').filter(Boolean),
      ),
    ).toContain('Unsaved notes said: 92');
    expect(await page.getByText(/^Unsaved notes said:/).count()).toBe(1);
    // Saved, it is in the record and the draft is gone.
    await page.getByRole('button', { name: 'Save consultation' }).click();
    await page.getByText(/Consultation saved at/).waitFor(POLL);
    const draft = await page.evaluate(
      async (url) => ((await (await fetch(url)).json()) as { draft: unknown }).draft,
      `/api/v1/cases/${openCase}/consultation/draft`,
    );
    expect(draft).toBeNull();
    await context.close();
  });
});
