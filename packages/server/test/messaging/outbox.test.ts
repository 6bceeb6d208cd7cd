import { randomUUID } from 'node:crypto';
import {
  FixedClock,
  foldMessage,
  type Endpoint,
  type MessageEvent,
  type MessageStatus,
} from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryWorker } from '../../src/messaging/delivery.ts';
import { messagingDb, statusOf } from '../../src/messaging/projection.ts';
import { MessagingService } from '../../src/messaging/service.ts';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { messageBundle } from '../support/message-bundle.ts';
import { responseBundle, ScriptedReceiver } from '../support/scripted-receiver.ts';

/**
 * The outbox and its delivery worker against a receiver over real HTTP on loopback. The receiver
 * here is scripted (what it answers is the test's point); the FHIR receiver built on a third-party
 * implementation is exercised in receiver.test.ts.
 */

const TENANT = 'northshire';

describe.each(STORE_KINDS)('the outbox on %s', (kind) => {
  let node: HoldfastNode;
  let cleanup: () => Promise<void>;
  const clock = new FixedClock(Date.UTC(2026, 11, 4, 12, 0, 0));
  const receiver = new ScriptedReceiver();
  let messaging: MessagingService;
  let worker: DeliveryWorker;

  beforeAll(async () => {
    await receiver.start();
    const fresh = await freshStore(kind);
    cleanup = fresh.cleanup;
    node = await initNode(fresh.config, { node: 'site-a', tenant: TENANT, role: 'site' }, { clock });
    messaging = new MessagingService(node.store, node.ledger, clock);
    const endpoint: Endpoint = {
      endpointId: 'ambulance',
      name: 'North Ambulance Service',
      kinds: ['ambulance_request'],
      odsCode: 'RX9',
      transport: { type: 'http', url: receiver.url, clientCertificate: null },
      phone: '0300 000 0000',
      acceptWithinSeconds: 30,
    };
    await messaging.setEndpoint(TENANT, 'user:test', endpoint);
    worker = new DeliveryWorker(
      { store: node.store, ledger: node.ledger, clock, tenant: TENANT },
      { http: new HttpTransport({ timeoutMs: 2_000 }) },
      { retryCapMs: 8_000, takeOverAfterMs: 60_000, leaseMs: 20_000 },
    );
  });

  afterAll(async () => {
    await worker.stop();
    await node.close();
    await cleanup();
    await receiver.stop();
  });

  async function queue(failAfterMs = 120_000): Promise<string> {
    const messageId = randomUUID();
    await messaging.queue(TENANT, 'user:test', {
      messageId,
      kind: 'ambulance_request',
      endpointId: 'ambulance',
      caseId: randomUUID(),
      siteId: null,
      bundle: messageBundle(messageId),
      summary: 'Ambulance request, category 2',
      failAfterMs,
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

  async function factTypes(messageId: string): Promise<string[]> {
    const rows = await node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'payload'])
      .where('tenant', '=', TENANT)
      .where('subject', '=', `message:${messageId}`)
      .orderBy('seq')
      .execute();
    return rows.map((r) => r.type);
  }

  it('delivers a queued message, sending its id as the idempotency key, and records the receiver accepting it with its reference', async () => {
    receiver.received.length = 0;
    const id = await queue();
    expect((await status(id)).state).toBe('queued');
    expect(await worker.runOnce()).toBe(1);
    expect(receiver.received.map((r) => r.id)).toEqual([id]);
    expect(JSON.parse(receiver.received[0]!.body)).toEqual(messageBundle(id));
    const s = await status(id);
    expect(s.state).toBe('accepted');
    expect(s.reference).toBe('INC-4711');
    expect(s.lease).toBeNull();
    expect(await factTypes(id)).toEqual([
      'message.queued',
      'message.leased',
      'message.sent',
      'message.delivered',
      'message.accepted',
    ]);
    // Nothing more is sent for an accepted message.
    clock.advance(60_000);
    expect(await worker.runOnce()).toBe(0);
    expect(receiver.received).toHaveLength(1);
  });

  it('retries with backoff after a refused connection, a 503 and a transient-error answer, then records acceptance', async () => {
    receiver.received.length = 0;
    receiver.script = [
      'hang-up',
      {
        status: 503,
        body: {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'transient', diagnostics: 'busy' }],
        },
      },
    ];
    const id = await queue();
    expect(await worker.runOnce()).toBe(1);
    let s = await status(id);
    expect(s.state).toBe('queued');
    expect(s.attempts).toBe(1);
    expect(s.lastProblem).toMatch(/ECONNRESET|socket hang up/);
    // Not again before the backoff (1 s after the first failure) has passed.
    expect(await worker.runOnce()).toBe(0);
    clock.advance(1_000);
    expect(await worker.runOnce()).toBe(1);
    s = await status(id);
    expect(s.attempts).toBe(2);
    expect(s.lastProblem).toBe('HTTP 503: busy');
    expect(s.nextAttemptAtMs).toBe(clock.nowMs() + 2_000);
    receiver.script = [{ status: 200, body: responseBundle(id, 'transient-error') }];
    clock.advance(2_000);
    expect(await worker.runOnce()).toBe(1);
    expect((await status(id)).state).toBe('queued');
    clock.advance(4_000);
    expect(await worker.runOnce()).toBe(1);
    s = await status(id);
    expect(s.state).toBe('accepted');
    expect(s.attempts).toBe(4);
    // Every attempt carried the same id: the receiver can drop repeats.
    expect(new Set(receiver.received.map((r) => r.id))).toEqual(new Set([id]));
    expect(receiver.received).toHaveLength(4);
  });

  it('records a rejection with the receiver’s reason, and a 4xx as a rejection too; neither is sent again', async () => {
    receiver.received.length = 0;
    const fatal = await queue();
    receiver.script = [{ status: 200, body: responseBundle(fatal, 'fatal-error') }];
    await worker.runOnce();
    let s = await status(fatal);
    expect(s.state).toBe('rejected');
    expect(s.reason).toBe('no location given');
    const bad = await queue();
    receiver.script = [
      {
        status: 422,
        body: {
          resourceType: 'OperationOutcome',
          issue: [{ severity: 'error', code: 'invalid', diagnostics: 'Bundle.entry[0]: unknown resource' }],
        },
      },
    ];
    await worker.runOnce();
    s = await status(bad);
    expect(s.state).toBe('rejected');
    expect(s.reason).toBe('HTTP 422: Bundle.entry[0]: unknown resource');
    clock.advance(60_000);
    expect(await worker.runOnce()).toBe(0);
    expect(receiver.received).toHaveLength(2);
  });

  it('a message the receiver never takes fails at its deadline, is listed for the shift manager, and can be retried with a reason', async () => {
    receiver.received.length = 0;
    receiver.fallback = { status: 500 };
    const id = await queue(10_000);
    for (let i = 0; i < 5; i++) {
      await worker.runOnce();
      clock.advance(2_500);
    }
    await worker.runOnce();
    const s = await status(id);
    expect(s.state).toBe('failed');
    expect(s.reason).toMatch(/^not delivered in time \(last problem: HTTP 500/);
    const attemptsAtFailure = receiver.received.length;
    clock.advance(60_000);
    await worker.runOnce();
    expect(receiver.received).toHaveLength(attemptsAtFailure);

    const ctx = {
      tenant: TENANT,
      userId: randomUUID(),
      username: 'shift-manager@northshire',
      roles: ['shift_manager' as const],
      siteIds: [],
      sessionId: 'test',
      address: '127.0.0.1',
    };
    const attention = await messaging.list(ctx, { needsAttention: true });
    expect(attention.map((m) => m.messageId)).toContain(id);
    expect(attention.find((m) => m.messageId === id)!.destination).toBe('North Ambulance Service');
    receiver.fallback = { status: 200, body: 'ok-with-reference' };
    const retried = await messaging.retry(ctx, id, 'ambulance service back online');
    expect(retried.state).toBe('queued');
    await worker.runOnce();
    expect((await status(id)).state).toBe('accepted');
    expect((await messaging.list(ctx, { needsAttention: true })).map((m) => m.messageId)).not.toContain(id);
    await expect(messaging.cancel(ctx, id, 'no longer needed')).rejects.toThrow(/accepted already/);
  });

  it('an invalid Bundle is never sent: it is recorded failed at once, naming the field, and cannot be retried', async () => {
    receiver.received.length = 0;
    const messageId = randomUUID();
    const bundle = messageBundle(messageId);
    // A MessageHeader without its required source.
    delete (bundle.entry[0]!.resource as Record<string, unknown>).source;
    await messaging.queue(TENANT, 'user:test', {
      messageId,
      kind: 'ambulance_request',
      endpointId: 'ambulance',
      caseId: randomUUID(),
      siteId: null,
      bundle,
      summary: 'Ambulance request, category 2',
      failAfterMs: 120_000,
    });
    const s = await status(messageId);
    expect(s.state).toBe('failed');
    expect(s.invalid).toBe(true);
    expect(s.reason).toMatch(
      /^not sent: the message is not valid FHIR: Bundle\.entry\[0\]\.resource\.source: Missing required property/,
    );
    clock.advance(10_000);
    await worker.runOnce();
    expect(receiver.received.map((r) => r.id)).not.toContain(messageId);
    const ctx = {
      tenant: TENANT,
      userId: randomUUID(),
      username: 'shift-manager@northshire',
      roles: ['shift_manager' as const],
      siteIds: [],
      sessionId: 'test',
      address: '127.0.0.1',
    };
    await expect(messaging.retry(ctx, messageId, 'try again')).rejects.toThrow(/not valid FHIR/);
  });

  it('another node’s message is left alone while its lease lives, and taken over only after the lease has lapsed', async () => {
    receiver.received.length = 0;
    const id = randomUUID();
    const now = clock.nowMs();
    await node.ledger.append([
      {
        tenant: TENANT,
        type: 'message.queued',
        actor: 'node:hub-1',
        payload: {
          messageId: id,
          kind: 'ambulance_request',
          endpointId: 'ambulance',
          caseId: null,
          siteId: null,
          originNode: 'hub-1',
          queuedAtMs: now,
          failAtMs: now + 3_600_000,
          bundle: messageBundle(id),
          summary: 'Ambulance request, category 3',
        },
      },
      {
        tenant: TENANT,
        type: 'message.leased',
        actor: 'node:hub-1',
        payload: { messageId: id, node: 'hub-1', untilMs: now + 20_000 },
      },
    ]);
    expect(await worker.runOnce()).toBe(0);
    clock.advance(20_000 + 59_000);
    expect(await worker.runOnce()).toBe(0);
    clock.advance(1_000);
    expect(await worker.runOnce()).toBe(1);
    expect(receiver.received.map((r) => r.id)).toEqual([id]);
    const s = await status(id);
    expect(s.state).toBe('accepted');
  });
});

