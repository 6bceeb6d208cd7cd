import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { caseReference } from '@holdfast/core';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiUser } from './support/api.ts';
import {
  addVirtualAuthenticator,
  describeViolations,
  launchChromium,
  Screenshots,
  seriousAxeViolations,
  staffContext,
} from './support/browser.ts';
import { PATIENTS, registerPatients } from './support/fixtures.ts';
import { enterPassword, useSessionCookie } from './support/flows.ts';
import { DEMO, startHoldfast, type RunningHoldfast } from './support/server.ts';

/**
 * The 999 handover in the browser (issue 10), against a real `holdfast start` and a real receiver on
 * loopback standing in for the ambulance service: an ambulance disposition is only proposed until
 * the adviser confirms it (nothing is sent before); the accepted request shows the ambulance
 * service's incident reference; with the receiver stopped, "Phone the ambulance service now" appears
 * once its window (ACCEPT_WITHIN_S here; 999 uses 30 s) has passed, the phone handover is recorded,
 * and the shift manager's Messages screen lists the overdue request. Screenshots go to
 * .test-results/screenshots/handover/.
 */

const POLL = { timeout: 15_000 };
/**
 * The ambulance service's window to accept. 999's is 30 s; a shorter one shows the same behaviour
 * sooner, and the file waits it out twice. What must happen inside it took well under 3 s when
 * measured (the "waiting" panel 0.2 s after Confirm; with the node stopped, "not answering" 2.4 s
 * after), and the file runs alone (scripts/test.mjs, SERIAL), so 8 s leaves room for a slow machine.
 */
const ACCEPT_WITHIN_S = 8;
const AMBULANCE_PHONE = '01632 960999';

/**
 * The ambulance service: answers every request with a FHIR response message accepting it, with an
 * incident reference. Counts what it received, so the test can show nothing went before confirmation.
 */
