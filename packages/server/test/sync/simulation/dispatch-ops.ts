import { randomUUID } from 'node:crypto';
import { AccountsService } from '../../../src/accounts/service.ts';
import { Auditor } from '../../../src/audit/auditor.ts';
import { DEFAULT_SESSION_POLICY, SessionStore } from '../../../src/auth/sessions.ts';
import { CaseService } from '../../../src/cases/service.ts';
import { dispatchReconciliationSource } from '../../../src/dispatch/reconciliation.ts';
import { DispatchService } from '../../../src/dispatch/service.ts';
import { HandoverService } from '../../../src/handover/service.ts';
import { MessagingService } from '../../../src/messaging/service.ts';
import type { EventDraft } from '../../../src/ledger/ledger.ts';
import type { HoldfastNode } from '../../../src/node/node.ts';
import { PatientService } from '../../../src/patients/service.ts';
import { ReconciliationService } from '../../../src/reconciliation/service.ts';
import { RotaService } from '../../../src/rota/service.ts';
import { ctxFor, type ClinicalNode } from './cluster.ts';

/**
 * The dispatch simulation's hands on a node: the real DispatchService (with the rota, cases,
 * patients and handover services it uses), built on the node as it is now — after a simulated crash
 * the node is a new object, and so are its services.
 *
 * Set-up that is not under test goes straight to the node's ledger, as the web seed does: the cars,
 * their crews' shifts and first status, and the visit requests (`visit.requested`, for a case opened through
 * the real CaseService; the clinician's outcome path that creates visits is tested in
 * test/dispatch/). Everything the simulation checks — allocation, the crews' steps, the items and
 * their decisions — goes through the service.
 */

export interface SimCrew {
  driverId: string;
  clinicianId: string;
  siteId: string;
}

export interface SimVisitView {
  visitId: string;
  vehicleId: string | null;
  /** Still open (not completed or cancelled). */
  active: boolean;
}

export interface SimItem {
  itemId: string;
  kind: string;
  vehicleIds: string[];
  visitIds: string[];
  allocationIds: string[];
  /** The allocation that stands while the item is open. */
  standing: string;
}

interface Services {
  dispatch: DispatchService;
  reconciliation: ReconciliationService;
  cases: CaseService;
  accounts: AccountsService;
}

const DISPATCHER = '00000000-0000-4000-8000-00000000d150';
const MANAGER = '00000000-0000-4000-8000-0000000000aa';
const CLINICIAN = '00000000-0000-4000-8000-00000000c111';

const built = new WeakMap<HoldfastNode, Services>();

function servicesOf(n: ClinicalNode): Services {
  const known = built.get(n.node);
  if (known) return known;
  const { node, clock } = n;
  const sessions = new SessionStore(node.store, clock, DEFAULT_SESSION_POLICY);
  const accounts = new AccountsService(node.store, node.ledger, sessions, node.providerKeys);
  const auditor = new Auditor(node.ledger);
  const patients = new PatientService(node.store, node.ledger, auditor, accounts, {
    tenantFilter: true,
    clock,
  });
  const cases = new CaseService(node.store, node.ledger, clock, accounts, auditor);
  const messaging = new MessagingService(node.store, node.ledger, clock);
  const handover = new HandoverService(node.store, node.ledger, clock, messaging, patients, cases);
  const rota = new RotaService(node.store, node.ledger, clock, accounts);
  const dispatch = new DispatchService(node.store, node.ledger, clock, {
    rota,
    cases,
    patients,
    accounts,
    auditor,
    handover,
    locate: () => Promise.resolve(null),
  });
  // Double allocations are listed and decided in the reconciliation list, as node.ts wires it.
  const reconciliation = new ReconciliationService(node.store, node.ledger, auditor);
  reconciliation.addSource(dispatchReconciliationSource(dispatch));
  const services = { dispatch, reconciliation, cases, accounts };
  built.set(n.node, services);
  return services;
}