describe('the message fold', () => {
  const queued: MessageEvent = {
    type: 'message.queued',
    payload: {
      messageId: '00000000-0000-4000-8000-000000000001',
      kind: 'post_event_message',
      endpointId: 'gp-a',
      caseId: null,
      siteId: null,
      originNode: 'site-a',
      queuedAtMs: 1000,
      failAtMs: 5000,
      bundle: {},
      summary: 'PEM',
    },
  };
  const id = queued.payload.messageId;
  const fold = (...events: MessageEvent[]) => events.reduce<MessageStatus | null>(foldMessage, null);

  it('the receiver’s first answer stands, and a late deadline or attempt does not undo a delivery', () => {
    const accepted: MessageEvent = {
      type: 'message.accepted',
      payload: { messageId: id, atMs: 2000, reference: 'R1' },
    };
    const rejected: MessageEvent = {
      type: 'message.rejected',
      payload: { messageId: id, atMs: 2100, reason: 'no' },
    };
    expect(fold(queued, accepted, rejected)!.state).toBe('accepted');
    expect(fold(queued, rejected, accepted)!.state).toBe('rejected');
    const delivered: MessageEvent = {
      type: 'message.delivered',
      payload: { messageId: id, node: 'hub-1', atMs: 1500, acknowledgement: 'HTTP 202' },
    };
    const lateFailure: MessageEvent = {
      type: 'message.attempt_failed',
      payload: { messageId: id, node: 'site-a', attempt: 1, problem: 'timeout', nextAttemptAtMs: 3000 },
    };
    expect(fold(queued, delivered, lateFailure)!.state).toBe('delivered');
    const failed: MessageEvent = {
      type: 'message.failed',
      payload: { messageId: id, atMs: 5000, reason: 'late' },
    };
    expect(fold(queued, accepted, failed)!.state).toBe('accepted');
    // The receiver answering after the deadline is the truth.
    expect(fold(queued, failed, accepted)!.state).toBe('accepted');
    // Facts before the message itself fold to nothing until it arrives (the engine refolds then).
    expect(fold(accepted)).toBeNull();
  });
});
