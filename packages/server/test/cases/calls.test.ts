import { randomUUID } from 'node:crypto';
import type { StoredEvent } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { accessEvent } from '../../src/audit/auditor.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp, OPERATOR_HEADERS } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * POST /api/v1/calls: the case, its answered event and the audit of the write are one append (one
 * commit), and an Idempotency-Key makes a retry return the case its first attempt opened.
 * And /health: unhealthy (503) while the node cannot append to its chain, healthy once it can.
 */
describe.each(STORE_KINDS)('opening a case for a call on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let site: string;
  const tenant = 'northshire';

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: [tenant] });
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    for (const [c, u] of [
      [adviser, 'health_adviser@northshire'],
      [clinician, 'clinician@northshire'],
    ] as const) {
      const r = await c.signIn(u);
      if (r.statusCode !== 200) throw new Error(r.body);
    }
  });
  afterAll(async () => t?.close());

  const call = (location: string) => ({
    siteId: site,
    caller: {
      name: 'Sam Caller',
      relationship: 'self',
      callbackNumber: '0113 496 0123',
      callbackNumberReadBack: true,
    },
    location,
    presentingComplaint: 'Chest pain',
  });

  async function ownChain(): Promise<StoredEvent[]> {
    return t.node.ledger.readChain(tenant, t.node.identity.node, 1);
  }

  function caseIdOf(e: StoredEvent): string | undefined {
    const p = JSON.parse(e.payloadJson) as { caseId?: string; resourceId?: string };
    return p.caseId ?? p.resourceId;
  }

  it('stores the case, its read-back number, its answered event and the audit at adjacent seqs of one append', async () => {
    const before = (await ownChain()).length;
    const res = await adviser.request('POST', '/api/v1/calls', call('Home'));
    expect(res.statusCode, res.body).toBe(201);
    const { caseId } = res.json() as { caseId: string };
    const added = (await ownChain()).slice(before);
    expect(added.map((e) => [e.type, caseIdOf(e)])).toEqual([
      ['case.opened', caseId],
      ['case.callback_number_confirmed', caseId],
      ['case.call_answered', caseId],
      ['audit.access', caseId],
    ]);
    expect(added.map((e) => e.seq)).toEqual([before + 1, before + 2, before + 3, before + 4]);
    // All four are the adviser's, as one command's events are.
    expect(new Set(added.map((e) => e.actor))).toEqual(
      new Set([`user:${t.providers[0]!.users.health_adviser.userId}`]),
    );
  });

  it('stores a claim and the audit of the case it answers with in one append', async () => {
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
    const before = (await ownChain()).length;
    const claim = await clinician.request('POST', `/api/v1/cases/${caseId}/claim`);
    expect(claim.statusCode, claim.body).toBe(200);
    expect(claim.json()).toMatchObject({ caseId, claimedBy: t.providers[0]!.users.clinician.userId });
    const added = (await ownChain()).slice(before);
    expect(added.map((e) => [e.type, caseIdOf(e)])).toEqual([
      ['case.claimed', caseId],
      ['audit.access', caseId],
    ]);
    expect(added.map((e) => e.seq)).toEqual([before + 1, before + 2]);
    expect(JSON.parse(added[1]!.payloadJson)).toMatchObject({ action: 'read', resourceType: 'case' });
  });

  it('answers a retry with the same Idempotency-Key with the same case, and stores it once', async () => {
    const key = randomUUID();
    const first = await adviser.request('POST', '/api/v1/calls', call('Retry lane'), {
      'idempotency-key': key,
    });
    expect(first.statusCode, first.body).toBe(201);
    const before = (await ownChain()).length;
    const retry = await adviser.request('POST', '/api/v1/calls', call('Retry lane'), {
      'idempotency-key': key,
    });
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.json()).toEqual(first.json());
    expect((await ownChain()).length).toBe(before);
    const opened = (await ownChain()).filter(
      (e) => e.type === 'case.opened' && e.payloadJson.includes('Retry lane'),
    );
    expect(opened).toHaveLength(1);
  });

  it('opens one case when two retries with one key race each other', async () => {
    const key = randomUUID();
    const answers = await Promise.all(
      [1, 2, 3].map(() =>
        adviser.request('POST', '/api/v1/calls', call('Racing retries'), { 'idempotency-key': key }),
      ),
    );
    const statuses = answers.map((a) => a.statusCode).sort();
    expect(statuses).toEqual([200, 200, 201]);
    expect(new Set(answers.map((a) => (a.json() as { caseId: string }).caseId)).size).toBe(1);
    const opened = (await ownChain()).filter(
      (e) => e.type === 'case.opened' && e.payloadJson.includes('Racing retries'),
    );
    expect(opened).toHaveLength(1);
  });

  it('refuses the same key with a different call (409) and stores nothing', async () => {
    const key = randomUUID();
    expect(
      (await adviser.request('POST', '/api/v1/calls', call('First call'), { 'idempotency-key': key }))
        .statusCode,
    ).toBe(201);
    const before = (await ownChain()).length;
    const other = await adviser.request('POST', '/api/v1/calls', call('Another call'), {
      'idempotency-key': key,
    });
    expect(other.statusCode, other.body).toBe(409);
    expect(other.json()).toMatchObject({ detail: expect.stringMatching(/Idempotency-Key was sent before/) });
    expect((await ownChain()).length).toBe(before);
  });

  it('stores nothing of an append whose audit draft is bad, or whose guard refuses, and stays healthy', async () => {
    const before = (await ownChain()).length;
    const ctx = {
      tenant,
      userId: t.providers[0]!.users.health_adviser.userId,
      username: 'health_adviser@northshire',
      roles: ['health_adviser' as const],
      siteIds: [site],
      sessionId: 'test',
      address: '127.0.0.1',
    };
    const caseId = randomUUID();
    const opened = {
      tenant,
      type: 'case.opened',
      actor: `user:${ctx.userId}`,
      payload: {
        caseId,
        receivedAt: '2026-11-29T09:00:00.000Z',
        ...call('Never stored'),
        caller: { name: 'Sam Caller', relationship: 'self', callbackNumber: '0113 496 0123' },
      },
    };
    const audit = accessEvent(ctx, {
      action: 'write',
      resourceType: 'case',
      resourceId: caseId,
      breakGlass: false,
      fields: ['caller'],
    });
    const badAudit = { ...audit, payload: { ...audit.payload, action: 'shred' } };
    await expect(t.node.ledger.append([opened, badAudit])).rejects.toThrow(/action/);
    await expect(
      t.node.ledger.append([opened, audit], {
        guard: () => Promise.reject(new Error('refused by its own guard')),
      }),
    ).rejects.toThrow('refused by its own guard');
    expect((await ownChain()).length).toBe(before);
    // A refusal of one append is not a failure of the node.
    expect(t.node.ledger.writeHealth.failure).toBeNull();
    expect(
      (await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS })).statusCode,
    ).toBe(200);
  });

  it('refuses a malformed Idempotency-Key naming the header', async () => {
    const res = await adviser.request('POST', '/api/v1/calls', call('Bad key'), {
      'idempotency-key': 'has spaces in it',
    });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ errors: [{ path: 'headers.idempotency-key' }] });
  });

  it('while the chain cannot be appended to: the call stores nothing, /health answers 503 naming the cause, then recovers', async () => {
    expect(
      (await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS })).statusCode,
    ).toBe(200);
    const chain = await ownChain();
    const head = chain[chain.length - 1]!;
    // Another writer took the next seq of this node's chain behind the ledger's back.
    const intruder = randomUUID();
    await t.node.store.db
      .insertInto('ledger_events')
      .values({
        tenant,
        node: t.node.identity.node,
        seq: head.seq + 1,
        id: intruder,
        hlc: head.hlc,
        type: 'audit.denied',
        v: 1,
        actor: 'another-writer',
        payload: '{}',
        prev_hash: head.hash,
        hash: 'f'.repeat(64),
        subject: null,
      })
      .execute();

    const failed = await adviser.request('POST', '/api/v1/calls', call('Not kept'), {
      'idempotency-key': randomUUID(),
    });
    expect(failed.statusCode).toBe(500);
    const health = await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toMatchObject({
      status: 'unavailable',
      problem: expect.stringMatching(/cannot append to its ledger/),
      cause: { code: kind === 'sqlite' ? 'SQLITE_CONSTRAINT_UNIQUE' : '23505', failedAppends: 1 },
    });
    // Nothing of the failed call: neither the case nor its audit event.
    const rows = await t.node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'payload'])
      .where('tenant', '=', tenant)
      .execute();
    expect(rows.filter((r) => r.payload.includes('Not kept'))).toEqual([]);
    expect(rows.filter((r) => r.type === 'case.opened').length).toBe(
      rows.filter((r) => r.type === 'audit.access' && r.payload.includes('"action":"write"')).length,
    );

    await t.node.store.db.deleteFrom('ledger_events').where('id', '=', intruder).execute();
    // Not a write failure: healthy only once an append commits again.
    expect(
      (await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS })).statusCode,
    ).toBe(503);
    const kept = await adviser.request('POST', '/api/v1/calls', call('Kept again'));
    expect(kept.statusCode, kept.body).toBe(201);
    expect(
      (await t.app.inject({ method: 'GET', url: '/health', headers: OPERATOR_HEADERS })).statusCode,
    ).toBe(200);
  });
});
