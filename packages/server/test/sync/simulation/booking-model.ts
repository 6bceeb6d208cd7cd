import { DomainError, formatLocal, type Role } from '@holdfast/core';
import fc from 'fast-check';
import { AccountsService } from '../../../src/accounts/service.ts';
import { Auditor } from '../../../src/audit/auditor.ts';
import { DEFAULT_SESSION_POLICY, SessionStore } from '../../../src/auth/sessions.ts';
import { BookingRefusedError, BookingService } from '../../../src/booking/service.ts';
import { bookingDb } from '../../../src/booking/projection.ts';
import { CaseService } from '../../../src/cases/service.ts';
import { openNode } from '../../../src/node/node.ts';
import { PatientService } from '../../../src/patients/service.ts';
import { mulberry32 } from '../../../src/simulate/simulator.ts';
import { registerPeerKey } from '../../../src/sync/engine.ts';
import { SyncUnreachableError } from '../../../src/sync/memory-transport.ts';
import { createSite, ctxFor, syncOnce, type ClinicalNode } from './cluster.ts';
import { SimNetwork } from './network.ts';

/**
 * The booking simulation's commands and model (CONTRACT-16, issue 16 acceptance): a hub, an NHS 111
 * site and two treatment centres, each a real node, booking treatment-centre slots on the faulty
 * in-memory network of network.ts. Each centre's node owns its slots; the centres hand some to the 111
 * site in advance (allocation policies, applied by the centre's timer) and the 111 site gives them
 * back at the cut-off (its timer) or by hand. Nodes book slots they own and, on purpose, slots they do
 * not (the service must refuse: `slot_not_owned_here`), cancel and rebook, while sites are cut off
 * from the hub and nodes crash with bookings in flight. The model records every acknowledged booking
 * and cancellation (the service's promise resolved), independently of any projection.
 */

/** Node indexes: 0 hub, 1 the 111 site, 2 and 3 the centres. */
export const NODE_NAMES = ['hub', 'nhs111', 'centre-a', 'centre-b'] as const;
const BOOKERS = [1, 2, 3] as const;
const CENTRES = [
  { centreId: 'centre-a', node: 2, lat: 53.8, lon: -1.55 },
  { centreId: 'centre-b', node: 3, lat: 53.7, lon: -1.4 },
] as const;

export type BookingCommand =
  | { k: 'book'; node: number; pick: number; ownOnly: boolean }
  | { k: 'cancel'; node: number; pick: number }
  | { k: 'rebook'; node: number; pick: number; slot: number }
  | { k: 'tick'; node: number; minutes: number }
  | { k: 'give_back'; pick: number }
  | { k: 'sync'; sites: number[] }
  | { k: 'partition'; site: number }
  | { k: 'heal'; site: number }
  | { k: 'crash'; node: number; inFlight: number }
  | { k: 'plan'; centre: number; atHome: boolean; hour: number }
  | { k: 'policy'; centre: number; share: number };

// The 111 site books and is cut off more often than the centres: its allocation, booked while it cannot
// see anyone, is the case the scheme exists for.
const booker = fc.constantFrom(1, 1, ...BOOKERS);
const site = fc.constantFrom(1, 1, 2, 3);
export const bookingCommandArb: fc.Arbitrary<BookingCommand> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      k: fc.constant('book' as const),
      node: booker,
      pick: fc.nat(),
      ownOnly: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('cancel' as const), node: booker, pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('rebook' as const), node: booker, pick: fc.nat(), slot: fc.nat() }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('tick' as const),
      node: fc.integer({ min: 0, max: 3 }),
      minutes: fc.integer({ min: 0, max: 240 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('give_back' as const), pick: fc.nat() }) },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('sync' as const),
      sites: fc.uniqueArray(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('partition' as const), site }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('heal' as const), site }) },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('crash' as const),
      node: fc.integer({ min: 0, max: 3 }),
      inFlight: fc.integer({ min: 1, max: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('plan' as const),
      centre: fc.integer({ min: 0, max: 1 }),
      atHome: fc.boolean(),
      hour: fc.integer({ min: 10, max: 21 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('policy' as const),
      centre: fc.integer({ min: 0, max: 1 }),
      share: fc.constantFrom(0, 0.25, 0.5, 1),
    }),
  },
);