export function dispatchOps(tenant: string) {
  const dispatcher = (siteIds: string[]) => ctxFor(tenant, DISPATCHER, ['dispatcher'], siteIds);
  const allSites = async (n: ClinicalNode) =>
    (await servicesOf(n).accounts.sites(tenant)).map((site) => site.siteId);
  const manager = (siteIds: string[]) => ctxFor(tenant, MANAGER, ['shift_manager'], siteIds);
  const crewCtx = (crew: SimCrew, who: 'driver' | 'clinician') =>
    who === 'driver'
      ? ctxFor(tenant, crew.driverId, ['driver'], [crew.siteId])
      : ctxFor(tenant, crew.clinicianId, ['clinician'], [crew.siteId]);

  return {
    /**
     * A site's cars, each with a driver and a clinician on shift on it for [fromMs, toMs) who have
     * said from the phone that it is available: set-up, written as the events the vehicles and rota
     * routes and the crew's phone would write, in one commit.
     */
    async registerCrewedCars(
      n: ClinicalNode,
      input: {
        siteId: string;
        cars: { callSign: string; base: { lat: number; lon: number } }[];
        fromMs: number;
        toMs: number;
      },
    ): Promise<{ vehicleId: string; crew: SimCrew }[]> {
      const out: { vehicleId: string; crew: SimCrew }[] = [];
      const drafts: EventDraft[] = [];
      const now = n.clock.nowMs();
      for (const car of input.cars) {
        const vehicleId = randomUUID();
        const crew: SimCrew = { driverId: randomUUID(), clinicianId: randomUUID(), siteId: input.siteId };
        drafts.push({
          tenant,
          type: 'vehicle.registered',
          actor: `user:${MANAGER}`,
          payload: {
            vehicleId,
            callSign: car.callSign,
            registration: `SIM ${car.callSign}`,
            baseSiteId: input.siteId,
            baseLat: car.base.lat,
            baseLon: car.base.lon,
          },
        });
        for (const role of ['driver', 'clinician'] as const)
          drafts.push({
            tenant,
            type: 'rota.shift_planned',
            actor: `user:${MANAGER}`,
            payload: {
              shiftId: randomUUID(),
              userId: role === 'driver' ? crew.driverId : crew.clinicianId,
              userName: `${role}-${car.callSign.toLowerCase()}@sim`,
              role,
              location: { kind: 'car', id: vehicleId },
              startMs: input.fromMs,
              endMs: input.toMs,
              source: 'entered',
            },
          });
        drafts.push({
          tenant,
          type: 'vehicle.status_changed',
          actor: `user:${crew.driverId}`,
          payload: { vehicleId, status: 'available', visitId: null, atMs: now },
        });
        out.push({ vehicleId, crew });
      }
      await n.node.ledger.append(drafts);
      return out;
    },

    /** A call at the site (a real case) and its home visit. */
    async requestVisit(
      n: ClinicalNode,
      input: { siteId: string; at: { lat: number; lon: number }; deadlineMs: number; priority: number },
    ): Promise<string> {
      const { cases } = servicesOf(n);
      const caseId = await cases.open(ctxFor(tenant, CLINICIAN, ['health_adviser'], [input.siteId]), {
        siteId: input.siteId,
        answered: true,
        caller: { name: 'Sam Caller', relationship: 'self', callbackNumber: '07700 900123' },
        location: 'At home',
        presentingComplaint: 'Feeling unwell',
      });
      const visitId = randomUUID();
      const now = n.clock.nowMs();
      await n.node.ledger.append([
        {
          tenant,
          type: 'visit.requested',
          actor: `user:${CLINICIAN}`,
          payload: {
            visitId,
            caseId,
            patientId: randomUUID(),
            siteId: input.siteId,
            address: {
              text: '1 Simulated Street',
              postcode: 'NS1 1AA',
              lat: input.at.lat,
              lon: input.at.lon,
            },
            accessInstructions: 'Key safe 0000 (simulated, not clinically validated)',
            reason: 'Simulated home visit (not clinically validated)',
            withinHours: Math.max(1, Math.round((input.deadlineMs - now) / 3_600_000)),
            deadlineMs: input.deadlineMs,
            priority: input.priority,
            requestedBy: CLINICIAN,
            atMs: now,
          },
        },
      ]);
      return visitId;
    },

    async allocate(n: ClinicalNode, visitId: string, vehicleId: string): Promise<void> {
      await servicesOf(n).dispatch.allocate(dispatcher(await allSites(n)), visitId, vehicleId);
    },

    /**
     * The crew moves their car on one step for its visit: travelling, on scene, then the outcome
     * ("seen"), which frees the car. True when the visit was finished.
     */
    async progress(
      n: ClinicalNode,
      car: { vehicleId: string; crew: SimCrew },
      visitId: string,
    ): Promise<boolean> {
      const { dispatch } = servicesOf(n);
      const me = (await dispatch.crewMe(crewCtx(car.crew, 'driver'))).vehicle;
      if (!me || me.visitId !== visitId) return false;
      if (me.status === 'allocated') {
        await dispatch.crewStatus(crewCtx(car.crew, 'driver'), 'travelling');
        return false;
      }
      if (me.status === 'travelling') {
        await dispatch.crewStatus(crewCtx(car.crew, 'driver'), 'on_scene');
        return false;
      }
      await dispatch.recordOutcome(crewCtx(car.crew, 'clinician'), visitId, {
        outcome: 'seen',
        note: 'simulated',
      });
      return true;
    },

    /** What a dispatcher at the node sees: which cars are free and which visits have no car. */
    async view(n: ClinicalNode): Promise<{ freeCars: Set<string>; unallocated: Set<string> }> {
      const cars = await servicesOf(n).dispatch.vehicles(dispatcher(await allSites(n)));
      const visits = await this.visits(n);
      return {
        freeCars: new Set(
          cars
            .filter((c) => c.available && c.visitId === null && c.queuedVisitIds.length === 0)
            .map((c) => c.vehicleId),
        ),
        unallocated: new Set(visits.filter((v) => v.active && v.vehicleId === null).map((v) => v.visitId)),
      };
    },

    async visits(n: ClinicalNode): Promise<SimVisitView[]> {
      const views = await servicesOf(n).dispatch.visits(dispatcher(await allSites(n)), { state: 'all' });
      return views.map((v) => ({
        visitId: v.visitId,
        vehicleId: v.vehicleId,
        active: v.status !== 'completed' && v.status !== 'cancelled',
      }));
    },

    /** The open items of the reconciliation list, as the shift manager sees them. */
    async openItems(n: ClinicalNode): Promise<SimItem[]> {
      const { reconciliation } = servicesOf(n);
      const listed = await reconciliation.listAll(manager(await allSites(n)), { status: 'open' });
      return listed.map((item) => {
        const allocations = ((item as { allocations?: unknown }).allocations ?? []) as {
          allocationId: string;
          vehicleId: string;
          visitId: string;
          standsNow: boolean;
        }[];
        return {
          itemId: item.itemId,
          kind: item.kind,
          vehicleIds: [...new Set(allocations.map((a) => a.vehicleId))],
          visitIds: [...new Set(allocations.map((a) => a.visitId))],
          allocationIds: allocations.map((a) => a.allocationId),
          standing: allocations.find((a) => a.standsNow)?.allocationId ?? allocations[0]?.allocationId ?? '',
        };
      });
    },

    /** The shift manager keeps the allocation that stands now (the first in ledger order). */
    async resolve(n: ClinicalNode, item: SimItem): Promise<void> {
      n.clock.advance(1000);
      // The route parses the body with the source's decision schema; the service takes it as parsed.
      const decision: { action: string; allocationId: string } = {
        action: 'keep_allocation',
        allocationId: item.standing,
      };
      await servicesOf(n).reconciliation.resolve(manager(await allSites(n)), item.itemId, {
        decision,
        reason: 'checked with the crews: end of simulated shift',
      });
    },

    /** Every dispatch projection row, sorted, without store-local columns. */
    async dump(n: ClinicalNode) {
      const db = n.node.store.db as unknown as {
        selectFrom(t: string): {
          selectAll(): {
            where(c: string, op: string, v: string): { execute(): Promise<Record<string, unknown>[]> };
          };
        };
      };
      // JSON held in a column is compared as data: the node that wrote an event stores its payload
      // as it was built, the others as it arrived (canonical JSON, keys sorted).
      const value = (v: unknown) =>
        typeof v === 'bigint' ? Number(v) : typeof v === 'string' && v.startsWith('{') ? sortedJson(v) : v;
      const rows = async (table: string) =>
        (await db.selectFrom(table).selectAll().where('tenant', '=', tenant).execute())
          .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, value(v)])))
          .map((r) => JSON.stringify(r))
          .sort();
      return {
        vehicles: await rows('dispatch_vehicles'),
        positions: await rows('dispatch_positions'),
        visits: await rows('dispatch_visits'),
        allocations: await rows('dispatch_allocations'),
        decisions: await rows('dispatch_decisions'),
        shifts: await rows('rota_shifts'),
      };
    },
  };
}

export type DispatchOps = ReturnType<typeof dispatchOps>;

function sortedJson(text: string): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.entries(v as Record<string, unknown>)
              .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
              .map(([k, x]) => [k, sort(x)]),
          )
        : v;
  return JSON.stringify(sort(JSON.parse(text)));
}
