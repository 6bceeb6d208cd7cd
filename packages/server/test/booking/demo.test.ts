import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedDemoCentres } from '../../src/booking/demo.ts';
import { BookingWorld, type SlotJson } from './support.ts';

/** The demo's two treatment centres (`holdfast start`): defined, homed on the node, with a diary. */
describe('demo treatment centres', () => {
  const w = new BookingWorld();
  beforeAll(async () => {
    await w.start('sqlite');
  });
  afterAll(async () => {
    await w.stop();
  });

  it('two centres with morning and evening sessions for the next days, owned by this node', async () => {
    expect(await seedDemoCentres(w.t.node, 'northshire', w.site)).toBe(2);
    const { centres } = await w.json<{ centres: { centreId: string; homeNodeId: string }[] }>(
      w.clients.manager,
      'GET',
      '/api/v1/centres',
    );
    expect(centres.map((c) => c.centreId).sort()).toEqual(['northtown-tc', 'southport-tc']);
    expect(centres.every((c) => c.homeNodeId === w.nodeId)).toBe(true);
    for (const date of ['2026-11-29', '2026-12-02']) {
      const diary = await w.json<{ slots: SlotJson[] }>(
        w.clients.manager,
        'GET',
        `/api/v1/centres/southport-tc/diary?date=${date}`,
      );
      // 10:00–12:00 and 18:30–22:30 in 15-minute slots.
      expect(diary.slots).toHaveLength(8 + 16);
      expect(diary.slots[0]!.startLocal).toBe(`${date} 10:00`);
      expect(diary.slots.every((s) => s.bookableHere)).toBe(true);
    }
  });
});
