import { randomUUID } from 'node:crypto';
import {
  BUSY_VEHICLE_STATUSES,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ValidationError,
  caseListSites,
  compareVisits,
  crewOf,
  estimateBusyUntilMs,
  greatCircleKm,
  mayReadVisitAccessInstructions,
  suggestCars,
  visitTiming,
  caseReference,
  VEHICLE_STATUS_LABELS,
  type Role,
  type CarForSuggestion,
  type CarSuggestion,
  type Clock,
  type Shift,
  type StoredEvent,
  type VehicleStatus,
  type VisitOutcome,
} from '@holdfast/core';
import { formatLondonDateTime } from '@holdfast/core/queue/priority';
import type { AccountsService } from '../accounts/service.ts';
import { accessEvent, type Auditor } from '../audit/auditor.ts';
import type { CaseService, CommandOutcome } from '../cases/service.ts';
import type { HandoverService } from '../handover/service.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { PatientService } from '../patients/service.ts';
import type { PackDispatch } from '../downtime/pack-data.ts';
import type { RotaService } from '../rota/service.ts';
import type { Store, Tx } from '../store/store.ts';
import {
  allocationState,
  ledgerOrder,
  type AllocationItem,
  type AllocationRow,
  type AllocationState,
} from './allocations.ts';
import { livePosition, type VehicleRegistered, type VisitRequested } from './events.ts';
import {
  dispatchDb,
  type DispatchAllocationsTable,
  type DispatchPositionsTable,
  type DispatchVisitsTable,
} from './projection.ts';

const HOUR_MS = 3_600_000;
/** Position reports: at most one per car per this many ms, unless the car moved more than POSITION_MIN_MOVE_M. */
export const POSITION_MIN_INTERVAL_MS = 15_000;
export const POSITION_MIN_MOVE_M = 200;
/** Allocations older than this are not read for the board unless their visit is still open. */
const RECENT_MS = 3 * 24 * HOUR_MS;

export interface VehicleView {
  vehicleId: string;
  callSign: string;
  registration: string;
  baseSiteId: string;
  baseLat: number;
  baseLon: number;
  retired: boolean;
  status: VehicleStatus;
  statusAtMs: number | null;
  /** The visit the car is working now (the first of its allocated open visits), or null. */
  visitId: string | null;
  queuedVisitIds: string[];
  lat: number | null;
  lon: number | null;
  positionAtMs: number | null;
  positionAgeMs: number | null;
  accuracyM: number | null;
  crew: {
    driver: string | null;
    clinician: string | null;
    driverUserId: string | null;
    clinicianUserId: string | null;
  };
  /** Both a driver and a clinician are on shift on the car: only then is it offered for dispatch. */
  available: boolean;
}

export type VisitStatus = 'requested' | 'allocated' | 'travelling' | 'on_scene' | 'completed' | 'cancelled';

export interface VisitView {
  visitId: string;
  caseId: string;
  siteId: string;
  status: VisitStatus;
  reason: string;
  withinHours: number;
  priority: number;
  deadlineMs: number;
  deadline: string;
  requestedAtMs: number;
  timing: 'on_time' | 'at_risk' | 'breached';
  address: string | null;
  postcode: string | null;
  lat: number | null;
  lon: number | null;
  accessInstructions?: string | null;
  /** The access instructions were left out for this reader (the rule in core accounts/access.ts). */
  accessInstructionsWithheld: boolean;
  vehicleId: string | null;
  allocationId: string | null;
  /** Open double-allocation items about this visit: check with the crews (see the reconciliation list). */
  conflicts: string[];
  outcome: { outcome: VisitOutcome; note: string; atMs: number } | null;
  cancelled: { reason: string; atMs: number } | null;
  suggestions?: CarSuggestion[];
}

/** How long the rows of `fleetRows` are kept at most (node clock), when nothing is committed. */
const FLEET_ROWS_MAX_AGE_MS = 30_000;
/** Events that change none of the kept rows: the audit of a read (every board read appends one). */
const FLEET_UNCHANGED_BY = new Set(['audit.access']);
const POSITION_REPORTED = 'vehicle.position_reported';
/** The board's suggestions are worked out this many visits at a time (see `board`). */
const BOARD_SLICE_VISITS = 25;

interface FleetRows {
  vehicleRows: Awaited<ReturnType<DispatchService['vehicleRows']>>;
  positions: Map<string, DispatchPositionsTable>;
  visits: Map<string, DispatchVisitsTable>;
  rows: AllocationRow[];
  state: AllocationState;
  shifts: Shift[];
  names: Map<string, string>;
  /** Per car, its open visits in ledger order of their allocations (the first is the current one). */
  queued: Map<string, string[]>;
}

interface Snapshot {
  nowMs: number;
  vehicles: VehicleView[];
  visits: Map<string, DispatchVisitsTable>;
  state: AllocationState;
  rows: AllocationRow[];
  shifts: Shift[];
  /** The cars as suggestCars takes them, worked out once per snapshot (see `suggestFor`). */
  suggestionCars?: { car: CarForSuggestion; visitId: string | null; free: CarForSuggestion }[];
}

/** Thrown by an allocation's compare-and-set when the visit or car moved on since it was read. */
class StaleAllocation extends Error {}

/**
 * Home visits and dispatch (C7): visits created from a clinician's home-visit outcome, cars and their
 * crews from the rota, suggestions by estimated arrival (core `suggestCars`), allocation and
 * re-allocation by the dispatcher, the crew's status, position and outcome from the phone. The
 * outcome closes the case through the case's own close (so the Post Event Message goes) or, converted
 * to an ambulance, queues the request through the 999 handover service in the same commit.
 */
