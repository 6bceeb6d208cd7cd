import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../server/src/triage/packs.ts';
import { answersTo } from '../../server/test/support/cases.ts';
import { ApiUser } from './support/api.ts';
import { launchChromium, Screenshots, staffContext } from './support/browser.ts';
import { useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * The autumn clock change in the browser: a call received at 01:45 BST on Sunday 25 October 2026 with
 * a one-hour call-back is due at 01:45 GMT, an hour later. The CAS queue must tell the two apart
 * ("received … 01:45 BST · deadline … 01:45 GMT"), in a browser whose own zone is UTC.
 */
describe('GMT and BST on the CAS queue in Chromium', () => {
  let server: RunningHoldfast;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium()]);
  }, 300_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  it('shows the call at 01:45 BST and its deadline at 01:45 GMT', async () => {
    const adviser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    const { sites } = await adviser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    // A pathway for any age that ends at a one-hour call-back (speak to primary care within 1 hour).
    const { protocols } = await requireProtocolPack(SAMPLE_PACK_DIR);
    let plan: { pathwayId: string; answers: NonNullable<ReturnType<typeof answersTo>> } | null = null;
    for (const [pathwayId, protocol] of protocols) {
      if (protocol.content.ageYears !== null) continue;
      const answers = answersTo(
        protocol,
        (d) => d.kind === 'speak_to_primary_care' && d.timeframeMinutes === 60,
      );
      if (answers) {
        plan = { pathwayId, answers };
        break;
      }
    }
    if (!plan) throw new Error('no shipped pathway ends at a one-hour call-back');
    const { caseId } = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
      siteId: sites[0]!.siteId,
      receivedAt: '2026-10-25T00:45:00Z', // 01:45 BST
      caller: {
        name: 'Ada Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0321',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Clock change call',
    });
    await adviser.call('POST', `/api/v1/cases/${caseId}/triage`, { pathwayId: plan.pathwayId });
    let last: { status: string; disposition?: { dxCode: string } } = { status: '' };
    for (const a of plan.answers)
      last = await adviser.call('POST', `/api/v1/cases/${caseId}/triage/answers`, a);
    expect(last.status).toBe('disposition');
    await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
      dxCode: last.disposition!.dxCode,
    });

    const clinician = await ApiUser.signIn(server.url, DEMO.clinician, server.demoPassword);
    const context = await staffContext(browser, server.url);
    await useSessionCookie(context, server.url, clinician.sessionToken);
    const page = await context.newPage();
    await page.goto('/queue');
    const row = page.locator(`[data-case-id="${caseId}"]`);
    await row.waitFor();
    // The dense row keeps the times in its deadline cell (read out, and shown on hover).
    const text = ((await row.getByTestId('queue-times').textContent()) ?? '').replace(/\s+/g, ' ');
    expect(await row.locator('[data-col="deadline"]').getAttribute('title')).toContain(
      'deadline Sun 25 Oct 01:45 GMT',
    );
    expect(text).toContain('received Sun 25 Oct 01:45 BST · deadline Sun 25 Oct 01:45 GMT');
    await new Screenshots('time-zones').take(page, 'queue-clock-change');
    await context.close();
  });
});
