import type { EventDraft } from '../ledger/ledger.ts';
import type { HoldfastNode } from '../node/node.ts';
import { nameBasedUuid } from '../node/ids.ts';

const HOUR_MS = 3_600_000;
/** Shifts of this length, back to back from just before the first start. */
const SHIFT_HOURS = 12;
/** How many days of crew shifts the demo gets, from the first start (as the demo diaries). */
const DEMO_ROTA_DAYS = 4;

interface DemoCar {
  callSign: string;
  registration: string;
  /** Index into the site ids given (0: the call centre, 1: the treatment centre). */
  site: number;
  base: { lat: number; lon: number };
  /** Where the car last said it was. */
  at: { lat: number; lon: number };
  /** The made-up crew on shift; a car with a driver only is shown as not offered. */
  crew: { role: 'driver' | 'clinician'; name: string }[];
}

/**
 * Sample data, not real vehicles or people: the call signs, registrations, crews and positions are
 * invented (near the demo treatment centres), so that a dispatcher opening the board of a new demo
 * sees cars on the map and in the lists.
 */
export const DEMO_CARS: readonly DemoCar[] = [
  {
    callSign: 'DEMO-1 (sample)',
    registration: 'SAMPLE 1',
    site: 1,
    base: { lat: 53.96, lon: -1.52 },
    at: { lat: 53.985, lon: -1.49 },
    crew: [
      { role: 'driver', name: 'Sample driver Sam Reed (demo, not a real person)' },
      { role: 'clinician', name: 'Sample clinician Jo Marsh (demo, not a real person)' },
    ],
  },
  {
    callSign: 'DEMO-2 (sample)',
    registration: 'SAMPLE 2',
    site: 0,
    base: { lat: 54.08, lon: -1.44 },
    at: { lat: 54.06, lon: -1.47 },
    crew: [
      { role: 'driver', name: 'Sample driver Alex Dunn (demo, not a real person)' },
      { role: 'clinician', name: 'Sample clinician Ravi Shah (demo, not a real person)' },
    ],
  },
  {
    callSign: 'DEMO-3 (sample)',
    registration: 'SAMPLE 3',
    site: 1,
    base: { lat: 53.96, lon: -1.52 },
    at: { lat: 53.96, lon: -1.52 },
    // No clinician on shift: the board shows the car as not offered (the rota rule).
    crew: [{ role: 'driver', name: 'Sample driver Kim Lowe (demo, not a real person)' }],
  },
];

/** A demo car's id (name-based). */
export function demoVehicleId(car: Pick<DemoCar, 'callSign'>): string {
  return nameBasedUuid(`demo-vehicle-${car.callSign}`);
}

/**
 * The demo provider's home-visit cars (C7) and their crews on the rota (C12): three sample cars, two
 * crewed now by a made-up driver and clinician and one with a driver only, each with a last
 * position, and back-to-back 12-hour crew shifts from the first start for the next days. The crew
 * are names on the rota, not accounts: the demo's own driver account gets a car the way a shift
 * manager gives one (a shift on the rota screen). Ids are name-based, as the demo diaries' are.
 */
export async function seedDemoFleet(
  node: HoldfastNode,
  tenant: string,
  siteIds: readonly string[],
): Promise<number> {
  const actor = `node:${node.identity.node}`;
  const now = node.clock.nowMs();
  const firstStart = Math.floor(now / HOUR_MS) * HOUR_MS - HOUR_MS;
  const drafts: EventDraft[] = [];
  for (const car of DEMO_CARS) {
    const vehicleId = demoVehicleId(car);
    drafts.push({
      tenant,
      type: 'vehicle.registered',
      actor,
      payload: {
        vehicleId,
        callSign: car.callSign,
        registration: car.registration,
        baseSiteId: siteIds[Math.min(car.site, siteIds.length - 1)]!,
        baseLat: car.base.lat,
        baseLon: car.base.lon,
      },
    });
    drafts.push({
      tenant,
      type: 'vehicle.position_reported',
      actor,
      payload: { vehicleId, lat: car.at.lat, lon: car.at.lon, accuracyM: 25, atMs: now },
    });
    for (const member of car.crew) {
      const userId = nameBasedUuid(`demo-crew-${member.name}`);
      for (let i = 0; i < (DEMO_ROTA_DAYS * 24) / SHIFT_HOURS; i++) {
        const startMs = firstStart + i * SHIFT_HOURS * HOUR_MS;
        drafts.push({
          tenant,
          type: 'rota.shift_planned',
          actor,
          payload: {
            shiftId: nameBasedUuid(`demo-shift-${car.callSign}-${member.role}-${startMs}`),
            userId,
            userName: member.name,
            role: member.role,
            location: { kind: 'car', id: vehicleId },
            startMs,
            endMs: startMs + SHIFT_HOURS * HOUR_MS,
            source: 'entered',
          },
        });
      }
    }
  }
  await node.ledger.append(drafts);
  return DEMO_CARS.length;
}
