import { randomUUID } from 'node:crypto';
import { ConflictError, ValidationError, type CaseCommand, type ReconciliationItem } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseView } from '../../src/cases/views.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { STORE_KINDS } from '../support/databases.ts';
import {
  createSite,
  ctxFor,
  enrolAll,
  projectionDump,
  startClinicalNode,
  syncOnce,
  type ClinicalNode,
} from '../sync/simulation/cluster.ts';

/**
 * Item 4 of the continuity issue: two nodes apart act on one case in ways that cannot both stand;
 * after merging both ways every node shows the same case and exactly one reconciliation item, and
 * a shift manager's decision is applied on both.
 */
const TENANT = 'recon';

describe.each(STORE_KINDS)('reconciliation on %s', (kind) => {
  let a: ClinicalNode & { destroy(): Promise<void> };
  let b: ClinicalNode & { destroy(): Promise<void> };
  let siteId: string;
  const adviser = randomUUID();
  const manager = ctxFor(TENANT, randomUUID(), ['shift_manager']);
  const as = (userId: string) => ctxFor(TENANT, userId, ['clinician'], [siteId]);

  beforeAll(async () => {
    a = await startClinicalNode(kind, 'node-a', TENANT, { role: 'hub' });
    b = await startClinicalNode(kind, 'node-b', TENANT);
    await enrolAll([a, b], TENANT);
    siteId = await createSite(a, TENANT, 'Northshire CAS');
    await exchange();
  });
  afterAll(async () => {
    await a?.destroy();
    await b?.destroy();
  });

  /** A syncs with B: pulls B's events, pushes its own (so B folds A's earlier events late: a refold). */
  async function exchange(): Promise<void> {
    const r = await syncOnce(a, b, TENANT);
    expect(r.unsentEvents + r.unreceivedEvents).toBe(0);
  }

  async function run(n: ClinicalNode, userId: string, command: CaseCommand | CaseCommand[], caseId: string) {
    n.clock.advance(1000);
    return n.cases.command(as(userId), caseId, command);
  }

  /** A case opened on A and queued for a clinician, known to both nodes. */
  async function queuedCase(): Promise<string> {
    const caseId = await a.cases.open(ctxFor(TENANT, adviser, ['health_adviser'], [siteId]), {
      siteId,
      answered: true,
      caller: { name: 'Sam Caller', relationship: 'self', callbackNumber: '07700 900123' },
      location: 'At home',
      presentingComplaint: 'Feeling unwell',
    });
    await run(
      a,
      adviser,
      [
        { type: 'start_triage' },
        { type: 'reach_disposition', kind: 'speak_to_primary_care', timeframeMinutes: 120 },
        { type: 'queue_for_clinician' },
      ],
      caseId,
    );
    return caseId;
  }

  /** A case in consultation with `clinician`, known to both nodes. */
  async function consultingCase(clinician: string): Promise<string> {
    const caseId = await queuedCase();
    await run(a, clinician, { type: 'claim', clinicianId: clinician }, caseId);
    await run(a, clinician, { type: 'start_consultation', clinicianId: clinician }, caseId);
    await exchange();
    return caseId;
  }

  async function itemsOf(n: ClinicalNode, caseId: string): Promise<ReconciliationItem[]> {
    const rows = await n.node.store.db
      .withTables<{ reconciliation_items: { tenant: string; case_id: string; item: string } }>()
      .selectFrom('reconciliation_items')
      .select('item')
      .where('tenant', '=', TENANT)
      .where('case_id', '=', caseId)
      .execute();
    return rows.map((r) => JSON.parse(r.item) as ReconciliationItem);
  }

  /** Both nodes hold the same projections, also after a rebuild from the ledger, and both verify. */
  async function expectSameEverywhere(): Promise<void> {
    const dumpA = await projectionDump(a, TENANT);
    expect(await projectionDump(b, TENANT)).toEqual(dumpA);
    await b.node.projections.rebuild();
    expect(await projectionDump(b, TENANT)).toEqual(dumpA);
    for (const n of [a, b])
      expect((await verifyStore(n.node.store, ledgerCrypto, { tenant: TENANT })).ok).toBe(true);
  }

  it('two clinicians claim one case on nodes apart: one double_claim item, the first claim stands, a decision applies on both', async () => {
    const caseId = await queuedCase();
    await exchange();
    const x = randomUUID();
    const y = randomUUID();
    // Apart: each node sees the case queued and lets its clinician claim it; Y carries on.
    await run(a, x, { type: 'claim', clinicianId: x }, caseId);
    b.clock.advance(5000);
    await run(b, y, { type: 'claim', clinicianId: y }, caseId);
    await run(b, y, { type: 'start_consultation', clinicianId: y }, caseId);
    await exchange();
    await exchange();

    for (const n of [a, b]) {
      const row = await n.cases.get({ tenant: TENANT }, caseId);
      expect(row.claimed_by).toBe(x);
      expect(row.status).toBe('claimed');
      expect(Number(row.open_reconciliation)).toBe(1);
      // What users are shown of the case says a decision is waiting.
      expect(caseView(row).openReconciliationItems).toBe(1);
      const items = await itemsOf(n, caseId);
      expect(items).toHaveLength(1);
      expect(items[0]).toMatchObject({ kind: 'double_claim', status: 'open', claimants: [x, y] });
      expect(items[0]!.held.map((h) => h.type)).toEqual(['case.claimed', 'case.consultation_started']);
    }
    await expectSameEverywhere();
    const [item] = await itemsOf(a, caseId);

    // Bad decisions are refused naming the field; nothing is recorded.
    await expect(
      b.reconciliation.resolve(manager, item!.itemId, { decision: { action: 'keep_closed' }, reason: 'x' }),
    ).rejects.toSatisfy(
      (e) => e instanceof ValidationError && e.issues.some((i) => i.path === 'body.decision.action'),
    );
    await expect(
      b.reconciliation.resolve(manager, item!.itemId, {
        decision: { action: 'keep_claim', clinicianId: randomUUID() },
        reason: 'x',
      }),
    ).rejects.toSatisfy(
      (e) => e instanceof ValidationError && e.issues.some((i) => i.path === 'body.decision.clinicianId'),
    );

    b.clock.advance(1000);
    const resolved = await b.reconciliation.resolve(manager, item!.itemId, {
      decision: { action: 'keep_claim', clinicianId: y },
      reason: 'Y had already started the consultation with the patient',
    });
    expect(resolved.status).toBe('resolved');
    await expect(
      b.reconciliation.resolve(manager, item!.itemId, {
        decision: { action: 'release_to_queue' },
        reason: 'x',
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    await exchange();
    for (const n of [a, b]) {
      const row = await n.cases.get({ tenant: TENANT }, caseId);
      expect(row.claimed_by).toBe(y);
      expect(Number(row.open_reconciliation)).toBe(0);
      expect(caseView(row).openReconciliationItems).toBe(0);
      const [after] = await itemsOf(n, caseId);
      expect(after!.resolution).toMatchObject({ decision: { action: 'keep_claim', clinicianId: y } });
    }
    await expectSameEverywhere();
    // Y holds the case now and can go on with it.
    await run(b, y, { type: 'start_consultation', clinicianId: y }, caseId);
  });

  it('a case closed on one node and changed on another: one changed_after_close item; reopening puts it back in the queue', async () => {
    const x = randomUUID();
    const caseId = await consultingCase(x);
    await run(a, x, { type: 'record_outcome', clinicianId: x, outcome: 'advice_and_close' }, caseId);
    b.clock.advance(5000);
    await run(b, x, { type: 'release', clinicianId: x }, caseId);
    await exchange();

    for (const n of [a, b]) {
      const row = await n.cases.get({ tenant: TENANT }, caseId);
      expect(row.status).toBe('closed');
      const items = await itemsOf(n, caseId);
      expect(items.map((i) => i.kind)).toEqual(['changed_after_close']);
      expect(items[0]!.held.map((h) => h.type)).toEqual(['case.released']);
    }
    await expectSameEverywhere();
    const [item] = await itemsOf(b, caseId);
    a.clock.advance(1000);
    await a.reconciliation.resolve(manager, item!.itemId, {
      decision: { action: 'reopen_to_queue' },
      reason: 'The patient needs the call-back the other site was arranging',
    });
    await exchange();
    for (const n of [a, b]) {
      const row = await n.cases.get({ tenant: TENANT }, caseId);
      expect(row.status).toBe('queued');
      expect(row.closed_at).toBeNull();
      expect(row.claimed_by).toBeNull();
    }
    await expectSameEverywhere();
  });

  it('two outcomes for one consultation from two nodes: one two_outcomes item; choosing the other outcome applies it', async () => {
    const x = randomUUID();
    const caseId = await consultingCase(x);
    await run(a, x, { type: 'record_outcome', clinicianId: x, outcome: 'advice_and_close' }, caseId);
    b.clock.advance(5000);
    const [bOutcome] = await run(b, x, { type: 'record_outcome', clinicianId: x, outcome: 'refer' }, caseId);
    expect(bOutcome!.type).toBe('case.outcome_recorded');
    await exchange();

    for (const n of [a, b]) {
      const row = await n.cases.get({ tenant: TENANT }, caseId);
      expect(row.status).toBe('closed');
      expect(row.outcome).toBe('advice_and_close');
      const items = await itemsOf(n, caseId);
      expect(items).toHaveLength(1);
      expect(items[0]!.kind).toBe('two_outcomes');
      expect(items[0]!.outcomes.map((o) => o.outcome)).toEqual(['advice_and_close', 'refer']);
      expect(items[0]!.held.map((h) => h.type)).toEqual(['case.outcome_recorded', 'case.referred']);
    }
    await expectSameEverywhere();
    const [item] = await itemsOf(a, caseId);
    a.clock.advance(1000);
    await a.reconciliation.resolve(manager, item!.itemId, {
      decision: { action: 'keep_outcome', outcomeEventId: item!.outcomes[1]!.eventId },
      reason: 'The referral was agreed with the patient',
    });
    await exchange();
    for (const n of [a, b]) {
      const row = await n.cases.get({ tenant: TENANT }, caseId);
      expect(row.status).toBe('referral_pending');
      expect(row.outcome).toBe('refer');
      expect(row.closed_at).toBeNull();
    }
    await expectSameEverywhere();
  });

  it('a double claim whose kept clinician closed the case meanwhile: releasing is refused (409), keeping the claim that stood resolves it', async () => {
    const caseId = await queuedCase();
    await exchange();
    const x = randomUUID();
    const y = randomUUID();
    await run(a, x, { type: 'claim', clinicianId: x }, caseId);
    b.clock.advance(5000);
    await run(b, y, { type: 'claim', clinicianId: y }, caseId);
    await exchange();
    await run(a, x, { type: 'start_consultation', clinicianId: x }, caseId);
    await run(a, x, { type: 'record_outcome', clinicianId: x, outcome: 'advice_and_close' }, caseId);
    await exchange();
    const [item] = await itemsOf(b, caseId);
    expect(item).toMatchObject({ kind: 'double_claim', status: 'open', claimants: [x, y] });
    await expect(
      b.reconciliation.resolve(manager, item!.itemId, {
        decision: { action: 'release_to_queue' },
        reason: 'x',
      }),
    ).rejects.toBeInstanceOf(ConflictError);
    b.clock.advance(1000);
    await b.reconciliation.resolve(manager, item!.itemId, {
      decision: { action: 'keep_claim', clinicianId: x },
      reason: 'X saw the patient and closed the case',
    });
    await exchange();
    for (const n of [a, b]) {
      const row = await n.cases.get({ tenant: TENANT }, caseId);
      expect(row.status).toBe('closed');
      expect(Number(row.open_reconciliation)).toBe(0);
    }
    await expectSameEverywhere();
  });

  it('lists open items by site, and one item per collision however often the nodes exchange', async () => {
    const open = await a.reconciliation.list(manager, { status: 'open', siteId });
    expect(open.length).toBe(0);
    const resolved = await b.reconciliation.list(manager, { status: 'resolved', siteId });
    expect(resolved.map((i) => i.kind).sort()).toEqual([
      'changed_after_close',
      'double_claim',
      'double_claim',
      'two_outcomes',
    ]);
    expect(await a.reconciliation.list(manager, { status: 'resolved', siteId: randomUUID() })).toEqual([]);
    await exchange();
    expect((await a.reconciliation.list(manager, { status: 'resolved' })).length).toBe(4);
  });
});
