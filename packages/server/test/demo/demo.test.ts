import { normaliseNhsNumber, SPECIAL_NOTE_KINDS, type PatientRecord } from '@holdfast/core';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_TENANT, seedDemoProvider } from '../../src/demo.ts';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { checkProjections, describeProjectionCheck } from '../../src/projections/check.ts';
import { freshStore } from '../support/databases.ts';

/** What `holdfast start` seeds at the first start: the demo provider, its users, made-up patients. */
describe('the demo provider', () => {
  let node: HoldfastNode;
  let cleanup: () => Promise<void>;

  afterAll(async () => {
    await node.close();
    await cleanup();
  });

  it('has made-up patients with special notes of every kind and NHS numbers from the never-issued 999 range', async () => {
    const fresh = await freshStore('sqlite');
    cleanup = fresh.cleanup;
    node = await initNode(fresh.config, { tenant: DEMO_TENANT, node: 'node-1', role: 'single' });
    const demo = await seedDemoProvider(node);
    expect(demo.users.length).toBeGreaterThan(0);
    const rows = await node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'patient.registered')
      .execute();
    const records = rows.map((r) => (JSON.parse(r.payload) as { record: PatientRecord }).record);
    expect(records.length).toBeGreaterThanOrEqual(24);
    for (const r of records) {
      expect(r.nhsNumber).toMatch(/^999\d{7}$/);
      expect(normaliseNhsNumber(r.nhsNumber!).ok).toBe(true);
    }
    expect(new Set(records.map((r) => r.nhsNumber)).size).toBe(records.length);
    const kinds = new Set(records.flatMap((r) => r.specialNotes.map((n) => n.kind)));
    for (const kind of SPECIAL_NOTE_KINDS) expect(kinds.has(kind), kind).toBe(true);
    expect(records.filter((r) => r.specialNotes.length === 0).length).toBeGreaterThan(0);
    for (const r of records) for (const n of r.specialNotes) expect(n.text).toMatch(/^Made-up demo note/);
    // What was folded as the events were appended is what a fold of the ledger gives: a restarted
    // node's projection check finds nothing to refuse (patient records were once stored in the
    // key order of the append, which a rebuild does not reproduce).
    const check = await checkProjections(node.store, node.projections.projections, node.registry);
    expect(check.ok, describeProjectionCheck(check)).toBe(true);
  });
});
