import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { DispatchWorld, type VisitJson } from './support.ts';

interface ItemJson {
  itemId: string;
  kind: string;
  status: string;
  caseId: string;
  allocations: { allocationId: string; visitId: string; vehicleId: string; standsNow: boolean }[];
}

/**
 * One car allocated to two visits by nodes that could not see each other: the second allocation is
 * written straight to the ledger, based on the same predecessor as the first, as a merge from a node
 * that was apart would bring it (one node's own allocations cannot fork). It becomes exactly one
 * reconciliation item in the existing list, the second visit shows the conflict and is not counted as
 * covered, and the shift manager's decision there settles which visit the car goes to.
 */
describe.each(STORE_KINDS)('double allocation on %s', (kind) => {
  const w = new DispatchWorld();
  beforeAll(async () => {
    await w.start(kind);
  });
  afterAll(async () => {
    await w.stop();
  });

  it('becomes one reconciliation item, decided in the reconciliation list', async () => {
    const car = await w.car('Delta 4', 54.02, -1.5);
    await w.shift('driver', { kind: 'car', id: car });
    await w.shift('prescriber', { kind: 'car', id: car });
    const a = await w.homeVisit(await w.consultation(await w.patient()));
    const b = await w.homeVisit(await w.consultation(await w.patient()));
    await w.json('dispatcher', 'POST', `/api/v1/visits/${a.visitId}/allocate`, { vehicleId: car });
    const [first] = (await w.eventsOf(['visit.allocated'])).slice(-1);
    // The other node allocated the same car to visit B, knowing nothing of A's allocation.
    const otherAllocation = randomUUID();
    await w.t.node.ledger.append([
      {
        tenant: 'northshire',
        type: 'visit.allocated',
        actor: `user:${w.user('dispatcher').userId}`,
        payload: {
          visitId: b.visitId,
          allocationId: otherAllocation,
          vehicleId: car,
          byUserId: w.user('dispatcher').userId,
          visitBasedOn: null,
          vehicleBasedOn: first!.payload.vehicleBasedOn,
          atMs: w.t.clock.nowMs(),
        },
      },
    ]);
    const { items } = await w.json<{ items: ItemJson[] }>('shift_manager', 'GET', '/api/v1/reconciliation');
    const mine = items.filter((i) => i.kind === 'double_allocation');
    expect(mine).toHaveLength(1);
    const item = mine[0]!;
    expect(item.caseId).toBe(b.caseId);
    expect(item.allocations.map((x) => [x.visitId, x.standsNow])).toEqual([
      [a.visitId, true],
      [b.visitId, false],
    ]);
    // Visit B shows the conflict and is not counted as covered (never silently "sent").
    const seenB = (await w.json<{ visit: VisitJson }>('dispatcher', 'GET', `/api/v1/visits/${b.visitId}`))
      .visit;
    expect(seenB).toMatchObject({ vehicleId: null, status: 'requested', conflicts: [item.itemId] });

    // A decision that does not answer this kind of item is refused naming the field.
    const wrong = await w.clients.shift_manager.request(
      'POST',
      `/api/v1/reconciliation/${item.itemId}/resolve`,
      {
        decision: { action: 'keep_current' },
        reason: 'testing',
      },
    );
    expect(wrong.statusCode).toBe(400);
    expect(wrong.body).toContain('body.decision');
    // The crew confirmed they were going to B: keep that allocation.
    const decided = await w.json<ItemJson>(
      'shift_manager',
      'POST',
      `/api/v1/reconciliation/${item.itemId}/resolve`,
      {
        decision: { action: 'keep_allocation', allocationId: otherAllocation },
        reason: 'Crew confirmed by phone they were on the way to B',
      },
    );
    expect(decided.status).toBe('resolved');
    const afterA = (await w.json<{ visit: VisitJson }>('dispatcher', 'GET', `/api/v1/visits/${a.visitId}`))
      .visit;
    const afterB = (await w.json<{ visit: VisitJson }>('dispatcher', 'GET', `/api/v1/visits/${b.visitId}`))
      .visit;
    expect(afterA).toMatchObject({ vehicleId: null, conflicts: [] });
    expect(afterB).toMatchObject({ vehicleId: car, conflicts: [] });
    const again = await w.clients.shift_manager.request(
      'POST',
      `/api/v1/reconciliation/${item.itemId}/resolve`,
      {
        decision: { action: 'keep_allocation', allocationId: otherAllocation },
        reason: 'again',
      },
    );
    expect(again.statusCode).toBe(409);
    expect(
      (await w.json<{ items: ItemJson[] }>('shift_manager', 'GET', '/api/v1/reconciliation')).items.filter(
        (i) => i.kind === 'double_allocation',
      ),
    ).toEqual([]);
  });
});
