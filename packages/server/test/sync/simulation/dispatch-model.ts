import { DomainError } from '@holdfast/core';
import fc from 'fast-check';
import { mulberry32 } from '../../../src/simulate/simulator.ts';
import { registerPeerKey } from '../../../src/sync/engine.ts';
import { SyncUnreachableError } from '../../../src/sync/memory-transport.ts';
import { createSite, crashAndReopen, syncOnce, type ClinicalNode } from './cluster.ts';
import { dispatchOps, type DispatchOps, type SimCrew } from './dispatch-ops.ts';
import { SimNetwork } from './network.ts';

/**
 * The dispatch simulation's commands and model (issue 17). A hub and sites on the faulty in-memory
 * network; each site dispatches its own visits with its own cars, so in normal work one node writes
 * each car's and each visit's allocations and nothing can collide. A collision is made on purpose:
 * two sites that both see a car (or a visit) free are cut off from everyone, and each allocates it —
 * the car to two visits, or the visit to two cars. The model counts a collision only when both
 * allocations were acknowledged; after healing, each must have become exactly one reconciliation
 * item, and no visit may be lost.
 *
 * A crash stops a node with work in flight: a sync round (or a dispatcher's allocation) is started
 * and not awaited, and the node's store is closed under it; the node is then opened again from its
 * files. Work that was not acknowledged may or may not have landed; the model relies only on what
 * was.
 */

export const DISPATCH_SITES = 3;
/** Cars per site, registered (with crews on shift) before the run's commands start. */
export const CARS_PER_SITE = 2;

export type CollisionVariant = 'car_to_two_visits' | 'visit_to_two_cars';

export type DispatchCommand =
  | { k: 'request'; site: number }
  | { k: 'allocate'; site: number; visit: number; car: number }
  | { k: 'progress'; site: number; pick: number }
  | { k: 'collide'; site: number; other: number; pick: number; variant: CollisionVariant }
  | { k: 'sync'; sites: number[] }
  | { k: 'partition'; site: number }
  | { k: 'heal'; site: number }
  | { k: 'crash'; node: number; inFlight: 'sync' | 'request' | 'none' }
  | { k: 'tick'; site: number; ms: number };

const site = fc.integer({ min: 0, max: DISPATCH_SITES - 1 });
export const dispatchCommandArb: fc.Arbitrary<DispatchCommand> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('request' as const), site }) },
  {
    weight: 4,
    arbitrary: fc.record({ k: fc.constant('allocate' as const), site, visit: fc.nat(), car: fc.nat() }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('progress' as const), site, pick: fc.nat() }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('collide' as const),
      site,
      other: fc.integer({ min: 1, max: DISPATCH_SITES - 1 }),
      pick: fc.nat(),
      variant: fc.constantFrom<CollisionVariant>('car_to_two_visits', 'visit_to_two_cars'),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('sync' as const),
      sites: fc.uniqueArray(site, { minLength: 1, maxLength: DISPATCH_SITES }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('partition' as const), site }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('heal' as const), site }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('crash' as const),
      node: fc.integer({ min: 0, max: DISPATCH_SITES }),
      inFlight: fc.constantFrom('sync' as const, 'request' as const, 'none' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('tick' as const), site, ms: fc.integer({ min: 0, max: 120_000 }) }),
  },
);

export interface DispatchScenario {
  netSeed: number;
  skewMs: number[];
  commands: DispatchCommand[];
}

export const dispatchScenarioArb: fc.Arbitrary<DispatchScenario> = fc.record({
  netSeed: fc.integer(),
  skewMs: fc.array(fc.integer({ min: -5_000, max: 5_000 }), {
    minLength: DISPATCH_SITES,
    maxLength: DISPATCH_SITES,
  }),
  commands: fc.array(dispatchCommandArb, { minLength: 6, maxLength: 14 }),
});

