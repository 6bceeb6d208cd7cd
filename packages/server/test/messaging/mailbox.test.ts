import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { FixedClock, type Endpoint, type MessageStatus } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { DeliveryWorker } from '../../src/messaging/delivery.ts';
import { messagingDb, statusOf } from '../../src/messaging/projection.ts';
import { MessagingService } from '../../src/messaging/service.ts';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { MailboxTransport } from '../../src/messaging/transport-mailbox.ts';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { MailboxPickup } from '../../src/receiver/mailbox.ts';
import { FhirReceiver } from '../../src/receiver/receiver.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { messageBundle } from '../support/message-bundle.ts';
import { freePort } from '../support/postgres.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

/**
 * The mailbox transport in the MESH manner, end to end: the delivery worker (driven pass by pass
 * with an injected clock) places messages in a mailbox folder, a real `holdfast receiver --mailbox`
 * process (the @medplum validator and fhir-router repository) collects and judges them and answers
 * into in/, and the worker records the answers in the ledger.
 */

const TENANT = 'northshire';
const MAILBOX = 'north-ambulance';
const AWAIT_MS = 600_000;
const QUIET = 'quiet-box';

// Generous: the receiver is a process of its own, polling its inbox, on a loaded two-core machine.
async function waitFor(what: string, condition: () => boolean | Promise<boolean>, ms = 90_000) {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const ctlFiles = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((n) => n.endsWith('.ctl')) : []);

