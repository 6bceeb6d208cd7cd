import type { TriageProtocol } from '@holdfast/core/triage/pack';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../server/src/triage/packs.ts';
import { answersTo } from '../../server/test/support/cases.ts';
import { ApiUser } from './support/api.ts';
import { describeViolations, launchChromium, seriousAxeViolations, staffContext } from './support/browser.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * NEWS2 in the browser (issue 11), against a real `holdfast start`: a score from one observation is
 * shown in the queue and on the case as partial ("1 of 7"), never as "NEWS2 0"; for a child the
 * consultation says NEWS2 is not used and a paediatric score is needed, and the case says so once
 * saved. Both screens pass axe.
 */

const POLL = { timeout: 15_000 };

describe('NEWS2 in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviser: ApiUser;
  let clinician: ApiUser;
  let siteId: string;
  let protocols: Map<string, TriageProtocol>;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    clinician = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    siteId = (await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites')).sites[0]!.siteId;
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** A call triaged over the API to a clinician call-back (queued), on a pathway for any age. */
  async function queuedCase(complaint: string): Promise<string> {
    const { caseId } = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
      siteId,
      caller: {
        name: 'Jo Caller',
        relationship: 'parent',
        callbackNumber: '0113 496 0111',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: complaint,
    });
    for (const [pathwayId, protocol] of protocols) {
      if (protocol.content.ageYears) continue;
      const answers = answersTo(protocol, (d) => d.kind === 'speak_to_primary_care');
      if (!answers) continue;
      await adviser.call('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId });
      let last: { status: string; disposition?: { dxCode: string } } = { status: 'question' };
      for (const a of answers) last = await adviser.call('POST', `/api/v1/cases/${caseId}/triage/answers`, a);
      await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
        dxCode: last.disposition!.dxCode,
      });
      return caseId;
    }
    throw new Error('no pathway for any age reaches a call-back');
  }

  async function clinicianPage(): Promise<Page> {
    // bypassCSP: axe-core is injected as an inline script.
    const context = await staffContext(browser, server.url, { bypassCSP: true });
    await useSessionCookie(context, server.url, clinician.sessionToken);
    return context.newPage();
  }

  async function expectNoAxeViolations(page: Page, screen: string): Promise<void> {
    const found = await seriousAxeViolations(page);
    expect(found.length === 0 ? '' : describeViolations(screen, found)).toBe('');
  }

  it('a one-observation score shows as partial (1 of 7) in the queue and on the case, never as "NEWS2 0"', async () => {
    const caseId = await queuedCase('Feels hot: only a temperature taken');
    await clinician.call('POST', `/api/v1/cases/${caseId}/claim`);
    await clinician.call('POST', `/api/v1/cases/${caseId}/consultation`);
    await clinician.call('POST', `/api/v1/cases/${caseId}/consultation/record`, {
      observations: { temperature: 37.0 },
    });

    const page = await clinicianPage();
    await page.goto('/queue');
    const row = page.locator(`[data-case-id="${caseId}"]`);
    await row.waitFor(POLL);
    await expect
      .poll(() => row.getByTestId('queue-news2').textContent(), POLL)
      .toBe('NEWS2 partial: 1 of 7 recorded');
    expect(await row.textContent()).not.toMatch(/NEWS2 0/);
    await expectNoAxeViolations(page, 'queue with a partial NEWS2');

    await page.goto(`/queue/${caseId}`);
    const badge = page.getByTestId('case-news2');
    await expect.poll(() => badge.textContent(), POLL).toBe('NEWS2 partial: 1 of 7 recorded');
    // The consultation form scores as typed: one value is partial, with no total and unknown risk.
    await page.getByLabel(/^Temperature/).fill('37.0');
    const score = page.getByTestId('news2');
    await expect
      .poll(() => score.innerText(), POLL)
      .toMatch(/NEWS2 partial: 1 of 7 parameters, no total \(risk not known\)/);
    expect(await score.innerText()).toMatch(/do not read it as low/);
    expect(await score.innerText()).not.toMatch(/NEWS2 0|ward|registered nurse/i);
    await expectNoAxeViolations(page, 'case with a partial NEWS2');
    await page.context().close();
  });

  it('for a child, the consultation says NEWS2 is not used and a paediatric score is needed', async () => {
    const { patientId } = await adviser.call<{ patientId: string }>('POST', '/api/v1/patients', {
      homeSiteId: siteId,
      record: {
        givenName: 'Ellie',
        familyName: 'Newsworth',
        dateOfBirth: '2017-06-15',
        sex: 'female',
        specialNotes: [],
      },
    });
    const caseId = await queuedCase('Child with a fever');
    await adviser.call('POST', `/api/v1/cases/${caseId}/patient`, { patientId });

    const page = await clinicianPage();
    await page.goto(`/queue/${caseId}`);
    await page.getByRole('button', { name: 'Claim this case' }).click();
    await page.getByRole('button', { name: 'Start consultation' }).click();
    await page.getByLabel(/^Respiration rate/).fill('30');
    await page.getByLabel(/^Pulse/).fill('150');
    const score = page.getByTestId('news2');
    await expect.poll(() => score.innerText(), POLL).toMatch(/NEWS2 not used for this patient/);
    expect(await score.innerText()).toMatch(
      /NEWS2 is not used for patients under 16: a paediatric early warning score \(PEWS\) is needed/,
    );
    await expectNoAxeViolations(page, 'consultation for a child');

    await page.getByRole('button', { name: 'Save consultation' }).click();
    await page.getByText(/Consultation saved at .*; NEWS2 not computed/).waitFor(POLL);
    await expect
      .poll(() => page.getByTestId('case-news2').textContent(), POLL)
      .toBe('NEWS2 not used: under 16');
    await expect.poll(() => page.getByTestId('news2-not-used').innerText(), POLL).toMatch(/paediatric/);
    await page.context().close();
  });
});