interface ModelVisit {
  visitId: string;
  home: number;
  /** The car the model knows it was allocated to (acknowledged), if any. */
  vehicleId: string | null;
  /** Part of a collision: no more commands on it, and its allocation is the item's to decide. */
  frozen: boolean;
}

interface ModelCar {
  vehicleId: string;
  home: number;
  crew: SimCrew;
  /** The visit it was acknowledged as allocated to, if any. */
  visitId: string | null;
  frozen: boolean;
}

export interface Collision {
  variant: CollisionVariant;
  /** The one car allocated to two visits, or the one visit allocated to two cars. */
  vehicleIds: string[];
  visitIds: string[];
}

export interface DispatchRunOutcome {
  collisions: Collision[];
  /** Every visit whose request was acknowledged. */
  visits: { visitId: string; vehicleId: string | null; frozen: boolean }[];
  acked: { node: string; seq: number; hash: string }[];
  crashes: number;
  inFlightCrashes: number;
  partitions: number;
  stats: SimNetwork['stats'];
}

/** A point near a site (sites are spread over a few tens of km of Northshire). */
function pointNear(home: number, random: () => number): { lat: number; lon: number } {
  return { lat: 53.8 + home * 0.1 + random() * 0.05, lon: -1.6 + home * 0.1 + random() * 0.05 };
}

/**
 * Runs one scenario on the cluster (hub = nodes[0], sites = nodes[1..]) under a fresh tenant, then
 * heals, syncs to quiescence and returns what the model expects.
 */