class AmbulanceReceiver {
  received = 0;
  private server: Server | null = null;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      req.on('end', () => {
        this.received++;
        const key = String(req.headers['idempotency-key'] ?? '');
        res.writeHead(200, { 'content-type': 'application/fhir+json' });
        res.end(
          JSON.stringify({
            resourceType: 'Bundle',
            type: 'message',
            entry: [
              {
                resource: {
                  resourceType: 'MessageHeader',
                  response: { identifier: key, code: 'ok' },
                  eventCoding: { system: 'https://example.org', code: 'ack' },
                  source: { endpoint: 'https://ambulance.example' },
                },
              },
              { resource: { resourceType: 'Encounter', identifier: [{ value: 'INC-4711' }] } },
            ],
          }),
        );
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** Stops answering: connections are then refused, as with an ambulance service that is down. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('the 999 handover in the browser', () => {
  let server: RunningHoldfast;
  let browser: Browser;
  const receiver = new AmbulanceReceiver();
  let adviserUser: ApiUser;
  let managerUser: ApiUser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([startHoldfast(), launchChromium(), receiver.start()]);
    adviserUser = await ApiUser.signIn(server.url, DEMO.adviser, server.demoPassword);
    managerUser = await ApiUser.signIn(server.url, DEMO.shiftManager, server.demoPassword);
    const sites = await adviserUser.call<{ sites: { siteId: string }[] }>('GET', '/api/v1/sites');
    await registerPatients(adviserUser, sites.sites[0]!.siteId);
  }, 300_000);
  afterAll(async () => {
    await receiver.stop();
    await browser?.close();
    await server?.stop();
  });

  /**
   * The provider admin (passkey only) signs in in a browser and sets up the ambulance service as a
   * receiving system, through the API with the browser's session (there is no endpoints screen yet).
   */
  async function configureAmbulanceService(): Promise<void> {
    const context = await staffContext(browser, server.url);
    const page = await context.newPage();
    await addVirtualAuthenticator(page);
    await enterPassword(page, DEMO.admin, server.demoPassword);
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    const answer = await page.evaluate(
      async ({ url, phone, acceptWithinSeconds }) => {
        const session = (await (await fetch('/api/v1/auth/session')).json()) as { csrfToken: string };
        const res = await fetch('/api/v1/admin/endpoints', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-csrf-token': session.csrfToken },
          body: JSON.stringify({
            endpointId: 'north-ambulance',
            name: 'North Ambulance Service',
            kinds: ['ambulance_request'],
            odsCode: 'RX6',
            transport: { type: 'http', url },
            phone,
            acceptWithinSeconds,
          }),
        });
        return { status: res.status, body: await res.text() };
      },
      {
        url: `http://127.0.0.1:${receiver.port}/fhir/$process-message`,
        phone: AMBULANCE_PHONE,
        acceptWithinSeconds: ACCEPT_WITHIN_S,
      },
    );
    expect(answer.status, answer.body).toBe(200);
    await context.close();
  }

  /**
   * A call for David Okonjo triaged to an ambulance with the number keys: "Yes" (1) to the first
   * life-threatening question (not breathing) reaches an ambulance disposition at once.
   */
  async function triageToAmbulance(page: Page, problem: string): Promise<string> {
    await page.goto('/calls/new');
    await page.getByRole('heading', { level: 1, name: 'New call' }).waitFor();
    await page.getByLabel("Caller's name").fill('Grace Okonjo');
    await page.getByLabel('Caller is').selectOption({ label: 'Relative' });
    await page.getByLabel('Call-back number').fill('0113 496 0321');
    await page.getByRole('checkbox', { name: /back to the caller/ }).check();
    await page.getByLabel('Where is the patient now?').fill('At home, 3 Mill Lane');
    await page.getByLabel('What is the problem?').fill(problem);
    await page.getByRole('button', { name: 'Open case' }).click();
    await page.getByRole('heading', { level: 1, name: 'Call in progress' }).waitFor();
    const caseId = /\/cases\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    await page.getByRole('textbox', { name: 'NHS number' }).fill(PATIENTS.david.nhsNumber);
    await page.getByRole('button', { name: 'Search by NHS number' }).click();
    await page.getByRole('button', { name: /Select David Okonjo/ }).click();
    await page.getByLabel('Pathway').selectOption({ label: 'Headache (sample, not clinically validated)' });
    await page.getByRole('button', { name: 'Start triage' }).click();
    await page
      .locator('#triage-question')
      .filter({ hasText: /not breathing/ })
      .waitFor();
    await page.keyboard.press('1');
    await page.locator('#disposition-heading').waitFor();
    return caseId;
  }

  it('an ambulance disposition is confirmed, accepted with the incident reference, and phoned in when the service does not answer', async () => {
    const shots = new Screenshots('handover');
    const violations: string[] = [];
    const scan = async (page: Page, screen: string) => {
      const found = await seriousAxeViolations(page);
      if (found.length > 0) violations.push(describeViolations(screen, found));
    };
    // A call-centre monitor, opened while the admin sets up the ambulance service in another window.
    const openAdviser = async () => {
      const context = await staffContext(browser, server.url, {
        bypassCSP: true,
        viewport: { width: 1366, height: 768 },
      });
      await useSessionCookie(context, server.url, adviserUser.sessionToken);
      return { context, page: await context.newPage() };
    };
    const [, { context: adviserContext, page: adviser }] = await Promise.all([
      configureAmbulanceService(),
      openAdviser(),
    ]);

    // --- First call: proposed, nothing sent; confirmed; accepted with the incident reference.
    const firstCase = await triageToAmbulance(adviser, 'Collapsed in the kitchen and is not breathing');
    await adviser.getByText('Confirm before anything is done').waitFor();
    const confirmButton = adviser.getByRole('button', { name: /^Confirm: request an ambulance/ });
    await confirmButton.waitFor();
    // Proposed only: the ambulance service has received nothing (a second for the worker to act, if
    // it would; the screenshot is taken meanwhile).
    const aSecondAndAHalf = new Promise((r) => setTimeout(r, 1500));
    await shots.take(adviser, 'ambulance-proposed');
    await aSecondAndAHalf;
    expect(receiver.received).toBe(0);
    await confirmButton.click();
    const panel = adviser.getByTestId('ambulance-handover');
    await panel.filter({ hasText: 'The ambulance service accepted the request' }).waitFor();
    expect(await panel.innerText()).toMatch(/incident reference\s+INC-4711/);
    expect(receiver.received).toBe(1);
    // The case lists what it sent and where each message stands; the adviser may now move on.
    const caseMessages = adviser.getByTestId('case-messages');
    await caseMessages
      .filter({ hasText: /Ambulance request, category 1.*Accepted \(reference INC-4711\)/ })
      .waitFor();
    await adviser.getByRole('button', { name: 'Take the next call' }).waitFor();
    await shots.take(adviser, 'ambulance-accepted');
    await scan(adviser, 'disposition: ambulance accepted');

    // --- The ambulance service goes down; a second call is triaged to an ambulance and confirmed.
    await receiver.stop();
    const secondCase = await triageToAmbulance(adviser, 'Found on the floor, not breathing');
    expect(secondCase).not.toBe(firstCase);
    await adviser.getByRole('button', { name: /^Confirm: request an ambulance/ }).click();
    await panel
      .filter({ hasText: 'Request not sent yet: waiting for the ambulance service to accept it' })
      .waitFor();
    const confirmedAt = Date.now();
    await shots.take(adviser, 'ambulance-waiting');
    // Meanwhile the shift manager's window opens (the app loaded once, so that reading the dashboard
    // after the deadline is a reload, not a first load).
    const openManager = (async () => {
      const context = await staffContext(browser, server.url, {
        bypassCSP: true,
        viewport: { width: 1366, height: 768 },
      });
      await useSessionCookie(context, server.url, managerUser.sessionToken);
      const page = await context.newPage();
      await page.goto('/dashboard');
      await page.getByRole('heading', { level: 1, name: 'Shift dashboard' }).waitFor();
      return { context, page };
    })().then(
      (opened) => ({ opened, error: null }),
      (error: unknown) => ({ opened: null, error }),
    );
    // Not accepted within the endpoint's window: the adviser is told to phone, with the number. Not
    // before the deadline (the "waiting" panel, when `confirmedAt` is read, may show up to 3 s after
    // the request was queued), nor long after it.
    await panel.filter({ hasText: 'Phone the ambulance service now' }).waitFor({ timeout: 30_000 });
    const waited = (Date.now() - confirmedAt) / 1000;
    expect(waited).toBeGreaterThan(ACCEPT_WITHIN_S - 3);
    expect(waited).toBeLessThan(ACCEPT_WITHIN_S + 10);
    expect(await adviser.getByTestId('ambulance-phone').innerText()).toBe(AMBULANCE_PHONE);
    // Until the ambulance service has the patient the adviser is kept with the caller.
    await adviser.getByTestId('stay-with-caller').waitFor();
    expect(await adviser.getByRole('button', { name: 'Take the next call' }).count()).toBe(0);
    await shots.take(adviser, 'ambulance-phone-now');
    await scan(adviser, 'disposition: phone the ambulance service now');

    // --- The shift manager sees the overdue request on the Messages screen (and on the dashboard).
    const managerWindow = await openManager;
    if (!managerWindow.opened) throw managerWindow.error;
    const { context: managerContext, page: manager } = managerWindow.opened;
    await manager.goto('/dashboard');
    await manager.getByRole('heading', { level: 1, name: 'Shift dashboard' }).waitFor();
    await expect
      .poll(() => manager.getByTestId('stat-messages-needing-attention').innerText(), POLL)
      .toMatch(/\b1$/);
    await manager.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Messages' }).click();
    await manager.getByRole('heading', { level: 1, name: 'Messages to other systems' }).waitFor();
    const attention = manager.getByTestId('messages-attention');
    const overdueRow = attention.getByRole('row').filter({ hasText: caseReference(secondCase) });
    await overdueRow.waitFor();
    expect(await overdueRow.innerText()).toMatch(/Ambulance request, category 1/);
    expect(await overdueRow.innerText()).toMatch(/North Ambulance Service/);
    expect(await overdueRow.innerText()).toMatch(/overdue/i);
    // The accepted one is among the recent messages, not those needing attention.
    const recent = manager.getByTestId('messages-recent');
    await recent
      .getByRole('row')
      .filter({ hasText: caseReference(firstCase) })
      .waitFor();
    expect(await recent.innerText()).toMatch(/Accepted/);
    expect(await recent.innerText()).toMatch(/INC-4711/);
    await shots.take(manager, 'messages-overdue');
    await scan(manager, 'messages');

    // Cancel asks for a reason: one the server refuses is shown at the field, and nothing changes.
    await overdueRow.getByRole('button', { name: /^Cancel:/ }).click();
    const dialog = manager.getByRole('dialog', { name: 'Stop sending this message' });
    await dialog.getByLabel('Reason').fill('no');
    await dialog.getByRole('button', { name: 'Cancel the message' }).click();
    await expect.poll(() => dialog.getByLabel('Reason').getAttribute('aria-invalid'), POLL).toBe('true');
    expect(await dialog.innerText()).toMatch(/at least 3 characters/);
    await shots.take(manager, 'messages-cancel-reason-refused');
    await scan(manager, 'messages: cancel dialog');
    await dialog.getByRole('button', { name: 'Back' }).click();
    await dialog.waitFor({ state: 'detached' });

    // --- The adviser phones it in and records the handover; the electronic request is stopped.
    await adviser.getByLabel('Who took the call').fill('Call-taker 41');
    await adviser.getByLabel('Incident reference (if given)').fill('INC-9001');
    await adviser.getByRole('button', { name: 'Record the phone handover' }).click();
    await panel.filter({ hasText: 'Handed over to the ambulance service by phone' }).waitFor();
    expect(await panel.innerText()).toMatch(/Spoke to Call-taker 41/);
    await shots.take(adviser, 'ambulance-phoned');
    await scan(adviser, 'disposition: handed over by phone');

    // The Messages screen follows without a reload: the request is cancelled, with the reason.
    await attention
      .getByRole('row')
      .filter({ hasText: caseReference(secondCase) })
      .waitFor({
        state: 'detached',
        timeout: 15_000,
      });
    // The two lists are read separately, so the row can reach "recent" a refresh before its new state
    // does: read until it says Cancelled.
    const cancelledRow = recent.getByRole('row').filter({ hasText: caseReference(secondCase) });
    await cancelledRow.waitFor();
    await expect.poll(() => cancelledRow.innerText(), POLL).toMatch(/Cancelled/);
    expect(await cancelledRow.innerText()).toMatch(/handed over to the ambulance service by phone/);
    await shots.take(manager, 'messages-after-phone-handover');

    // --- A third request is queued, then the node itself stops: the screens keep no promise.
    const thirdCase = await triageToAmbulance(adviser, 'Collapsed in the garden, not breathing');
    expect(thirdCase).not.toBe(secondCase);
    await adviser.getByRole('button', { name: /^Confirm: request an ambulance/ }).click();
    await panel
      .filter({ hasText: 'Request not sent yet: waiting for the ambulance service to accept it' })
      .waitFor();
    await server.stop();
    // The Messages screen says it cannot read (watched from now, while the adviser's screen runs to
    // its deadline, and for up to a minute).
    const cannotRead = manager
      .getByText(/The messages could not be read/)
      .waitFor({ timeout: 60_000 })
      .then(
        () => null,
        (error: unknown) => error,
      );
    // Still "not sent yet" (what the server last said), then "phone now" at the deadline, the
    // server being silent; never "accepted" or "sent".
    // (The "waiting" panel's own words: "phone now" says the server is not answering too, so this
    // shows that the silence was noticed before the deadline.)
    await panel
      .filter({ hasText: 'The server is not answering: this is what it last said' })
      .waitFor({ timeout: 15_000 });
    await panel.filter({ hasText: 'Phone the ambulance service now' }).waitFor({ timeout: 30_000 });
    expect(await panel.innerText()).not.toMatch(/The ambulance service accepted the request|Request sent:/);
    await shots.take(adviser, 'ambulance-phone-now-server-stopped');
    // ... and never that nothing needs attention.
    const unread = await cannotRead;
    if (unread) throw unread;
    expect(await manager.getByTestId('messages-attention-empty').count()).toBe(0);
    await shots.take(manager, 'messages-server-stopped');

    expect(violations, violations.join('\n')).toEqual([]);
    await managerContext.close();
    await adviserContext.close();
  }, 300_000);
});