describe.each(STORE_KINDS)('the mailbox transport on %s', (kind) => {
  let node: HoldfastNode;
  let cleanup: () => Promise<void>;
  const clock = new FixedClock(Date.UTC(2026, 11, 4, 12, 0, 0));
  const root = mkdtempSync(join(tmpdir(), 'holdfast-mailbox-'));
  const box = join(root, MAILBOX);
  const out = join(box, 'out');
  const inbox = join(box, 'in');
  const receiverStore = join(root, 'ambulance.ndjson');
  const mailbox = new MailboxTransport({ root, awaitAcknowledgementMs: AWAIT_MS });
  const warnings: { fields: Record<string, unknown>; message: string }[] = [];
  let messaging: MessagingService;
  let worker: DeliveryWorker;
  let receiver: ChildProcess | null = null;
  let receiverUrl = '';

  beforeAll(async () => {
    const fresh = await freshStore(kind);
    cleanup = fresh.cleanup;
    node = await initNode(fresh.config, { node: 'site-a', tenant: TENANT, role: 'site' }, { clock });
    messaging = new MessagingService(node.store, node.ledger, clock);
    const endpoint: Endpoint = {
      endpointId: 'ambulance',
      name: 'North Ambulance Service',
      kinds: ['ambulance_request'],
      odsCode: 'RX9',
      transport: { type: 'mailbox', mailbox: MAILBOX },
      phone: '0300 000 0000',
      acceptWithinSeconds: 30,
    };
    await messaging.setEndpoint(TENANT, 'user:test', endpoint);
    // A mailbox nobody collects from: the test writes its answers itself.
    await messaging.setEndpoint(TENANT, 'user:test', {
      ...endpoint,
      endpointId: 'quiet',
      name: 'Quiet Ambulance Service',
      transport: { type: 'mailbox', mailbox: QUIET },
    });
    worker = new DeliveryWorker(
      {
        store: node.store,
        ledger: node.ledger,
        clock,
        tenant: TENANT,
        logger: { warn: (fields, message) => warnings.push({ fields, message }) },
      },
      { http: new HttpTransport({ timeoutMs: 2_000 }), mailbox },
      { retryCapMs: 8_000, takeOverAfterMs: 60_000, leaseMs: 20_000 },
    );
  });

  afterAll(async () => {
    receiver?.kill('SIGKILL');
    await worker.stop();
    await node.close();
    await cleanup();
    rmSync(root, { recursive: true, force: true });
  });

  /** `holdfast receiver --mailbox <root>/<mailbox>` as its own process. */
  async function startReceiver(): Promise<void> {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      holdfastArgs(
        'receiver',
        '--port',
        String(port),
        '--kind',
        'ambulance',
        '--store',
        receiverStore,
        '--mailbox',
        box,
      ),
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    receiver = child;
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    receiverUrl = `http://127.0.0.1:${port}`;
    await waitFor('the receiver to start', async () => {
      if (child.exitCode !== null) throw new Error(`receiver exited: ${output}`);
      try {
        return (await fetch(`${receiverUrl}/health`)).ok && output.includes('collecting from mailbox');
      } catch {
        return false;
      }
    });
  }

  async function held(): Promise<{
    count: number;
    messages: { id: string; reference: string | null; posts: number }[];
  }> {
    return (await (await fetch(`${receiverUrl}/received`)).json()) as {
      count: number;
      messages: { id: string; reference: string | null; posts: number }[];
    };
  }

  async function queue(endpointId = 'ambulance'): Promise<string> {
    const messageId = randomUUID();
    await messaging.queue(TENANT, 'user:test', {
      messageId,
      kind: 'ambulance_request',
      endpointId,
      caseId: randomUUID(),
      siteId: null,
      bundle: messageBundle(messageId),
      summary: 'Ambulance request, category 2',
      failAfterMs: 3_600_000,
    });
    return messageId;
  }

  async function status(messageId: string): Promise<MessageStatus> {
    const row = await messagingDb(node.store.db)
      .selectFrom('messages')
      .select('status')
      .where('tenant', '=', TENANT)
      .where('message_id', '=', messageId)
      .executeTakeFirstOrThrow();
    return statusOf(row);
  }

  async function facts(messageId: string): Promise<{ type: string; payload: Record<string, unknown> }[]> {
    const rows = await node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'payload'])
      .where('tenant', '=', TENANT)
      .where('subject', '=', `message:${messageId}`)
      .orderBy('seq')
      .execute();
    return rows.map((r) => ({ type: r.type, payload: JSON.parse(r.payload) as Record<string, unknown> }));
  }

  /** The receiver has collected the message and both its answers are in in/. */
  const answered = (id: string) => () =>
    !existsSync(join(out, `${id}.ctl`)) &&
    existsSync(join(inbox, `${id}.report.ctl`)) &&
    existsSync(join(inbox, `${id}.response.ctl`));

  it('places the message as .dat then .ctl with the right checksum; the receiver process takes it; the node records delivered, then accepted with the receiver’s reference', async () => {
    const id = await queue();
    expect(await worker.runOnce()).toBe(1);
    const data = readFileSync(join(out, `${id}.dat`), 'utf8');
    expect(JSON.parse(data)).toEqual(messageBundle(id));
    expect(JSON.parse(readFileSync(join(out, `${id}.ctl`), 'utf8'))).toEqual({
      version: 1,
      messageType: 'data',
      localId: id,
      from: 'northshire/site-a',
      to: MAILBOX,
      workflowId: 'HOLDFAST_AMBULANCE_REQUEST',
      dataFile: `${id}.dat`,
      size: Buffer.byteLength(data),
      sha256: sha256(data),
      createdAt: '2026-12-04T12:00:00.000Z',
    });
    // Placed, not delivered: the ledger says sent and waits for the report.
    let s = await status(id);
    expect(s.state).toBe('sent');
    expect(s.deliveredAtMs).toBeNull();
    expect(s.nextAttemptAtMs).toBe(clock.nowMs() + AWAIT_MS);
    expect((await facts(id)).map((f) => f.type)).toEqual([
      'message.queued',
      'message.leased',
      'message.sent',
    ]);
    expect((await facts(id))[2]!.payload).toMatchObject({ note: `placed in mailbox ${MAILBOX}` });
    // Not placed again while the acknowledgement is awaited.
    clock.advance(5_000);
    expect(await worker.runOnce()).toBe(0);

    await startReceiver();
    await waitFor('the receiver to answer', answered(id));
    expect(JSON.parse(readFileSync(join(inbox, `${id}.report.ctl`), 'utf8'))).toMatchObject({
      messageType: 'report',
      localId: id,
      status: 'success',
    });
    // What it took went to its sent/ folder.
    expect(readdirSync(join(box, 'sent')).sort()).toEqual([`${id}.ctl`, `${id}.dat`]);

    clock.advance(1_000);
    expect(await worker.runOnce()).toBe(0);
    const recorded = await facts(id);
    expect(recorded.map((f) => f.type)).toEqual([
      'message.queued',
      'message.leased',
      'message.sent',
      'message.delivered',
      'message.accepted',
    ]);
    expect(recorded[3]!.payload).toMatchObject({
      node: 'site-a',
      acknowledgement: `mailbox ${MAILBOX}: delivery report`,
    });
    expect(recorded[4]!.payload).toMatchObject({ reference: 'INC-000001' });
    s = await status(id);
    expect(s.state).toBe('accepted');
    expect(s.reference).toBe('INC-000001');
    // Read once and moved out of in/.
    expect(ctlFiles(inbox)).toEqual([]);
    expect(readdirSync(join(inbox, 'done')).sort()).toEqual([
      `${id}.report.ctl`,
      `${id}.response.ctl`,
      `${id}.response.dat`,
    ]);
    expect(worker.mailboxCounts).toEqual({ recorded: 2, alreadyRecorded: 0, unmatched: 0, bad: 0 });
    expect((await held()).messages).toEqual([{ id, n: 1, code: 'ok', reference: 'INC-000001', posts: 1 }]);
  });

  it('a message placed again after a crash (placed, facts lost, placed again) is held once by the receiver and each fact is recorded once', async () => {
    const id = await queue();
    const { bundle } = await messagingDb(node.store.db)
      .selectFrom('messages')
      .select('bundle')
      .where('tenant', '=', TENANT)
      .where('message_id', '=', id)
      .executeTakeFirstOrThrow();
    // The pass that placed it was killed before it recorded anything: the files are there, the
    // ledger knows only that the message is queued.
    expect(
      await mailbox.place(
        MAILBOX,
        { messageId: id, kind: 'ambulance_request', from: 'northshire/site-a' },
        bundle,
        clock.nowMs(),
      ),
    ).toMatchObject({ kind: 'sent' });
    expect((await facts(id)).map((f) => f.type)).toEqual(['message.queued']);
    await waitFor('the receiver to answer the first placement', answered(id));

    // The node runs again: it places the message again (the ledger never said it was placed), then
    // reads the answers the first placement got.
    clock.advance(1_000);
    expect(await worker.runOnce()).toBe(1);
    await waitFor('the receiver to take the repeat', async () => {
      const mine = (await held()).messages.find((m) => m.id === id);
      return mine?.posts === 2 && !existsSync(join(out, `${id}.ctl`));
    });
    await waitFor('the answers to the repeat', answered(id));
    clock.advance(1_000);
    expect(await worker.runOnce()).toBe(0);

    const view = await held();
    expect(view.count).toBe(2);
    expect(view.messages.find((m) => m.id === id)).toEqual({
      id,
      n: 2,
      code: 'ok',
      reference: 'INC-000002',
      posts: 2,
    });
    const storedIds = readFileSync(receiverStore, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { id: string }).id);
    expect(storedIds.filter((x) => x === id)).toHaveLength(1);
    expect((await facts(id)).map((f) => f.type)).toEqual([
      'message.queued',
      'message.leased',
      'message.sent',
      'message.delivered',
      'message.accepted',
    ]);
    expect((await status(id)).reference).toBe('INC-000002');
    expect(ctlFiles(inbox)).toEqual([]);
  });

  it('a message the receiver finds invalid comes back rejected with the receiver’s reason', async () => {
    const id = randomUUID();
    const now = clock.nowMs();
    // Appended as a node whose own validator let it through would have: our validator refuses a
    // missing Encounter.status before queuing, the receiver's validator must refuse it too.
    await node.ledger.append([
      {
        tenant: TENANT,
        type: 'message.queued',
        actor: 'node:site-a',
        payload: {
          messageId: id,
          kind: 'ambulance_request',
          endpointId: 'ambulance',
          caseId: null,
          siteId: null,
          originNode: 'site-a',
          queuedAtMs: now,
          failAtMs: now + 3_600_000,
          bundle: messageBundle(id, { encounterStatus: null }),
          summary: 'Ambulance request, category 3',
        },
      },
    ]);
    expect(await worker.runOnce()).toBe(1);
    await waitFor('the receiver to answer', answered(id));
    clock.advance(1_000);
    await worker.runOnce();
    const recorded = await facts(id);
    expect(recorded.map((f) => f.type)).toEqual([
      'message.queued',
      'message.leased',
      'message.sent',
      'message.delivered',
      'message.rejected',
    ]);
    const s = await status(id);
    expect(s.state).toBe('rejected');
    expect(s.reason).toBe('Bundle.entry[1].resource.status: Missing required property');
    expect((await held()).messages.find((m) => m.id === id)).toMatchObject({
      code: 'fatal-error',
      reference: null,
    });
  });

  it('an error report is recorded as a rejection once; a repeat of it changes nothing; a report for another node’s message is not ours to record; no report in time: placed again', async () => {
    const quietIn = join(root, QUIET, 'in');
    const report = (id: string, status: 'success' | 'error', reason?: string) =>
      writeFileSync(
        join(quietIn, `${id}.report.ctl`),
        JSON.stringify({
          version: 1,
          messageType: 'report',
          localId: id,
          from: QUIET,
          to: 'northshire/site-a',
          status,
          ...(reason ? { reason } : {}),
          createdAt: '2026-12-04T12:00:00Z',
        }),
      );
    const refused = await queue('quiet');
    const unanswered = await queue('quiet');
    expect(await worker.runOnce()).toBe(2);
    report(refused, 'error', 'recipient mailbox is closed');
    const before = { ...worker.mailboxCounts };
    expect(await worker.runOnce()).toBe(0);
    expect((await facts(refused)).map((f) => f.type)).toEqual([
      'message.queued',
      'message.leased',
      'message.sent',
      'message.rejected',
    ]);
    expect((await status(refused)).reason).toBe(
      `mailbox ${QUIET} could not deliver it: recipient mailbox is closed`,
    );
    // The same report again (the other side wrote it twice): nothing new in the ledger.
    report(refused, 'error', 'recipient mailbox is closed');
    await worker.runOnce();
    expect((await facts(refused)).map((f) => f.type)).toHaveLength(4);
    expect(worker.mailboxCounts.recorded - before.recorded).toBe(1);
    expect(worker.mailboxCounts.alreadyRecorded - before.alreadyRecorded).toBe(1);
    expect(readdirSync(join(quietIn, 'done'))).toEqual([`${refused}.report.ctl`]);

    // Another node's message, under its lease: a report about it here is not this node's to record.
    const theirs = randomUUID();
    const now = clock.nowMs();
    await node.ledger.append([
      {
        tenant: TENANT,
        type: 'message.queued',
        actor: 'node:hub-1',
        payload: {
          messageId: theirs,
          kind: 'ambulance_request',
          endpointId: 'quiet',
          caseId: null,
          siteId: null,
          originNode: 'hub-1',
          queuedAtMs: now,
          failAtMs: now + 3_600_000,
          bundle: messageBundle(theirs),
          summary: 'Ambulance request, category 3',
        },
      },
      {
        tenant: TENANT,
        type: 'message.leased',
        actor: 'node:hub-1',
        // Held for longer than this test runs, so this node does not take it over meanwhile.
        payload: { messageId: theirs, node: 'hub-1', untilMs: now + 2 * AWAIT_MS },
      },
    ]);
    report(theirs, 'success');
    await worker.runOnce();
    expect((await facts(theirs)).map((f) => f.type)).toEqual(['message.queued', 'message.leased']);
    expect(readdirSync(join(quietIn, 'unmatched'))).toEqual([`${theirs}.report.ctl`]);

    // No acknowledgement within the wait: placed again (same files), and sent recorded again.
    expect((await status(unanswered)).state).toBe('sent');
    clock.advance(AWAIT_MS - 1_000);
    expect(await worker.runOnce()).toBe(0);
    clock.advance(1_000);
    expect(await worker.runOnce()).toBe(1);
    expect((await facts(unanswered)).filter((f) => f.type === 'message.sent')).toHaveLength(2);
    expect((await facts(unanswered)).at(-1)!.payload).toMatchObject({
      note: `placed in mailbox ${QUIET} (already there)`,
    });
    // Nobody collects from this mailbox: both messages still wait in out/, once each.
    expect(ctlFiles(join(root, QUIET, 'out')).sort()).toEqual([`${refused}.ctl`, `${unanswered}.ctl`].sort());
  });

  it('an answer for an unknown message goes to in/unmatched/, a garbage file and a data file that fails its checksum to in/bad/, and the worker carries on', async () => {
    const before = { ...worker.mailboxCounts };
    warnings.length = 0;
    const stranger = randomUUID();
    writeFileSync(
      join(inbox, `${stranger}.report.ctl`),
      JSON.stringify({
        version: 1,
        messageType: 'report',
        localId: stranger,
        from: MAILBOX,
        to: 'northshire/site-a',
        status: 'success',
        createdAt: '2026-12-04T12:00:00Z',
      }),
    );
    writeFileSync(join(inbox, 'garbage.ctl'), 'this is not a control file');
    writeFileSync(join(inbox, 'tampered.dat'), '{"resourceType":"Bundle"}');
    writeFileSync(
      join(inbox, 'tampered.ctl'),
      JSON.stringify({
        version: 1,
        messageType: 'data',
        localId: 'tampered',
        from: MAILBOX,
        to: 'northshire/site-a',
        workflowId: 'HOLDFAST_AMBULANCE_REQUEST_RESPONSE',
        dataFile: 'tampered.dat',
        size: 25,
        sha256: '0'.repeat(64),
        createdAt: '2026-12-04T12:00:00Z',
      }),
    );
    // A message queued in the same pass is still placed.
    const id = await queue();
    expect(await worker.runOnce()).toBe(1);
    // Placed. The receiver is a process of its own, polling every 250 ms: it may already have
    // answered before this same pass read the inbox, so the state is sent or already accepted.
    expect((await facts(id)).map((f) => f.type)).toContain('message.sent');
    expect(['sent', 'accepted']).toContain((await status(id)).state);

    expect(ctlFiles(inbox)).not.toContain(`${stranger}.report.ctl`);
    expect(readdirSync(join(inbox, 'unmatched'))).toEqual([`${stranger}.report.ctl`]);
    expect(readdirSync(join(inbox, 'bad')).sort()).toEqual(['garbage.ctl', 'tampered.ctl', 'tampered.dat']);
    expect(worker.mailboxCounts.bad - before.bad).toBe(2);
    expect(worker.mailboxCounts.unmatched - before.unmatched).toBe(1);
    expect(warnings.map((w) => [w.fields.file, w.fields.problem ?? null, w.message]).sort()).toEqual([
      [`${stranger}.report.ctl`, null, 'mailbox file about no message of ours: moved to in/unmatched/'],
      ['garbage.ctl', 'the control file is not JSON', 'mailbox file not readable: moved to in/bad/'],
      [
        'tampered.ctl',
        'the data file does not match the checksum in its control file',
        'mailbox file not readable: moved to in/bad/',
      ],
    ]);
    // The message placed in the same pass goes on to be accepted.
    await waitFor(
      'the receiver to answer',
      async () => answered(id)() || (await status(id)).state === 'accepted',
    );
    clock.advance(1_000);
    await worker.runOnce();
    expect((await status(id)).state).toBe('accepted');
  });
});