export async function runDispatchScenario(
  nodes: ClinicalNode[],
  tenant: string,
  baseMs: number,
  s: DispatchScenario,
): Promise<DispatchRunOutcome> {
  const hub = nodes[0]!;
  const sites = nodes.slice(1);
  const net = new SimNetwork(mulberry32(s.netSeed));
  const random = mulberry32(s.netSeed ^ 0xd15c);
  hub.clock.set(baseMs);
  sites.forEach((n, i) => n.clock.set(baseMs + s.skewMs[i]!));
  const ops: DispatchOps = dispatchOps(tenant);

  await hub.node.ledger.registerSelf(tenant, 'hub');
  const siteIds: string[] = [];
  for (const n of sites) {
    await n.node.ledger.registerSelf(tenant, 'site');
    await registerPeerKey(hub.node, tenant, n.node.identity.node, n.node.identity.signer.publicKey, 'site');
    await registerPeerKey(n.node, tenant, hub.node.identity.node, hub.node.identity.signer.publicKey, 'hub');
    siteIds.push(await createSite(n, tenant, `Site ${n.name}`));
  }

  const acked: DispatchRunOutcome['acked'] = [];
  const ack = async (n: ClinicalNode) => {
    const head = await n.node.ledger.head(tenant);
    const [e] = await n.node.ledger.readChain(tenant, n.node.identity.node, head.seq, head.seq);
    acked.push({ node: n.node.identity.node, seq: head.seq, hash: e!.hash });
  };
  const syncSite = async (i: number) => {
    const n = sites[i]!;
    try {
      await syncOnce(n, () => hub, tenant, net.link(n.name, hub.name));
    } catch (error) {
      if (!(error instanceof SyncUnreachableError)) throw error;
    }
  };

  // Each site's cars, crewed for the whole run, registered at the site; everyone learns of them.
  const cars: ModelCar[] = [];
  for (let i = 0; i < sites.length; i++) {
    const n = sites[i]!;
    n.clock.advance(1 + Math.floor(random() * 500));
    const registered = await ops.registerCrewedCars(n, {
      siteId: siteIds[i]!,
      cars: Array.from({ length: CARS_PER_SITE }, (_, c) => ({
        callSign: `S${i + 1}-${c + 1}`,
        base: pointNear(i, random),
      })),
      fromMs: baseMs - 3_600_000,
      toMs: baseMs + 12 * 3_600_000,
    });
    await ack(n);
    for (const car of registered) cars.push({ ...car, home: i, visitId: null, frozen: false });
  }
  for (let round = 0; round < 2; round++) for (let i = 0; i < sites.length; i++) await syncSite(i);

  const visits: ModelVisit[] = [];
  const collisions: Collision[] = [];
  let crashes = 0;
  let inFlightCrashes = 0;
  let partitions = 0;

  const requestVisit = async (i: number): Promise<ModelVisit | null> => {
    const n = sites[i]!;
    n.clock.advance(1 + Math.floor(random() * 1500));
    const visitId = await ops.requestVisit(n, {
      siteId: siteIds[i]!,
      at: pointNear(i, random),
      deadlineMs: n.clock.nowMs() + (1 + Math.floor(random() * 4)) * 3_600_000,
      priority: 1 + Math.floor(random() * 3),
    });
    await ack(n);
    const v: ModelVisit = { visitId, home: i, vehicleId: null, frozen: false };
    visits.push(v);
    return v;
  };

  /** A dispatcher's allocation at a site; true when acknowledged, false when the node refused it. */
  const allocate = async (i: number, visit: ModelVisit, car: ModelCar): Promise<boolean> => {
    const n = sites[i]!;
    n.clock.advance(1 + Math.floor(random() * 1500));
    try {
      await ops.allocate(n, visit.visitId, car.vehicleId);
      await ack(n);
      return true;
    } catch (error) {
      if (error instanceof DomainError) return false;
      throw error;
    }
  };

  const freeCars = (i: number) => cars.filter((c) => c.home === i && !c.frozen && c.visitId === null);
  const openVisits = (i: number) => visits.filter((v) => v.home === i && !v.frozen && v.vehicleId === null);

  for (const c of s.commands) {
    switch (c.k) {
      case 'request':
        await requestVisit(c.site);
        break;
      case 'allocate': {
        const open = openVisits(c.site);
        const free = freeCars(c.site);
        if (open.length === 0 || free.length === 0) break;
        const visit = open[c.visit % open.length]!;
        const car = free[c.car % free.length]!;
        if (await allocate(c.site, visit, car)) {
          visit.vehicleId = car.vehicleId;
          car.visitId = visit.visitId;
        }
        break;
      }
      case 'progress': {
        // The crew of an allocated car moves it on; the last step finishes the visit and frees the car.
        const busy = cars.filter((x) => x.home === c.site && !x.frozen && x.visitId !== null);
        if (busy.length === 0) break;
        const car = busy[c.pick % busy.length]!;
        const n = sites[c.site]!;
        n.clock.advance(1 + Math.floor(random() * 1500));
        try {
          const finished = await ops.progress(n, car, car.visitId!);
          await ack(n);
          if (finished) {
            car.visitId = null;
          }
        } catch (error) {
          if (!(error instanceof DomainError)) throw error;
        }
        break;
      }
      case 'collide': {
        const home = c.site;
        const other = (c.site + c.other) % DISPATCH_SITES;
        const [a, b] = [sites[home]!, sites[other]!];
        // The pieces: for a car to two visits, a free car of the home site, a visit of each site;
        // for a visit to two cars, a visit of the home site and a free car of each site.
        const carA = freeCars(home)[c.pick % Math.max(1, freeCars(home).length)];
        if (!carA) break;
        const visitA =
          openVisits(home)[c.pick % Math.max(1, openVisits(home).length)] ?? (await requestVisit(home));
        let visitB: ModelVisit | undefined;
        let carB: ModelCar | undefined;
        if (c.variant === 'car_to_two_visits') {
          visitB = openVisits(other)[c.pick % Math.max(1, openVisits(other).length)] ?? undefined;
          visitB ??= (await requestVisit(other)) ?? undefined;
        } else {
          carB = freeCars(other)[c.pick % Math.max(1, freeCars(other).length)];
          if (!carB) break;
        }
        if (!visitA || (!visitB && !carB)) break;
        // Both sites learn the latest (through the faulty network: a lost round leaves them apart and
        // the collision is not tried), then are cut off from everyone before acting.
        net.heal(a.name);
        net.heal(b.name);
        await syncSite(home);
        await syncSite(other);
        await syncSite(home);
        const seenFree = async (n: ClinicalNode) => {
          const seen = await ops.view(n);
          return (
            seen.freeCars.has(carA.vehicleId) &&
            seen.unallocated.has(visitA.visitId) &&
            (visitB ? seen.unallocated.has(visitB.visitId) : seen.freeCars.has(carB!.vehicleId))
          );
        };
        if (!(await seenFree(a)) || !(await seenFree(b))) break;
        // Both know the same dispatch history (a lost round can leave one with an older view of a
        // car's allocations, which would make a different, though also real, collision).
        if (JSON.stringify(await ops.dump(a)) !== JSON.stringify(await ops.dump(b))) break;
        net.partition(a.name);
        net.partition(b.name);
        partitions++;
        for (const x of [carA, visitA, visitB, carB]) if (x) x.frozen = true;
        let okA: boolean;
        let okB: boolean;
        if (visitB) {
          okA = await allocate(home, visitA, carA);
          okB = await allocate(other, visitB, carA);
        } else {
          okA = await allocate(home, visitA, carA);
          okB = await allocate(other, visitA, carB!);
        }
        if (okA && okB) {
          collisions.push({
            variant: c.variant,
            vehicleIds: visitB ? [carA.vehicleId] : [carA.vehicleId, carB!.vehicleId],
            visitIds: visitB ? [visitA.visitId, visitB.visitId] : [visitA.visitId],
          });
        } else if (okA || okB) {
          // Only one landed: an ordinary allocation, known to the model but frozen with the rest.
          const [visit, car] = okA ? [visitA, carA] : visitB ? [visitB, carA] : [visitA, carB!];
          visit.vehicleId = car.vehicleId;
          car.visitId = visit.visitId;
        }
        break;
      }
      case 'sync':
        await Promise.all(c.sites.map((i) => syncSite(i)));
        break;
      case 'partition':
        net.partition(sites[c.site]!.name);
        partitions++;
        break;
      case 'heal':
        net.heal(sites[c.site]!.name);
        break;
      case 'crash': {
        const n = nodes[c.node]!;
        crashes++;
        // Work in flight: started, not awaited, when the store is closed under it. It may land or not;
        // nothing of it was acknowledged, so the model does not count on it either way.
        let inFlight: Promise<unknown> | null = null;
        if (c.inFlight === 'sync') {
          const i = c.node === 0 ? 0 : c.node - 1;
          inFlight = syncOnce(sites[i]!, () => hub, tenant, net.link(sites[i]!.name, hub.name)).catch(
            () => undefined,
          );
        } else if (c.inFlight === 'request' && c.node > 0) {
          // A request for a visit the model never learns of (its answer is lost with the crash).
          inFlight = ops
            .requestVisit(n, {
              siteId: siteIds[c.node - 1]!,
              at: pointNear(c.node - 1, random),
              deadlineMs: n.clock.nowMs() + 3_600_000,
              priority: 2,
            })
            .catch(() => undefined);
        }
        if (inFlight) {
          inFlightCrashes++;
          // Let it get part of the way (into its first await), then pull the plug.
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        await crashAndReopen(n);
        await inFlight;
        break;
      }
      case 'tick':
        sites[c.site]!.clock.advance(c.ms);
        break;
    }
  }

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
  return {
    collisions,
    visits: visits.map((v) => ({ visitId: v.visitId, vehicleId: v.vehicleId, frozen: v.frozen })),
    acked,
    crashes,
    inFlightCrashes,
    partitions,
    stats: net.stats,
  };
}