export class DispatchService {
  private readonly fleet = new Map<
    string,
    { readAtMs: number; rows: Promise<FleetRows>; read?: FleetRows }
  >();
  private readonly generations = new Map<string, number>();

  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly deps: {
      rota: RotaService;
      cases: CaseService;
      patients: PatientService;
      accounts: AccountsService;
      auditor: Auditor;
      handover: HandoverService;
      /** The place of a postcode, for the visit's position (the directory's postcode table). */
      locate: (postcode: string) => Promise<{ latitude: number; longitude: number } | null>;
    },
  ) {
    ledger.subscribe((tenants, events) => this.committed(tenants, events));
  }

  // ---- cars ----------------------------------------------------------------------------------------

  async registerVehicle(
    ctx: RequestContext,
    input: Omit<VehicleRegistered, 'vehicleId'>,
  ): Promise<VehicleView> {
    const sites = await this.deps.accounts.sites(ctx.tenant);
    if (!sites.some((s) => s.siteId === input.baseSiteId))
      throw new ValidationError([{ path: 'body.baseSiteId', message: 'is not a site of this provider' }]);
    const existing = await this.vehicleRows(ctx.tenant);
    if (existing.some((v) => !v.retired && v.callSign.toLowerCase() === input.callSign.toLowerCase()))
      throw new ConflictError('a car in service has this call sign already');
    const vehicleId = randomUUID();
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'vehicle.registered',
        actor: actorOf(ctx),
        payload: { vehicleId, ...input },
      },
    ]);
    return this.vehicle(ctx.tenant, vehicleId);
  }

  async retireVehicle(ctx: RequestContext, vehicleId: string, reason: string): Promise<VehicleView> {
    const car = await this.vehicle(ctx.tenant, vehicleId);
    if (car.retired) throw new ConflictError('the car is retired already');
    if (car.visitId) throw new ConflictError('the car is working a visit: re-allocate its visits first');
    await this.ledger.append([
      { tenant: ctx.tenant, type: 'vehicle.retired', actor: actorOf(ctx), payload: { vehicleId, reason } },
    ]);
    return this.vehicle(ctx.tenant, vehicleId);
  }

  async vehicles(ctx: RequestContext): Promise<VehicleView[]> {
    return (await this.snapshot(ctx.tenant)).vehicles;
  }

  /** One car, as in the list (404 when the provider has no such car). */
  async vehicleOf(ctx: RequestContext, vehicleId: string): Promise<VehicleView> {
    return this.vehicle(ctx.tenant, vehicleId);
  }

  private async vehicle(tenant: string, vehicleId: string): Promise<VehicleView> {
    const car = (await this.snapshot(tenant)).vehicles.find((v) => v.vehicleId === vehicleId);
    if (!car) throw new NotFoundError('vehicle');
    return car;
  }

  private async vehicleRows(tenant: string) {
    const rows = await this.store.withTenant(tenant, (trx) =>
      dispatchDb(trx).selectFrom('dispatch_vehicles').selectAll().where('tenant', '=', tenant).execute(),
    );
    return rows.map((r) => ({
      ...(JSON.parse(r.registered) as VehicleRegistered),
      retired: r.retired === 1,
      row: r,
    }));
  }

  // ---- visits from the clinician's outcome ----------------------------------------------------------

  /**
   * The command hook: a consultation outcome "home visit within N hours" creates the visit in the same
   * commit, with the patient's current address and access instructions (read through the patient
   * service, as the clinician). Refused when the patient is not identified: a visit needs an address.
   */
  async visitRequestDrafts(ctx: RequestContext, outcome: CommandOutcome): Promise<EventDraft[]> {
    const arranged = outcome.events.find(
      (e) => e.type === 'case.follow_up_arranged' && e.payload.kind === 'home_visit',
    );
    if (!arranged || arranged.type !== 'case.follow_up_arranged') return [];
    const { withinHours, reason } = arranged.payload;
    if (withinHours === undefined || reason === undefined) return [];
    const { row } = outcome;
    if (!row.patient_id)
      throw new ConflictError(
        'identify the patient before requesting a home visit: the crew needs the address',
      );
    const patient = await this.deps.patients.read(ctx, row.patient_id);
    const record = patient.record as { address?: string; postcode?: string; accessInstructions?: string };
    const place = record.postcode ? await this.deps.locate(record.postcode) : null;
    const now = this.clock.nowMs();
    const payload: VisitRequested = {
      visitId: randomUUID(),
      caseId: row.case_id,
      patientId: row.patient_id,
      siteId: row.site_id,
      address: {
        text: record.address?.trim() || null,
        postcode: record.postcode?.trim() || null,
        lat: place?.latitude ?? null,
        lon: place?.longitude ?? null,
      },
      accessInstructions: record.accessInstructions?.trim() || null,
      reason,
      withinHours,
      deadlineMs: now + withinHours * HOUR_MS,
      priority: withinHours <= 2 ? 1 : withinHours <= 6 ? 2 : 3,
      requestedBy: ctx.userId,
      atMs: now,
    };
    return [{ tenant: ctx.tenant, type: 'visit.requested', actor: actorOf(ctx), payload: { ...payload } }];
  }

  // ---- reading ---------------------------------------------------------------------------------------

  /**
   * What every read of dispatch starts from: the cars, their positions and crews, the open and
   * recent visits, the allocations and who stands. The rows are read once and kept per provider
   * (`fleetRows`) until the ledger commits anything for it; what depends on the time (crew on shift
   * now, a position's age) is worked out on each call from them, in one pass over each list.
   */
  private async snapshot(tenant: string): Promise<Snapshot> {
    const nowMs = this.clock.nowMs();
    const fleet = await this.fleetRows(tenant, nowMs);
    const carShifts = new Map<string, Shift[]>();
    for (const s of fleet.shifts)
      if (s.location.kind === 'car' && s.location.id !== null) {
        const list = carShifts.get(s.location.id);
        if (list) list.push(s);
        else carShifts.set(s.location.id, [s]);
      }
    const vehicles = fleet.vehicleRows.map((v): VehicleView => {
      const pos = fleet.positions.get(v.vehicleId);
      const crew = crewOf(v.vehicleId, carShifts.get(v.vehicleId) ?? [], nowMs);
      const queued = fleet.queued.get(v.vehicleId) ?? [];
      const status = v.retired ? 'off_duty' : (v.row.status as VehicleStatus);
      return {
        vehicleId: v.vehicleId,
        callSign: v.callSign,
        registration: v.registration,
        baseSiteId: v.baseSiteId,
        baseLat: v.baseLat,
        baseLon: v.baseLon,
        retired: v.retired,
        status,
        statusAtMs: Number(v.row.status_at_ms) || null,
        visitId: queued[0] ?? null,
        queuedVisitIds: [...queued],
        lat: pos ? Number(pos.lat) : null,
        lon: pos ? Number(pos.lon) : null,
        positionAtMs: pos ? Number(pos.at_ms) : null,
        positionAgeMs: pos ? Math.max(0, nowMs - Number(pos.at_ms)) : null,
        accuracyM: pos ? Number(pos.accuracy_m) : null,
        crew: {
          driver: crew.driver ? (fleet.names.get(crew.driver.userId) ?? crew.driver.userName) : null,
          clinician: crew.clinician
            ? (fleet.names.get(crew.clinician.userId) ?? crew.clinician.userName)
            : null,
          driverUserId: crew.driver?.userId ?? null,
          clinicianUserId: crew.clinician?.userId ?? null,
        },
        available: !v.retired && crew.available && status !== 'off_duty',
      };
    });
    return {
      nowMs,
      vehicles,
      // A copy: a reader may add a visit it read on its own (an old one), never into the kept rows.
      visits: new Map(fleet.visits),
      state: fleet.state,
      rows: fleet.rows,
      shifts: fleet.shifts,
    };
  }

  /**
   * The dispatch rows of a provider, kept between requests: the board, every suggestion and the
   * crew's phone read the same few hundred rows, and re-reading them (seven queries, a JSON parse of
   * each visit) was most of a suggestion's time. Dropped when the ledger commits anything for the
   * provider (a local append or events arriving by sync: the projections are written in that
   * commit), and after FLEET_ROWS_MAX_AGE_MS on the node's clock (the time windows of the reads move
   * on). A read that overlaps a commit is not kept (the generation moved on while it ran).
   */
  private fleetRows(tenant: string, nowMs: number): Promise<FleetRows> {
    const kept = this.fleet.get(tenant);
    if (kept && nowMs >= kept.readAtMs && nowMs - kept.readAtMs < FLEET_ROWS_MAX_AGE_MS) return kept.rows;
    const generation = this.generations.get(tenant) ?? 0;
    const rows = this.readFleetRows(tenant, nowMs);
    const entry: { readAtMs: number; rows: Promise<FleetRows>; read?: FleetRows } = { readAtMs: nowMs, rows };
    this.fleet.set(tenant, entry);
    rows.then(
      (read) => {
        if ((this.generations.get(tenant) ?? 0) !== generation && this.fleet.get(tenant) === entry)
          this.fleet.delete(tenant);
        else entry.read = read;
      },
      () => {
        if (this.fleet.get(tenant) === entry) this.fleet.delete(tenant);
      },
    );
    return rows;
  }

  /**
   * After a commit: the kept rows of a provider stand when its events change none of them (the
   * audit of a read), take a car's new position in place when those are all its events (a crew's
   * phone reports every few seconds per car: re-reading every row for each report would cost each
   * report, and the board's reads behind it, a whole read), and are dropped otherwise — or when
   * the rows are still being read. Imported events are told of as appended ones are.
   */
  private committed(tenants: ReadonlySet<string>, events: readonly StoredEvent[]): void {
    for (const tenant of tenants) {
      const own = events.filter((e) => e.tenant === tenant);
      if (own.every((e) => FLEET_UNCHANGED_BY.has(e.type))) continue;
      if (this.keepPositions(tenant, own)) continue;
      this.generations.set(tenant, (this.generations.get(tenant) ?? 0) + 1);
      this.fleet.delete(tenant);
    }
  }

  /** Puts the positions reported into the kept rows, as the projection does (the newest by time stands). */
  private keepPositions(tenant: string, events: readonly StoredEvent[]): boolean {
    const kept = this.fleet.get(tenant);
    if (!kept?.read) return false;
    const reported = [];
    for (const e of events) {
      if (FLEET_UNCHANGED_BY.has(e.type)) continue;
      const position = e.type === POSITION_REPORTED ? livePosition(e.payloadJson) : null;
      if (!position) return false;
      reported.push(position);
    }
    const positions = new Map(kept.read.positions);
    for (const p of reported) {
      const shown = positions.get(p.vehicleId);
      if (shown && Number(shown.at_ms) >= p.positionAtMs) continue;
      positions.set(p.vehicleId, {
        tenant,
        vehicle_id: p.vehicleId,
        lat: p.lat,
        lon: p.lon,
        accuracy_m: p.accuracyM,
        at_ms: p.positionAtMs,
      });
    }
    const read = { ...kept.read, positions };
    this.fleet.set(tenant, { readAtMs: kept.readAtMs, rows: Promise.resolve(read), read });
    return true;
  }

  private async readFleetRows(tenant: string, nowMs: number): Promise<FleetRows> {
    const [vehicleRows, positions, visits, allocationRows, decisionRows, shifts] = await Promise.all([
      this.vehicleRows(tenant),
      this.store.withTenant(tenant, (trx) =>
        dispatchDb(trx).selectFrom('dispatch_positions').selectAll().where('tenant', '=', tenant).execute(),
      ),
      this.store.withTenant(tenant, (trx) =>
        dispatchDb(trx)
          .selectFrom('dispatch_visits')
          .selectAll()
          .where('tenant', '=', tenant)
          .where((eb) => eb.or([eb('state', '=', 'open'), eb('deadline_ms', '>', nowMs - RECENT_MS)]))
          .limit(20_000)
          .execute(),
      ),
      this.store.withTenant(tenant, (trx) => this.recentAllocations(trx, tenant, nowMs)),
      this.store.withTenant(tenant, (trx) =>
        dispatchDb(trx).selectFrom('dispatch_decisions').selectAll().where('tenant', '=', tenant).execute(),
      ),
      // Past the kept rows' lifetime, so a shift starting while they are kept is among them.
      this.deps.rota.shifts(tenant, nowMs - 24 * HOUR_MS, nowMs + FLEET_ROWS_MAX_AGE_MS + 1),
    ]);
    const rows = allocationRows.map(toAllocation);
    const state = allocationState(
      rows,
      new Map(
        decisionRows.map((d) => [
          d.item_id,
          {
            keepAllocationId: d.keep_allocation_id,
            reason: d.reason,
            actor: d.actor,
            hlc: d.hlc,
            eventId: d.event_id,
          },
        ]),
      ),
    );
    const visitMap = new Map(visits.map((v) => [v.visit_id, v]));
    const queued = new Map<string, AllocationRow[]>();
    for (const a of state.current.values()) {
      if (visitMap.get(a.visitId)?.state !== 'open') continue;
      const list = queued.get(a.vehicleId);
      if (list) list.push(a);
      else queued.set(a.vehicleId, [a]);
    }
    const names = await this.deps.accounts.displayNames(
      tenant,
      shifts.map((s) => s.userId),
    );
    vehicleRows.sort((a, b) => (a.callSign < b.callSign ? -1 : a.callSign > b.callSign ? 1 : 0));
    return {
      vehicleRows,
      positions: new Map(positions.map((p) => [p.vehicle_id, p])),
      visits: visitMap,
      rows,
      state,
      shifts,
      names,
      queued: new Map([...queued].map(([id, list]) => [id, list.sort(ledgerOrder).map((a) => a.visitId)])),
    };
  }

  private async recentAllocations(
    trx: Tx,
    tenant: string,
    nowMs: number,
  ): Promise<DispatchAllocationsTable[]> {
    const db = dispatchDb(trx);
    const recent = await db
      .selectFrom('dispatch_allocations')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('at_ms', '>', nowMs - RECENT_MS)
      .execute();
    const open = await db
      .selectFrom('dispatch_allocations')
      .innerJoin('dispatch_visits', (j) =>
        j
          .onRef('dispatch_visits.tenant', '=', 'dispatch_allocations.tenant')
          .onRef('dispatch_visits.visit_id', '=', 'dispatch_allocations.visit_id'),
      )
      .selectAll('dispatch_allocations')
      .where('dispatch_allocations.tenant', '=', tenant)
      .where('dispatch_visits.state', '=', 'open')
      .execute();
    const seen = new Set(recent.map((r) => r.allocation_id));
    return [...recent, ...open.filter((r) => !seen.has(r.allocation_id))];
  }

  private visitView(
    snap: Snapshot,
    row: DispatchVisitsTable,
    reader: { roles: RequestContext['roles']; userId: string },
  ): VisitView {
    const p = JSON.parse(row.requested) as VisitRequested;
    const ended = row.ended ? (JSON.parse(row.ended) as Record<string, unknown>) : null;
    const current = row.state === 'open' ? snap.state.current.get(row.visit_id) : undefined;
    const car = current ? snap.vehicles.find((v) => v.vehicleId === current.vehicleId) : undefined;
    let status: VisitStatus = 'requested';
    if (row.state === 'done') status = 'completed';
    else if (row.state === 'cancelled') status = 'cancelled';
    else if (car) {
      status = 'allocated';
      if (car.visitId === row.visit_id && (car.status === 'travelling' || car.status === 'on_scene'))
        status = car.status;
    }
    const crewOfCar =
      !!car &&
      car.visitId === row.visit_id &&
      [car.crew.driverUserId, car.crew.clinicianUserId].includes(reader.userId);
    const mayRead = mayReadVisitAccessInstructions(reader.roles, { crewOfAllocatedCar: crewOfCar });
    return {
      visitId: row.visit_id,
      caseId: row.case_id,
      siteId: row.site_id,
      status,
      reason: p.reason,
      withinHours: p.withinHours,
      priority: p.priority,
      deadlineMs: p.deadlineMs,
      deadline: new Date(p.deadlineMs).toISOString(),
      requestedAtMs: p.atMs,
      timing: visitTiming(p.deadlineMs, snap.nowMs),
      address: p.address.text,
      postcode: p.address.postcode,
      lat: p.address.lat,
      lon: p.address.lon,
      ...(mayRead ? { accessInstructions: p.accessInstructions } : {}),
      accessInstructionsWithheld: !mayRead && p.accessInstructions !== null,
      vehicleId: current?.vehicleId ?? null,
      allocationId: current?.allocationId ?? null,
      conflicts: row.state === 'open' ? (snap.state.openItemsByVisit.get(row.visit_id) ?? []) : [],
      outcome:
        row.state === 'done' && ended
          ? {
              outcome: ended.outcome as VisitOutcome,
              note: String(ended.note ?? ''),
              atMs: Number(ended.atMs),
            }
          : null,
      cancelled:
        row.state === 'cancelled' && ended
          ? { reason: String(ended.reason), atMs: Number(ended.atMs) }
          : null,
    };
  }

  /**
   * The cars for a visit's suggestions, best first (`limit`: only the best few, as on the board).
   * The cars are put in suggestCars' terms once per snapshot; for each visit only its own car (one
   * already allocated to it) differs: it is not busy with the visit it would be sent to.
   */
  private suggestFor(snap: Snapshot, view: VisitView, limit?: number): CarSuggestion[] {
    if (view.lat === null || view.lon === null || view.status === 'completed' || view.status === 'cancelled')
      return [];
    snap.suggestionCars ??= this.suggestionCars(snap);
    const cars = snap.suggestionCars.map((c) => (c.visitId === view.visitId ? c.free : c.car));
    return suggestCars(
      {
        visitId: view.visitId,
        lat: view.lat,
        lon: view.lon,
        deadlineMs: view.deadlineMs,
        priority: view.priority,
      },
      cars,
      snap.nowMs,
      limit === undefined ? undefined : { limit },
    );
  }

  private suggestionCars(snap: Snapshot): NonNullable<Snapshot['suggestionCars']> {
    return snap.vehicles
      .filter((v) => !v.retired)
      .map((v) => {
        const lat = v.lat ?? v.baseLat;
        const lon = v.lon ?? v.baseLon;
        const currentVisit = v.visitId ? snap.visits.get(v.visitId) : undefined;
        const at = currentVisit ? (JSON.parse(currentVisit.requested) as VisitRequested).address : null;
        const freeAt = at && at.lat !== null && at.lon !== null ? { lat: at.lat, lon: at.lon } : null;
        const free: CarForSuggestion = {
          vehicleId: v.vehicleId,
          callSign: v.callSign,
          status: v.status,
          lat,
          lon,
          positionAtMs: Math.min(v.positionAtMs ?? snap.nowMs, snap.nowMs),
          busyUntilMs: null,
          freeAt: null,
          crewOnShift: v.available,
        };
        const car: CarForSuggestion =
          v.visitId === null
            ? free
            : {
                ...free,
                busyUntilMs: estimateBusyUntilMs(
                  {
                    status: BUSY_VEHICLE_STATUSES.includes(v.status) ? v.status : 'allocated',
                    statusSinceMs: v.statusAtMs ?? snap.nowMs,
                    lat,
                    lon,
                  },
                  freeAt,
                  snap.nowMs,
                ),
                freeAt,
              };
        return { car, visitId: v.visitId, free };
      });
  }

  /** The visits queue of the reader's sites, by deadline (on time, at risk, breached). */
  async visits(
    ctx: RequestContext,
    filter: { caseId?: string; state?: 'open' | 'all' } = {},
  ): Promise<VisitView[]> {
    const snap = await this.snapshot(ctx.tenant);
    const sites = caseListSites(ctx);
    const rows = [...snap.visits.values()].filter(
      (v) =>
        (filter.state === 'all' || filter.caseId || v.state === 'open') &&
        (!filter.caseId || v.case_id === filter.caseId) &&
        (sites === 'all' || sites.includes(v.site_id)),
    );
    const views = rows.map((r) => this.visitView(snap, r, ctx)).sort((a, b) => compareVisits(a, b));
    await this.deps.auditor.access(ctx, {
      action: 'search',
      resourceType: 'case',
      breakGlass: false,
      fields: ['visits'],
    });
    return views;
  }

  /** One visit; the reader must be able to read its case (the access layer's site rule) or be its car's crew. */
  async visit(ctx: RequestContext, visitId: string): Promise<VisitView> {
    const { snap, view } = await this.readable(ctx, visitId);
    view.suggestions = this.suggestFor(snap, view);
    await this.deps.auditor.access(ctx, this.visitRead(view));
    return view;
  }

  async suggestions(
    ctx: RequestContext,
    visitId: string,
  ): Promise<{ visitId: string; suggestions: CarSuggestion[]; notice?: string }> {
    const { snap, view } = await this.readable(ctx, visitId);
    return {
      visitId,
      suggestions: this.suggestFor(snap, view),
      ...(view.lat === null
        ? { notice: 'the address has no known position (postcode not found): choose a car by hand' }
        : {}),
    };
  }

  private visitRead(view: VisitView) {
    return {
      action: 'read' as const,
      resourceType: 'case' as const,
      resourceId: view.caseId,
      breakGlass: false,
      fields: ['visit', ...('accessInstructions' in view ? ['accessInstructions'] : [])],
    };
  }

  private async readable(ctx: RequestContext, visitId: string) {
    const snap = await this.snapshot(ctx.tenant);
    const row = snap.visits.get(visitId) ?? (await this.visitRow(ctx.tenant, visitId));
    if (!row) throw new NotFoundError('visit');
    if (!snap.visits.has(visitId)) snap.visits.set(visitId, row);
    const view = this.visitView(snap, row, ctx);
    const car = view.vehicleId ? snap.vehicles.find((v) => v.vehicleId === view.vehicleId) : undefined;
    const crew = !!car && [car.crew.driverUserId, car.crew.clinicianUserId].includes(ctx.userId);
    if (!crew) await this.deps.cases.get(ctx, row.case_id);
    return { snap, row, view, car };
  }

  private async visitRow(tenant: string, visitId: string) {
    return this.store.withTenant(tenant, (trx) =>
      dispatchDb(trx)
        .selectFrom('dispatch_visits')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('visit_id', '=', visitId)
        .executeTakeFirst(),
    );
  }

  /** The dispatcher's board: open visits by deadline with their best suggestions, the cars, the sites. */
  async board(ctx: RequestContext) {
    const snap = await this.snapshot(ctx.tenant);
    const sites = caseListSites(ctx);
    const visits = [...snap.visits.values()]
      .filter((v) => v.state === 'open' && (sites === 'all' || sites.includes(v.site_id)))
      .map((r) => this.visitView(snap, r, ctx))
      .sort((a, b) => compareVisits(a, b));
    // In slices, letting other requests in between: ranking every car for a few hundred visits
    // takes tens of milliseconds, and a crew's position report (or any request) waiting behind all
    // of it is what the board then shows late. The snapshot read above is what every slice uses.
    for (let i = 0; i < visits.length; i++) {
      if (i > 0 && i % BOARD_SLICE_VISITS === 0) await new Promise((resolve) => setImmediate(resolve));
      const v = visits[i]!;
      v.suggestions = v.vehicleId ? [] : this.suggestFor(snap, v, 3);
    }
    const siteNames = await this.deps.accounts.sites(ctx.tenant);
    await this.deps.auditor.access(ctx, {
      action: 'search',
      resourceType: 'case',
      breakGlass: false,
      fields: ['visits'],
    });
    return {
      now: new Date(snap.nowMs).toISOString(),
      nowMs: snap.nowMs,
      visits,
      vehicles: snap.vehicles.filter((v) => !v.retired),
      sites: siteNames.flatMap((s) => {
        const based = snap.vehicles.find((v) => v.baseSiteId === s.siteId);
        return based ? [{ siteId: s.siteId, name: s.name, lat: based.baseLat, lon: based.baseLon }] : [];
      }),
      openItems: snap.state.items.filter((i) => !i.decision).length,
    };
  }

  // ---- allocation ------------------------------------------------------------------------------------

  async allocate(ctx: RequestContext, visitId: string, vehicleId: string): Promise<VisitView> {
    return this.allocation(ctx, visitId, vehicleId, null);
  }

  async reallocate(
    ctx: RequestContext,
    visitId: string,
    vehicleId: string,
    reason: string,
  ): Promise<VisitView> {
    return this.allocation(ctx, visitId, vehicleId, reason);
  }

  private async allocation(
    ctx: RequestContext,
    visitId: string,
    vehicleId: string,
    reason: string | null,
  ): Promise<VisitView> {
    for (let attempt = 0; ; attempt++) {
      const { snap, view } = await this.readable(ctx, visitId);
      if (view.status === 'completed' || view.status === 'cancelled')
        throw new ConflictError(`the visit is ${view.status}: nothing to allocate`);
      const car = snap.vehicles.find((v) => v.vehicleId === vehicleId);
      if (!car || car.retired)
        throw new ValidationError([{ path: 'body.vehicleId', message: 'is not a car in service' }]);
      if (!car.available)
        throw new ConflictError(
          `${car.callSign} is not offered: its crew (a driver and a clinician) is not on shift on the rota now`,
        );
      const current = snap.state.current.get(visitId) ?? null;
      if (reason === null && current)
        throw new ConflictError('the visit has a car already: re-allocate it with a reason');
      if (reason !== null && !current) throw new ConflictError('the visit has no car yet: allocate one');
      if (current && current.vehicleId === vehicleId)
        throw new ConflictError(`${car.callSign} is already allocated to this visit`);
      const vehicleBasedOn = await this.latestAllocationOf(ctx.tenant, vehicleId);
      const visitBasedOn = current?.allocationId ?? null;
      const now = this.clock.nowMs();
      const payload = {
        visitId,
        allocationId: randomUUID(),
        vehicleId,
        byUserId: ctx.userId,
        visitBasedOn,
        vehicleBasedOn,
        atMs: now,
      };
      const drafts: EventDraft[] = [
        reason === null
          ? { tenant: ctx.tenant, type: 'visit.allocated', actor: actorOf(ctx), payload }
          : {
              tenant: ctx.tenant,
              type: 'visit.reallocated',
              actor: actorOf(ctx),
              payload: { ...payload, fromVehicleId: current!.vehicleId, reason },
            },
      ];
      // A free car is allocated now; a busy one takes the visit after its current one.
      if (!car.visitId || BUSY_VEHICLE_STATUSES.indexOf(car.status) < 0)
        drafts.push(this.statusDraft(ctx, vehicleId, 'allocated', visitId, now));
      if (current) {
        const old = snap.vehicles.find((v) => v.vehicleId === current.vehicleId);
        if (old && old.visitId === visitId) {
          const next = old.queuedVisitIds.find((id) => id !== visitId) ?? null;
          drafts.push(this.statusDraft(ctx, old.vehicleId, next ? 'allocated' : 'available', next, now));
        }
      }
      drafts.push(
        accessEvent(ctx, { ...this.visitRead(view), action: 'write', fields: ['visit.allocation'] }),
      );
      try {
        await this.ledger.append(drafts, {
          guard: async (trx) => {
            const latest = await this.latestAllocationOf(ctx.tenant, vehicleId, trx);
            const visitRows = await dispatchDb(trx)
              .selectFrom('dispatch_allocations')
              .select('allocation_id')
              .where('tenant', '=', ctx.tenant)
              .where('visit_id', '=', visitId)
              .execute();
            const known = new Set(snap.rows.filter((r) => r.visitId === visitId).map((r) => r.allocationId));
            if (latest !== vehicleBasedOn || visitRows.some((r) => !known.has(r.allocation_id)))
              throw new StaleAllocation();
          },
        });
        break;
      } catch (error) {
        if (error instanceof StaleAllocation && attempt === 0) continue;
        if (error instanceof StaleAllocation)
          throw new ConflictError(
            'the visit or the car changed while you were allocating: reload and try again',
          );
        throw error;
      }
    }
    return (await this.readable(ctx, visitId)).view;
  }

  private statusDraft(
    ctx: RequestContext,
    vehicleId: string,
    status: VehicleStatus,
    visitId: string | null,
    atMs: number,
  ): EventDraft {
    return {
      tenant: ctx.tenant,
      type: 'vehicle.status_changed',
      actor: actorOf(ctx),
      payload: { vehicleId, status, visitId, atMs },
    };
  }

  /** The car's latest allocation in ledger order (any age): what a new allocation is based on. */
  private async latestAllocationOf(tenant: string, vehicleId: string, trx?: Tx): Promise<string | null> {
    const read = (t: Tx) =>
      dispatchDb(t)
        .selectFrom('dispatch_allocations')
        .select('allocation_id')
        .where('tenant', '=', tenant)
        .where('vehicle_id', '=', vehicleId)
        .orderBy('hlc', 'desc')
        .orderBy('node', 'desc')
        .orderBy('seq', 'desc')
        .limit(1)
        .executeTakeFirst();
    const row = trx ? await read(trx) : await this.store.withTenant(tenant, read);
    return row?.allocation_id ?? null;
  }

  // ---- the crew's phone ------------------------------------------------------------------------------

  /** The car whose crew the user is on shift for now, or 403. */
  private async crewCar(ctx: RequestContext): Promise<{ snap: Snapshot; car: VehicleView; shift: Shift }> {
    const snap = await this.snapshot(ctx.tenant);
    const shift = snap.shifts.find(
      (s) =>
        s.userId === ctx.userId &&
        s.location.kind === 'car' &&
        s.startMs <= snap.nowMs &&
        snap.nowMs < s.endMs,
    );
    const car = shift
      ? snap.vehicles.find((v) => v.vehicleId === shift.location.id && !v.retired)
      : undefined;
    if (!shift || !car) throw new ForbiddenError('you are not on shift on a car now (see the rota)');
    return { snap, car, shift };
  }

  async crewMe(ctx: RequestContext) {
    let crew;
    try {
      crew = await this.crewCar(ctx);
    } catch (error) {
      if (!(error instanceof ForbiddenError)) throw error;
      return { shift: null, vehicle: null, visit: null, statusTimes: [], notice: error.message };
    }
    const { snap, car, shift } = crew;
    const row = car.visitId ? snap.visits.get(car.visitId) : undefined;
    const visit = row ? this.visitView(snap, row, ctx) : null;
    if (visit) await this.deps.auditor.access(ctx, this.visitRead(visit));
    return {
      shift,
      vehicle: car,
      visit,
      queued: car.queuedVisitIds.slice(1),
      statusTimes: await this.statusTimes(ctx.tenant, car.vehicleId, shift.startMs),
    };
  }

  private async statusTimes(tenant: string, vehicleId: string, sinceMs: number) {
    // The car's own ledger subject, read in ledger order (as a case's history is).
    const rows = await this.store.withTenant(tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['type', 'payload'])
        .where('tenant', '=', tenant)
        .where('subject', '=', `vehicle:${vehicleId}`)
        .where('type', '=', 'vehicle.status_changed')
        .orderBy('hlc')
        .orderBy('node')
        .orderBy('seq')
        .execute(),
    );
    return rows
      .map((e) => JSON.parse(e.payload) as { status: VehicleStatus; atMs: number; visitId: string | null })
      .filter((p) => p.atMs >= sinceMs)
      .map((p) => ({
        status: p.status,
        atMs: p.atMs,
        at: new Date(p.atMs).toISOString(),
        visitId: p.visitId,
      }))
      .slice(-50);
  }

  async crewStatus(ctx: RequestContext, status: VehicleStatus) {
    const { car } = await this.crewCar(ctx);
    if (status === car.status) return { vehicle: car, recorded: false };
    await this.ledger.append([this.statusDraft(ctx, car.vehicleId, status, car.visitId, this.clock.nowMs())]);
    return { vehicle: await this.vehicle(ctx.tenant, car.vehicleId), recorded: true };
  }

  /**
   * A position from the crew's phone. Bounded: at most one event per car per 15 s unless it moved more
   * than 200 m — a phone reporting every second would put 86,400 events a day per car into every
   * node's ledger for ever; the board needs the car's street, not its every metre.
   */
  async crewPosition(ctx: RequestContext, input: { lat: number; lon: number; accuracyM: number }) {
    const { car } = await this.crewCar(ctx);
    const now = this.clock.nowMs();
    if (car.positionAtMs !== null && car.lat !== null && car.lon !== null) {
      const movedM =
        greatCircleKm(
          { latitude: car.lat, longitude: car.lon },
          { latitude: input.lat, longitude: input.lon },
        ) * 1000;
      if (now - car.positionAtMs < POSITION_MIN_INTERVAL_MS && movedM <= POSITION_MIN_MOVE_M)
        return {
          recorded: false,
          reason: `a position was recorded ${Math.round((now - car.positionAtMs) / 1000)} s ago and the car has moved ${Math.round(movedM)} m: positions are kept at most every 15 s unless the car moved more than 200 m`,
          vehicle: car,
        };
    }
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'vehicle.position_reported',
        actor: actorOf(ctx),
        payload: {
          vehicleId: car.vehicleId,
          lat: input.lat,
          lon: input.lon,
          accuracyM: input.accuracyM,
          atMs: now,
        },
      },
    ]);
    return { recorded: true, vehicle: await this.vehicle(ctx.tenant, car.vehicleId) };
  }

  /**
   * The crew's outcome of their visit. Seen or admitted closes the case (its own close, so the Post
   * Event Message goes in the same commit); converted to ambulance queues the request to the
   * ambulance service through the 999 handover and closes the case; not at home sends the case back
   * to the CAS queue for a clinician to decide what next (a patient not found is never closed silently).
   */
  async recordOutcome(
    ctx: RequestContext,
    visitId: string,
    input: { outcome: VisitOutcome; note: string; ambulanceCategory?: 1 | 2 | 3 | 4 | undefined },
  ): Promise<VisitView> {
    // An unknown visit is a 404 for anyone allowed the route, before asking whose car it is.
    if (!(await this.visitRow(ctx.tenant, visitId))) throw new NotFoundError('visit');
    const { car, snap } = await this.crewCar(ctx).catch(() => {
      throw new ForbiddenError('only the crew of the car sent to this visit, on shift, records its outcome');
    });
    const row = snap.visits.get(visitId) ?? (await this.visitRow(ctx.tenant, visitId));
    if (!row) throw new NotFoundError('visit');
    if (row.state !== 'open') throw new ConflictError('the visit has its outcome already');
    const current = snap.state.current.get(visitId);
    if (!current || current.vehicleId !== car.vehicleId)
      throw new ForbiddenError('only the crew of the car sent to this visit records its outcome');
    if (input.outcome === 'converted_to_ambulance' && !input.ambulanceCategory)
      throw new ValidationError([
        {
          path: 'body.ambulanceCategory',
          message: 'choose the ambulance category (1 to 4) for the 999 request',
        },
      ]);
    const now = this.clock.nowMs();
    const next = car.queuedVisitIds.find((id) => id !== visitId) ?? null;
    const visitDrafts: EventDraft[] = [
      {
        tenant: ctx.tenant,
        type: 'visit.outcome_recorded',
        actor: actorOf(ctx),
        payload: {
          visitId,
          outcome: input.outcome,
          note: input.note,
          vehicleId: car.vehicleId,
          byUserId: ctx.userId,
          atMs: now,
        },
      },
      this.statusDraft(ctx, car.vehicleId, next ? 'allocated' : 'leaving', next, now),
    ];
    // The crew acts on this case because dispatch sent them (checked above), not by the site rule.
    const crewCtx: RequestContext = { ...ctx, system: true };
    const caseRow = await this.deps.cases.get(crewCtx, row.case_id);
    const status = (JSON.parse(caseRow.state) as { status: string }).status;
    if (status !== 'follow_up_arranged') {
      // The case moved on elsewhere (closed by a clinician): the outcome is recorded on the visit alone.
      await this.ledger.append(visitDrafts);
    } else if (input.outcome === 'not_at_home') {
      await this.deps.cases.command(crewCtx, row.case_id, { type: 'queue_for_clinician' }, () => visitDrafts);
    } else {
      const handover =
        input.outcome === 'converted_to_ambulance'
          ? await this.deps.handover.ambulanceRequestDrafts(crewCtx, {
              row: caseRow,
              category: input.ambulanceCategory!,
              byClinicianId: ctx.userId,
              triagePath: [],
            })
          : [];
      await this.deps.cases.command(crewCtx, row.case_id, { type: 'close' }, () => [
        ...visitDrafts,
        ...handover,
      ]);
    }
    return this.visitView(await this.snapshot(ctx.tenant), (await this.visitRow(ctx.tenant, visitId))!, ctx);
  }

  async cancel(ctx: RequestContext, visitId: string, reason: string): Promise<VisitView> {
    const { snap, view } = await this.readable(ctx, visitId);
    if (view.status === 'completed' || view.status === 'cancelled')
      throw new ConflictError(`the visit is ${view.status} already`);
    const now = this.clock.nowMs();
    const drafts: EventDraft[] = [
      {
        tenant: ctx.tenant,
        type: 'visit.cancelled',
        actor: actorOf(ctx),
        payload: { visitId, reason, atMs: now },
      },
    ];
    const car = view.vehicleId ? snap.vehicles.find((v) => v.vehicleId === view.vehicleId) : undefined;
    if (car && car.visitId === visitId) {
      const next = car.queuedVisitIds.find((id) => id !== visitId) ?? null;
      drafts.push(this.statusDraft(ctx, car.vehicleId, next ? 'allocated' : 'available', next, now));
    }
    await this.ledger.append(drafts);
    return (await this.readable(ctx, visitId)).view;
  }

  // ---- double allocations (reconciliation items owned by dispatch) ------------------------------------

  async allocationItems(tenant: string): Promise<{ snap: Snapshot; items: AllocationItem[] }> {
    const snap = await this.snapshot(tenant);
    return { snap, items: snap.state.items };
  }

  itemView(snap: Snapshot, item: AllocationItem) {
    const visitOf = (id: string) => snap.visits.get(id);
    const car = (id: string) => snap.vehicles.find((v) => v.vehicleId === id)?.callSign ?? 'a retired car';
    const first = visitOf(item.colliding.visitId);
    const all = [...item.kept, item.colliding];
    return {
      itemId: item.itemId,
      caseId: first?.case_id ?? null,
      siteId: first?.site_id ?? null,
      kind: 'double_allocation' as const,
      status: item.decision ? ('resolved' as const) : ('open' as const),
      detectedAt: new Date(Number(item.colliding.hlc.slice(0, 15))).toISOString(),
      keptEventId: item.kept[0]?.eventId ?? null,
      collidingEventId: item.colliding.eventId,
      heldNode: item.colliding.node,
      held: [{ eventId: item.colliding.eventId, node: item.colliding.node, type: 'visit.allocated' }],
      claimants: [],
      outcomes: [],
      decisions: ['keep_allocation'],
      resolution: item.decision
        ? {
            eventId: item.decision.eventId,
            actor: item.decision.actor,
            hlc: item.decision.hlc,
            decision: { action: 'keep_allocation', allocationId: item.decision.keepAllocationId },
            reason: item.decision.reason,
          }
        : null,
      otherResolutions: [],
      summary: item.forks.includes('vehicle')
        ? `${car(item.colliding.vehicleId)} was sent to two visits by nodes that could not see each other: check with the crew where they are going`
        : `One visit was given two cars by nodes that could not see each other: check with both crews`,
      allocations: all.map((a) => ({
        allocationId: a.allocationId,
        eventId: a.eventId,
        node: a.node,
        visitId: a.visitId,
        caseId: visitOf(a.visitId)?.case_id ?? null,
        vehicleId: a.vehicleId,
        callSign: car(a.vehicleId),
        at: new Date(a.atMs).toISOString(),
        standsNow: !snap.state.withdrawn.has(a.allocationId),
      })),
    };
  }

  /** A decision that does not answer a double allocation (400 naming the field). */
  refuseDecision(): never {
    throw new ValidationError([
      {
        path: 'body.decision.action',
        message: 'does not answer a double_allocation item: use keep_allocation',
      },
    ]);
  }

  async decideItem(ctx: RequestContext, itemId: string, keepAllocationId: string, reason: string) {
    const { snap, items } = await this.allocationItems(ctx.tenant);
    const item = items.find((i) => i.itemId === itemId);
    if (!item) return null;
    if (item.decision) throw new ConflictError('this item is resolved already: see its resolution');
    if (![item.colliding, ...item.kept].some((a) => a.allocationId === keepAllocationId))
      throw new ValidationError([
        { path: 'body.decision.allocationId', message: 'must be one of the allocations of this item' },
      ]);
    const visit = snap.visits.get(item.colliding.visitId);
    if (visit) await this.deps.cases.get(ctx, visit.case_id);
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'visit.allocation_decided',
        actor: actorOf(ctx),
        payload: { itemId, keepAllocationId, reason },
      },
      ...(visit
        ? [
            accessEvent(ctx, {
              action: 'read',
              resourceType: 'case',
              resourceId: visit.case_id,
              breakGlass: false,
              fields: ['reconciliation'],
            }),
          ]
        : []),
    ]);
    const after = await this.allocationItems(ctx.tenant);
    return this.itemView(
      after.snap,
      after.items.find((i) => i.itemId === itemId)!,
    );
  }

  // ---- downtime pack -------------------------------------------------------------------------------

  /** Cars, crews and visits in progress for the downtime pack, as a member of staff with `roles` would see them. */
  async packSection(
    tenant: string,
    siteIds: readonly string[] | 'all',
    roles: readonly Role[],
  ): Promise<PackDispatch> {
    const snap = await this.snapshot(tenant);
    const cars = snap.vehicles.filter((v) => !v.retired);
    const callSign = (id: string | null) => cars.find((c) => c.vehicleId === id)?.callSign ?? null;
    const visits = [...snap.visits.values()]
      .filter((v) => v.state === 'open' && (siteIds === 'all' || siteIds.includes(v.site_id)))
      .map((r) => this.visitView(snap, r, { roles: [...roles], userId: '' }))
      .sort((a, b) => compareVisits(a, b));
    return {
      vehicles: cars.map((v) => ({
        callSign: v.callSign,
        status: VEHICLE_STATUS_LABELS[v.status],
        crew: `${v.crew.driver ?? 'no driver on shift'}, ${v.crew.clinician ?? 'no clinician on shift'}`,
        position:
          v.positionAtMs === null
            ? 'no position reported'
            : `last position ${v.lat!.toFixed(4)}, ${v.lon!.toFixed(4)} at ${formatLondonDateTime(v.positionAtMs)}`,
        visit: v.visitId ? caseReference(snap.visits.get(v.visitId)?.case_id ?? v.visitId) : null,
      })),
      visits: visits.map((v) => ({
        caseId: v.caseId,
        reference: caseReference(v.caseId),
        deadlineMs: v.deadlineMs,
        timing: v.timing,
        address: [v.address, v.postcode].filter(Boolean).join(', ') || 'address not known',
        reason: v.reason,
        car: callSign(v.vehicleId),
        accessInstructions: v.accessInstructions ?? null,
      })),
    };
  }
}

function toAllocation(r: DispatchAllocationsTable): AllocationRow {
  return {
    allocationId: r.allocation_id,
    eventId: r.event_id,
    hlc: r.hlc,
    node: r.node,
    seq: Number(r.seq),
    visitId: r.visit_id,
    vehicleId: r.vehicle_id,
    visitBasedOn: r.visit_based_on,
    vehicleBasedOn: r.vehicle_based_on,
    atMs: Number(r.at_ms),
  };
}