export interface BookingScenario {
  netSeed: number;
  /** Each site's clock offset from the hub's. */
  skewMs: number[];
  /** Places per slot (1: any second booking of a slot would be a double booking). */
  patientsPerSlot: number;
  commands: BookingCommand[];
}

export const bookingScenarioArb: fc.Arbitrary<BookingScenario> = fc.record({
  netSeed: fc.integer(),
  skewMs: fc.array(fc.integer({ min: -5_000, max: 5_000 }), { minLength: 3, maxLength: 3 }),
  patientsPerSlot: fc.constantFrom(1, 1, 2),
  commands: fc.array(bookingCommandArb, { minLength: 8, maxLength: 24 }),
});

/** A node with the booking service on it (rebuilt after a crash). */
export interface BookingNode extends ClinicalNode {
  booking: BookingService;
}

export function withBooking(n: ClinicalNode): BookingNode {
  const sessions = new SessionStore(n.node.store, n.clock, DEFAULT_SESSION_POLICY);
  const accounts = new AccountsService(n.node.store, n.node.ledger, sessions, n.node.providerKeys);
  const auditor = new Auditor(n.node.ledger);
  const patients = new PatientService(n.node.store, n.node.ledger, auditor, accounts, {
    tenantFilter: true,
    clock: n.clock,
  });
  const cases = new CaseService(n.node.store, n.node.ledger, n.clock, accounts, auditor);
  const booking = new BookingService(n.node.store, n.node.ledger, n.clock, { cases, patients, accounts });
  return Object.assign(n, { cases, booking });
}

/** What the run did, for the test's assertions and its proof that the faults happened. */
export interface BookingRunOutcome {
  /** Bookings whose `book` answered (the adviser told the patient), with the node that wrote them. */
  acked: { bookingId: string; node: string; slotId: string }[];
  /** Cancellations whose `cancel` (or rebook) answered. */
  ackedCancels: string[];
  /** Every slot id planned in the run. */
  slotIds: string[];
  counts: {
    booked: number;
    bookedWhileCut: number;
    bookedBy111WhileCut: number;
    refusedNotOwned: number;
    refusedFull: number;
    refusedOther: number;
    cancelled: number;
    rebooked: number;
    returned: number;
    allocated: number;
    partitions: number;
    crashes: number;
    crashesWithWorkInFlight: number;
    inFlightLost: number;
  };
  stats: SimNetwork['stats'];
}

const USER = '00000000-0000-4000-8000-0000000000a1';
const ADMIN = '00000000-0000-4000-8000-0000000000a2';

/**
 * A crash with work in flight: the node is told to book (and to run its timer) and is stopped before
 * those calls are awaited — its store closed under them, no checkpoint, no clean drain — then opened
 * again from its files as `holdfast serve` would. Whatever the calls answered before the stop was
 * acknowledged; the rest may or may not have been written, and the patient was not told.
 */
async function crashWithWorkInFlight(
  n: BookingNode,
  work: (() => Promise<unknown>)[],
): Promise<PromiseSettledResult<unknown>[]> {
  // Settled at once (handlers attached before the stop), so a call the stop cuts short is an answer.
  const inFlight = Promise.allSettled(work.map((w) => w()));
  await n.node.close();
  const settled = await inFlight;
  const node = await openNode(n.config, { clock: n.clock });
  Object.assign(n, withBooking(Object.assign(n, { node })));
  return settled;
}

/** Places taken per slot on a node (bookings not cancelled), and each slot's capacity. */
export async function slotLoad(n: BookingNode, tenant: string) {
  return n.node.store.withTenant(tenant, async (trx) => {
    const db = bookingDb(trx);
    const slots = await db
      .selectFrom('booking_slots')
      .select(['slot_id', 'capacity', 'owner_node'])
      .where('tenant', '=', tenant)
      .execute();
    const booked = await db
      .selectFrom('booking_appointments')
      .select(['slot_id', 'booking_id', 'status'])
      .where('tenant', '=', tenant)
      .execute();
    return { slots, booked };
  });
}

