import { walk, type WalkResult } from '@holdfast/core/triage/engine';
import type { TriageProtocol } from '@holdfast/core/triage/pack';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../server/src/triage/packs.ts';
import { ApiUser } from './support/api.ts';
import { describeViolations, launchChromium, seriousAxeViolations, staffContext } from './support/browser.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * Editing a patient in Chromium against a real `holdfast start` (issue 11, patient identity): the
 * address and interpreter need changed from the patient screen, with the change in the record's
 * history (who and when); an allergy added; a safeguarding concern raised from a case, seen on the
 * case's timeline and on the patient screen.
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

describe('editing a patient in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  let adviser: ApiUser;
  let clinician: ApiUser;
  let patientId: string;
  let caseId: string;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
    adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    clinician = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    const siteId = (await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites')).sites[0]!
      .siteId;
    ({ patientId } = await adviser.call<{ patientId: string }>('POST', '/api/v1/patients', {
      homeSiteId: siteId,
      record: {
        givenName: 'Wendy',
        familyName: 'Edits',
        dateOfBirth: '1960-06-01',
        sex: 'female',
        address: '3 Old Lane, Northshire',
        postcode: 'NS1 2AB',
        specialNotes: [],
      },
    }));
    ({ caseId } = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
      siteId,
      caller: {
        name: 'Wendy Edits',
        relationship: 'self',
        callbackNumber: '0113 496 0456',
        callbackNumberReadBack: true,
      },
      patientId,
      location: 'At home',
      presentingComplaint: 'Headache after a fall',
    }));
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
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  async function clinicianPage(): Promise<Page> {
    // bypassCSP only lets axe-core be injected for the accessibility checks.
    const context = await staffContext(browser, server.url, { bypassCSP: true });
    await useSessionCookie(context, server.url, clinician.sessionToken);
    return context.newPage();
  }

  it('changes the address and interpreter need, shows who changed them and when, and adds an allergy', async () => {
    const page = await clinicianPage();
    await page.goto(`/patients/${patientId}`);
    await page.getByRole('heading', { level: 1, name: 'Patient: Wendy EDITS' }).waitFor(POLL);
    await page.getByLabel('Address', { exact: true }).fill('5 New Lane, Northshire');
    await page.getByLabel('Needs an interpreter').check();
    await page.getByLabel('Interpreter language').fill('Urdu');
    await page.getByRole('button', { name: 'Save details' }).click();
    await page.getByText('Saved: address, interpreter need.').waitFor(POLL);
    const details = page.getByTestId('patient-details');
    await expect.poll(() => details.innerText(), POLL).toContain('Address: 5 New Lane, Northshire');
    expect(await details.innerText()).toContain('Interpreter: needed (Urdu)');

    const { history } = await clinician.call<{ history: { by: string; type: string }[] }>(
      'GET',
      `/api/v1/patients/${patientId}/history`,
    );
    const by = history.find((e) => e.type === 'details_changed')!.by;
    const list = page.getByTestId('patient-history');
    await expect
      .poll(() => list.innerText(), POLL)
      .toMatch(new RegExp(`\\d{1,2}:\\d{2}[^·\\n]* · ${by} · Changed: address, interpreter need`));

    await page.getByLabel('Allergic to').fill('Penicillin');
    await page.getByLabel('Reaction (if known)').fill('Hives');
    await page.getByRole('button', { name: 'Add allergy' }).click();
    await expect
      .poll(() => page.getByTestId('patient-allergies').innerText(), POLL)
      .toContain('Penicillin (reaction: Hives)');
    await expect.poll(() => list.innerText(), POLL).toContain('Changed: allergies');
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('patient screen with editing', violations)).toEqual([]);
    await page.context().close();
  });

  it('raises a safeguarding concern from a case, seen on the case and on the patient screen', async () => {
    const page = await clinicianPage();
    await page.goto(`/queue/${caseId}`);
    await page.getByRole('heading', { level: 1, name: /Headache after a fall/ }).waitFor(POLL);
    await page.getByLabel('The concern').fill('Bruising she could not explain; partner answered for her');
    await page.getByRole('button', { name: 'Raise the concern' }).click();
    await page.getByText("Safeguarding concern recorded on the case and the patient's record.").waitFor(POLL);
    await expect
      .poll(() => page.getByTestId('record-timeline').innerText(), POLL)
      .toContain('Safeguarding concern raised');
    const violations = await seriousAxeViolations(page);
    expect(violations, describeViolations('case with a safeguarding concern', violations)).toEqual([]);

    await page.goto(`/patients/${patientId}`);
    await page.getByRole('heading', { level: 1, name: 'Patient: Wendy EDITS' }).waitFor(POLL);
    await page
      .getByText('Bruising she could not explain; partner answered for her', { exact: false })
      .waitFor(POLL);
    await expect
      .poll(() => page.getByTestId('patient-history').innerText(), POLL)
      .toContain('Special note added (safeguarding)');
    await page.context().close();
  });
});