describe('the receiver’s side of a mailbox', () => {
  it('answers a whole message with a report and a response, refuses one whose data does not match its control file, and holds a repeat once', async () => {
    const root = mkdtempSync(join(tmpdir(), 'holdfast-mailbox-'));
    const box = join(root, 'riverside');
    const receiver = new FhirReceiver({
      kind: 'gp',
      name: 'Riverside Surgery',
      storeFile: join(root, 'gp.ndjson'),
    });
    await receiver.start();
    const pickup = new MailboxPickup(receiver, box);
    const transport = new MailboxTransport({ root });
    const place = (id: string) =>
      transport.place(
        'riverside',
        { messageId: id, kind: 'post_event_message', from: 'northshire/site-a' },
        JSON.stringify(messageBundle(id)),
        Date.UTC(2026, 11, 4, 12),
      );
    const inFile = (name: string) =>
      JSON.parse(readFileSync(join(box, 'in', name), 'utf8')) as Record<string, unknown>;
    try {
      const good = randomUUID();
      const spoiled = randomUUID();
      await place(good);
      await place(spoiled);
      // The same number of bytes, different content: only the checksum can tell.
      const dat = join(box, 'out', `${spoiled}.dat`);
      writeFileSync(dat, readFileSync(dat, 'utf8').replace('finished', 'FINISHED'));
      await pickup.pollOnce();

      expect(inFile(`${good}.report.ctl`)).toMatchObject({
        localId: good,
        status: 'success',
        from: 'riverside',
      });
      const response = inFile(`${good}.response.ctl`);
      expect(response).toMatchObject({
        messageType: 'data',
        dataFile: `${good}.response.dat`,
        to: 'northshire/site-a',
      });
      const responseData = readFileSync(join(box, 'in', `${good}.response.dat`), 'utf8');
      expect(response.sha256).toBe(sha256(responseData));
      const answer = JSON.parse(responseData) as { entry: { resource: Record<string, unknown> }[] };
      expect(answer.entry[0]!.resource.response).toEqual({ identifier: good, code: 'ok' });
      expect(answer.entry[1]!.resource.identifier).toEqual([
        { system: 'urn:receiver:task', value: 'GP-000001' },
      ]);
      expect(inFile(`${spoiled}.report.ctl`)).toMatchObject({
        localId: spoiled,
        status: 'error',
        reason: 'not collected: the data file does not match the checksum in its control file',
      });
      expect(existsSync(join(box, 'in', `${spoiled}.response.ctl`))).toBe(false);
      expect(readdirSync(join(box, 'out')).filter((n) => !n.startsWith('.'))).toEqual([]);
      expect(readdirSync(join(box, 'sent')).sort()).toEqual([`${good}.ctl`, `${good}.dat`].sort());
      expect(readdirSync(join(box, 'rejected')).sort()).toEqual([`${spoiled}.ctl`, `${spoiled}.dat`].sort());
      expect(receiver.count).toBe(1);

      // Placed again (no acknowledgement reached the sender): the same answer, held once.
      await place(good);
      await pickup.pollOnce();
      expect(receiver.count).toBe(1);
      expect(inFile(`${good}.report.ctl`)).toMatchObject({ status: 'success' });
      const again = JSON.parse(
        readFileSync(join(box, 'in', `${good}.response.dat`), 'utf8'),
      ) as typeof answer;
      expect(again.entry[1]!.resource.identifier).toEqual([
        { system: 'urn:receiver:task', value: 'GP-000001' },
      ]);
    } finally {
      await pickup.stop();
      await receiver.stop();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('the mailbox root in the node’s config', () => {
  it('comes from the config file or HOLDFAST_MESSAGING_MAILBOX_ROOT, as an absolute path; absent, there is none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-config-'));
    try {
      const file = join(dir, 'holdfast.config.json');
      writeFileSync(file, JSON.stringify({ messagingMailboxRoot: 'mailboxes' }));
      expect(loadConfig({ file, env: {} }).messagingMailboxRoot).toBe(resolve('mailboxes'));
      expect(
        loadConfig({ file, env: { HOLDFAST_MESSAGING_MAILBOX_ROOT: '/srv/mesh' } }).messagingMailboxRoot,
      ).toBe('/srv/mesh');
      writeFileSync(file, '{}');
      expect(loadConfig({ file, env: {} }).messagingMailboxRoot).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