/** Slots over capacity on a node (slot ids), by its own projection. */
export async function overCapacity(n: BookingNode, tenant: string): Promise<string[]> {
  const { slots, booked } = await slotLoad(n, tenant);
  const taken = new Map<string, number>();
  for (const b of booked)
    if (b.slot_id !== null && b.status !== 'cancelled') taken.set(b.slot_id, (taken.get(b.slot_id) ?? 0) + 1);
  return slots.filter((s) => (taken.get(s.slot_id) ?? 0) > Number(s.capacity)).map((s) => s.slot_id);
}

export async function runBookingScenario(
  nodes: BookingNode[],
  tenant: string,
  baseMs: number,
  s: BookingScenario,
): Promise<BookingRunOutcome> {
  const hub = nodes[0]!;
  const sites = nodes.slice(1);
  const net = new SimNetwork(mulberry32(s.netSeed));
  const random = mulberry32(s.netSeed ^ 0xb00c);
  hub.clock.set(baseMs);
  sites.forEach((n, i) => n.clock.set(baseMs + s.skewMs[i]!));
  const counts: BookingRunOutcome['counts'] = {
    booked: 0,
    bookedWhileCut: 0,
    bookedBy111WhileCut: 0,
    refusedNotOwned: 0,
    refusedFull: 0,
    refusedOther: 0,
    cancelled: 0,
    rebooked: 0,
    returned: 0,
    allocated: 0,
    partitions: 0,
    crashes: 0,
    crashesWithWorkInFlight: 0,
    inFlightLost: 0,
  };
  const acked: BookingRunOutcome['acked'] = [];
  const ackedCancels: string[] = [];
  const slotIds: string[] = [];

  // Enrolment: the hub vouches for each site, each site pins the hub; the provider's sites.
  await hub.node.ledger.registerSelf(tenant, 'hub');
  for (const n of sites) {
    await n.node.ledger.registerSelf(tenant, 'site');
    await registerPeerKey(hub.node, tenant, n.node.identity.node, n.node.identity.signer.publicKey, 'site');
    await registerPeerKey(n.node, tenant, hub.node.identity.node, hub.node.identity.signer.publicKey, 'hub');
  }
  const siteIds = [
    await createSite(hub, tenant, 'NHS 111 call centre'),
    await createSite(hub, tenant, 'Centre A'),
    await createSite(hub, tenant, 'Centre B'),
  ];
  const ctx = (roles: Role[]) => ctxFor(tenant, USER, roles, siteIds);
  const admin = ctxFor(tenant, ADMIN, ['provider_admin'], siteIds);
  const adviser = ctx(['health_adviser']);
  // Bookings are made by a clinician (the outcome "book an appointment": a 24-hour window), so every
  // slot of the day is within the timeframe and no booking needs a reason.
  const clinician = ctx(['clinician']);

  // The centres, defined at the hub, each homed on its own node; a template; the 111 site's allocation.
  const date = formatLocal(baseMs).slice(0, 10);
  for (const [i, c] of CENTRES.entries()) {
    await hub.booking.defineCentre(admin, {
      centreId: c.centreId,
      siteId: siteIds[i + 1]!,
      name: `Centre ${i === 0 ? 'A' : 'B'} (sample)`,
      address: `${i + 1} Sample Street, Northshire`,
      postcode: 'NS1 1AA',
      lat: c.lat,
      lon: c.lon,
      phone: '0300 000 0000',
      homeNodeId: NODE_NAMES[c.node]!,
      homeNodeName: NODE_NAMES[c.node]!,
      rooms: [{ roomId: 'room-1', name: 'Room 1' }],
    });
    await hub.booking.defineTemplate(admin, c.centreId, {
      templateId: 'quarter',
      name: 'Quarter hour',
      slotMinutes: 15,
      patientsPerSlot: s.patientsPerSlot,
      kinds: ['urgent_face_to_face', 'routine'],
    });
    await hub.booking.setAllocationPolicy(admin, c.centreId, {
      toNodeId: 'nhs111',
      toNodeName: 'NHS 111',
      share: 0.5,
      cutoffMinutesBeforeStart: 60,
    });
  }
  const plan = async (n: BookingNode, centre: number, hour: number) => {
    const startLocal = `${String(hour).padStart(2, '0')}:00`;
    const planned = await n.booking.planSession(admin, CENTRES[centre]!.centreId, {
      templateId: 'quarter',
      roomId: 'room-1',
      clinicianName: 'Dr Sample',
      date,
      startLocal,
      endLocal: `${String(hour + 1).padStart(2, '0')}:00`,
    });
    slotIds.push(...planned.slots.map((x) => x.slotId));
  };
  await plan(hub, 0, 18);
  await plan(hub, 1, 19);

  // Everyone learns the setup; the centres' timers hand the 111 site its allocation.
  const syncSite = async (i: number, faulty = true) => {
    const n = sites[i]!;
    try {
      await syncOnce(n, () => hub, tenant, faulty ? net.link(n.name, hub.name) : undefined);
      return true;
    } catch (error) {
      // Lost requests and answers, partitions: the next round resumes from what is stored.
      if (!(error instanceof SyncUnreachableError)) throw error;
      return false;
    }
  };
  const tick = async (n: BookingNode) => {
    const r = await n.booking.tick(tenant);
    counts.allocated += r.allocated;
    counts.returned += r.returned;
  };
  for (let i = 0; i < sites.length; i++) await syncSite(i, false);
  for (const c of CENTRES) await tick(nodes[c.node]!);
  for (let i = 0; i < sites.length; i++) await syncSite(i, false);

  // One case per booking node, at its own site, whose disposition is bookable (contact primary care
  // within 24 hours): every booking of the run is made for it or for the next one.
  const caseOf = new Map<number, string>();
  const openCase = async (i: number) => {
    const n = nodes[i]!;
    const caseId = await n.cases.open(adviser, {
      siteId: siteIds[i - 1]!,
      answered: true,
      caller: { name: 'Sam Caller', relationship: 'self', callbackNumber: '07700 900123' },
      location: 'At home',
      presentingComplaint: 'Feeling unwell (simulation: not clinically validated)',
    });
    await n.cases.command(adviser, caseId, [
      { type: 'start_triage' },
      { type: 'reach_disposition', kind: 'contact_primary_care', dxCode: 'Dx08' },
    ]);
    caseOf.set(i, caseId);
    return caseId;
  };
  for (const i of BOOKERS) await openCase(i);

  /** Slots in a node's view: all, or only those it owns. */
  const slotsSeen = async (i: number, ownOnly: boolean) => {
    const { slots } = await slotLoad(nodes[i]!, tenant);
    return slots
      .filter((x) => !ownOnly || x.owner_node === NODE_NAMES[i]!)
      .map((x) => x.slot_id)
      .sort();
  };
  const refusal = (error: unknown) => {
    if (error instanceof BookingRefusedError) {
      if (error.reason === 'slot_not_owned_here') counts.refusedNotOwned++;
      else if (error.reason === 'slot_full') counts.refusedFull++;
      else counts.refusedOther++;
      return true;
    }
    if (error instanceof DomainError) {
      counts.refusedOther++;
      return true;
    }
    return false;
  };
  const book = async (i: number, slotId: string) => {
    const n = nodes[i]!;
    n.clock.advance(1 + Math.floor(random() * 1500));
    const answer = await n.booking.book(clinician, caseOf.get(i)!, { slotId });
    acked.push({ bookingId: answer.bookingId, node: NODE_NAMES[i]!, slotId });
    counts.booked++;
    if (net.isCut(n.name)) {
      counts.bookedWhileCut++;
      if (i === 1) counts.bookedBy111WhileCut++;
    }
    return answer;
  };
  /** Bookings the model acknowledged, still standing, that node `i` can see. */
  const standing = async (i: number) => {
    const { booked } = await slotLoad(nodes[i]!, tenant);
    const live = new Set(booked.filter((b) => b.status === 'booked').map((b) => b.booking_id));
    return acked.filter((a) => live.has(a.bookingId) && !ackedCancels.includes(a.bookingId));
  };

  for (const c of s.commands) {
    switch (c.k) {
      case 'book': {
        const seen =
          (await slotsSeen(c.node, c.ownOnly)).length > 0
            ? await slotsSeen(c.node, c.ownOnly)
            : await slotsSeen(c.node, false);
        if (seen.length === 0) break;
        try {
          await book(c.node, seen[c.pick % seen.length]!);
        } catch (error) {
          if (!refusal(error)) throw error;
        }
        break;
      }
      case 'cancel': {
        const mine = await standing(c.node);
        if (mine.length === 0) break;
        const b = mine[c.pick % mine.length]!;
        try {
          await nodes[c.node]!.booking.cancel(clinician, b.bookingId, 'patient feels better (simulation)');
          ackedCancels.push(b.bookingId);
          counts.cancelled++;
        } catch (error) {
          if (!refusal(error)) throw error;
        }
        break;
      }
      case 'rebook': {
        const mine = (await standing(c.node)).filter((a) => a.node === NODE_NAMES[c.node]!);
        const own = await slotsSeen(c.node, true);
        if (mine.length === 0 || own.length === 0) break;
        const b = mine[c.pick % mine.length]!;
        const to = own[c.slot % own.length]!;
        if (to === b.slotId) break;
        try {
          const answer = await nodes[c.node]!.booking.rebook(clinician, b.bookingId, {
            slotId: to,
            reason: 'a later time suits the patient (simulation)',
          });
          ackedCancels.push(b.bookingId);
          acked.push({ bookingId: answer.bookingId, node: NODE_NAMES[c.node]!, slotId: to });
          counts.rebooked++;
        } catch (error) {
          if (!refusal(error)) throw error;
        }
        break;
      }
      case 'tick': {
        const n = nodes[c.node]!;
        n.clock.advance(c.minutes * 60_000);
        await tick(n);
        break;
      }
      case 'give_back': {
        const held = await slotsSeen(1, true);
        if (held.length === 0) break;
        try {
          await nodes[1]!.booking.returnSlots(ctx(['provider_admin']), [held[c.pick % held.length]!]);
          counts.returned++;
        } catch (error) {
          if (!refusal(error)) throw error;
        }
        break;
      }
      case 'sync':
        // Rounds of several sites with the hub at once: delays interleave them (reordering).
        await Promise.all(c.sites.map((i) => syncSite(i - 1)));
        break;
      case 'partition':
        if (!net.isCut(NODE_NAMES[c.site]!)) counts.partitions++;
        net.partition(NODE_NAMES[c.site]!);
        break;
      case 'heal':
        net.heal(NODE_NAMES[c.site]!);
        break;
      case 'crash': {
        const n = nodes[c.node]!;
        const own = c.node === 0 ? [] : await slotsSeen(c.node, true);
        const work: (() => Promise<unknown>)[] = [() => n.booking.tick(tenant)];
        for (let k = 0; k < c.inFlight && own.length > 0; k++) {
          const slotId = own[(k * 7 + c.inFlight) % own.length]!;
          work.push(() => book(c.node, slotId));
        }
        const settled = await crashWithWorkInFlight(n, work);
        counts.crashes++;
        if (work.length > 1) counts.crashesWithWorkInFlight++;
        for (const r of settled.slice(1)) {
          if (r.status === 'rejected') {
            // A refusal is a normal answer; anything else is work the crash cut short (not acknowledged).
            if (!refusal(r.reason)) counts.inFlightLost++;
          }
        }
        break;
      }
      case 'plan': {
        const centre = CENTRES[c.centre]!;
        try {
          await plan(c.atHome ? nodes[centre.node]! : hub, c.centre, c.hour);
        } catch (error) {
          if (!refusal(error)) throw error;
        }
        break;
      }
      case 'policy':
        await hub.booking.setAllocationPolicy(admin, CENTRES[c.centre]!.centreId, {
          toNodeId: 'nhs111',
          toNodeName: 'NHS 111',
          share: c.share,
          cutoffMinutesBeforeStart: 30 + Math.floor(random() * 120),
        });
        break;
    }
    // The invariant at every step, on every node, by its own projection.
    for (const n of nodes) {
      const over = await overCapacity(n, tenant);
      if (over.length > 0)
        throw new Error(`after ${JSON.stringify(c)}: ${n.name} has slots over capacity: ${over.join(', ')}`);
    }
  }

  // Heal: no more faults, every link up, rounds until nothing moves anywhere.
  net.heal();
  net.calm();
  for (let pass = 0; ; pass++) {
    let moved = 0;
    for (const n of sites) {
      const r = await syncOnce(n, () => hub, tenant, net.link(n.name, hub.name));
      moved += r.pulled + r.pushed;
    }
    if (moved === 0 && pass > 0) break;
    if (pass > 20) throw new Error('no quiescence after 20 healed sync passes');
  }
  return { acked, ackedCancels, slotIds, counts, stats: net.stats };
}
