import {
  addLocalDays,
  formatLocal,
  generateSlots,
  type DiarySession,
  type SlotTemplate,
} from '@holdfast/core';
import type { EventDraft } from '../ledger/ledger.ts';
import type { HoldfastNode } from '../node/node.ts';
import { nameBasedUuid } from '../node/ids.ts';
import type { CentreDefined, SessionPlanned } from './events.ts';

/** How many days of diary the demo gets, from today. */
const DEMO_DIARY_DAYS = 4;

const TEMPLATE: SlotTemplate = {
  templateId: 'urgent-15',
  name: 'Urgent face to face, 15 minutes',
  slotMinutes: 15,
  patientsPerSlot: 1,
  kinds: ['urgent_face_to_face', 'routine', 'dressing', 'prescription_collection'],
};

/**
 * Two made-up treatment centres of the demo provider (demo data: the names, addresses and positions
 * are invented), homed on this node, each with a morning and an evening session for the next days.
 */
export async function seedDemoCentres(node: HoldfastNode, tenant: string, siteId: string): Promise<number> {
  const actor = `node:${node.identity.node}`;
  const home = node.identity.node;
  const centres: CentreDefined[] = [
    {
      centreId: 'southport-tc',
      siteId,
      name: 'Southport OOH Treatment Centre (demo)',
      address: 'Demo Hospital, 2 Harbour Road, Southport',
      postcode: 'NS9 2TC',
      lat: 53.96,
      lon: -1.52,
      phone: '01632 960500',
      homeNodeId: home,
      homeNodeName: 'Southport OOH (this node)',
      rooms: [
        { roomId: 'room-1', name: 'Room 1' },
        { roomId: 'room-2', name: 'Room 2' },
      ],
      timeframeNote: null,
    },
    {
      centreId: 'northtown-tc',
      siteId,
      name: 'Northtown Urgent Treatment Centre (demo)',
      address: 'Demo Health Centre, 14 Mill Lane, Northtown',
      postcode: 'NS2 4UT',
      lat: 54.08,
      lon: -1.44,
      phone: '01632 960600',
      homeNodeId: home,
      homeNodeName: 'Northtown UTC (this node)',
      rooms: [{ roomId: 'room-1', name: 'Room 1' }],
      timeframeNote: null,
    },
  ];
  const drafts: EventDraft[] = [];
  const today = formatLocal(node.clock.nowMs()).slice(0, 10);
  for (const c of centres) {
    drafts.push({ tenant, type: 'booking.centre_defined', actor, payload: { ...c } });
    drafts.push({
      tenant,
      type: 'booking.template_defined',
      actor,
      payload: { centreId: c.centreId, template: TEMPLATE },
    });
    for (let day = 0; day < DEMO_DIARY_DAYS; day++) {
      const date = addLocalDays(today, day);
      for (const [startLocal, endLocal] of [
        ['10:00', '12:00'],
        ['18:30', '22:30'],
      ] as const) {
        const session: DiarySession = {
          // Stable ids, so two demo nodes plan the same sessions.
          sessionId: nameBasedUuid(`demo-session-${c.centreId}-${date}-${startLocal}`),
          centreId: c.centreId,
          roomId: 'room-1',
          clinicianId: null,
          clinicianName: 'Demo clinician',
          date,
          startLocal,
          endLocal,
          template: TEMPLATE,
        };
        const slots = generateSlots(session);
        const payload: SessionPlanned = {
          centreId: c.centreId,
          session,
          homeNodeId: home,
          slots: slots.map((s) => ({
            slotId: s.slotId,
            startMs: s.startMs,
            endMs: s.endMs,
            startLocal: s.startLocal,
          })),
        };
        drafts.push({ tenant, type: 'booking.session_planned', actor, payload: { ...payload } });
      }
    }
  }
  await node.ledger.append(drafts);
  return centres.length;
}
