import { randomUUID } from 'node:crypto';
import { sql, type RawBuilder } from 'kysely';
import {
  addLocalDays,
  APPOINTMENT_KIND_WORDS,
  bookingTimeframe,
  caseReference,
  ConflictError,
  decide,
  foldCustody,
  formatLocal,
  generateSlots,
  hasPermission,
  localToUtcMs,
  NotFoundError,
  pickAllocation,
  DEFAULT_SUGGESTION_LIMIT,
  MAX_SUGGESTION_LIMIT,
  suggestSlots,
  ValidationError,
  waitingAtRisk,
  type AppointmentKind,
  type CaseState,
  type Clock,
  type CustodyViolation,
  type DiarySession,
  type DispositionKind,
  type Slot,
  type SlotTemplate,
  type StoredEvent,
} from '@holdfast/core';
import { requireSiteAccess } from '../access/sites.ts';
import { accessEvent } from '../audit/auditor.ts';
import type { AccountsService } from '../accounts/service.ts';
import type { CaseService } from '../cases/service.ts';
import type { CasesTable } from '../cases/projection.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import { CommitCache } from '../ledger/commit-cache.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import type { PackAppointments } from '../downtime/pack-data.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store, Tx } from '../store/store.ts';
import type { AllocationPolicySet, Booked, CentreDefined, SessionPlanned, WalkIn } from './events.ts';
import {
  bookingDb,
  newAppointmentRow,
  type BookingAppointmentsTable,
  type BookingSlotsTable,
} from './projection.ts';

export type BookingRefusal =
  'slot_not_owned_here' | 'slot_full' | 'slot_being_booked' | 'slot_blocked' | 'slot_in_past' | 'wrong_kind';

/**
 * A booking this node may not write (409 with the reason as the problem's code). `slot_not_owned_here`
 * names the owner node: only it can book the slot.
 */
export class BookingRefusedError extends ConflictError {
  constructor(
    readonly reason: BookingRefusal,
    message: string,
    readonly ownerNodeId: string | null = null,
    readonly ownerNodeName: string | null = null,
  ) {
    super(message);
  }
}

export interface CentreView extends CentreDefined {
  templates: SlotTemplate[];
  allocationPolicies: AllocationPolicySet[];
}

export interface DiarySlotView extends Omit<Slot, 'utcOffsetMinutes'> {
  date: string;
  ownerNodeId: string;
  ownerNodeName: string;
  bookableHere: boolean;
  bookings: number;
  free: number;
  blocked: boolean;
  blockReason: string | null;
  sessionCancelled: boolean;
  clinicianName: string;
  roomName: string;
}

export type AppointmentState = 'booked' | 'arrived' | 'seen' | 'did_not_attend' | 'cancelled';

export interface AppointmentView {
  bookingId: string;
  caseId: string;
  slotId: string | null;
  kind: AppointmentKind;
  kindText: string;
  centreId: string;
  centreName: string;
  address: string;
  postcode: string;
  phone: string;
  startMs: number;
  startLocal: string;
  state: AppointmentState;
  walkIn: boolean;
  outsideTimeframeReason: string | null;
  cancelReason: string | null;
  rebookOf: string | null;
  bookedByNodeId: string;
}

export interface ReceptionRow {
  bookingId: string;
  caseId: string;
  startMs: number;
  startLocal: string;
  patientName: string;
  kind: AppointmentKind;
  kindText: string;
  state: AppointmentState;
  walkIn: boolean;
  arrivedAtMs: number | null;
  waitingMinutes: number | null;
  timeframeMinutes: number | null;
  waiting: 'on_time' | 'at_risk' | 'breached' | null;
  seenByName: string | null;
}

export interface CentreInput {
  centreId: string;
  siteId: string;
  name: string;
  address: string;
  postcode: string;
  lat: number;
  lon: number;
  phone: string;
  homeNodeId?: string | undefined;
  homeNodeName?: string | undefined;
  rooms: { roomId: string; name: string }[];
  timeframeNote?: string | null | undefined;
}

export interface SessionInput {
  templateId: string;
  roomId: string;
  clinicianId?: string | null | undefined;
  clinicianName: string;
  date: string;
  startLocal: string;
  endLocal: string;
}

export interface PolicyInput {
  toNodeId: string;
  toNodeName?: string | undefined;
  share?: number | undefined;
  count?: number | undefined;
  cutoffMinutesBeforeStart: number;
}

/** The events that change what `centres` reads (booking_centres, _templates and _policies). */
const CENTRE_EVENT_TYPES: ReadonlySet<string> = new Set([
  'booking.centre_defined',
  'booking.template_defined',
  'booking.allocation_policy_set',
]);

/** How far ahead the downtime pack lists each centre's appointments, in hours. */
export const PACK_APPOINTMENT_HOURS = 12;
/** How far ahead the booking panel looks: the diary's fortnight. */
const LOOK_AHEAD_MS = 14 * 24 * 3600_000;
/** The window at the centre for a walk-in (an urgent face-to-face attendance), in minutes. */
const WALK_IN_TIMEFRAME_MINUTES = 120;

/** A case's booking window: the kind of appointment and its length from the call, in minutes. */
type Timeframe = { kind: AppointmentKind; minutes: number };

const num = (v: number | string | null): number | null => (v === null ? null : Number(v));
const slotPath = 'body.slotId';

/**
 * Treatment-centre appointments (C6): diaries, the custody of slots (CONTRACT-16's ownership scheme),
 * booking while on the call, reception. The rule that makes double booking impossible lives here:
 * a booking is written only by the node that owns the slot in its own view at that moment, checked
 * again inside the commit (the append's guard) with the slot's place count, so two advisers on one
 * node cannot both take the last place, and two nodes can never both own a slot.
 */
export class BookingService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly deps: {
      cases: CaseService;
      patients: PatientService;
      accounts: AccountsService;
      /** The place of a postcode (the directory's postcode table), for "nearest first". */
      locate?: (postcode: string) => Promise<{ latitude: number; longitude: number } | null>;
    },
  ) {
    this.centreCache = new CommitCache(ledger, (type) => CENTRE_EVENT_TYPES.has(type));
  }

  /**
   * The provider's centres as the projection holds them, kept until a commit brings an event that
   * changes a centre, its templates or its policies (every options call and booking answer reads
   * them: three reads each time otherwise).
   */
  private readonly centreCache: CommitCache<CentreView[]>;

  get nodeId(): string {
    return this.ledger.node;
  }

  // ---- centres, templates, sessions, policies -----------------------------------------------------

  async centres(tenant: string): Promise<CentreView[]> {
    return this.centreCache.get(tenant, 'centres', () => this.readCentres(tenant));
  }

  /** The provider's centres (three reads, whatever the number of centres). */
  private async readCentres(tenant: string): Promise<CentreView[]> {
    return this.store.withTenant(tenant, async (trx) => {
      const db = bookingDb(trx);
      const centres = await db
        .selectFrom('booking_centres')
        .selectAll()
        .where('tenant', '=', tenant)
        .orderBy('centre_id')
        .execute();
      if (centres.length === 0) return [];
      const templates = await db
        .selectFrom('booking_templates')
        .selectAll()
        .where('tenant', '=', tenant)
        .execute();
      const policies = await db
        .selectFrom('booking_policies')
        .selectAll()
        .where('tenant', '=', tenant)
        .execute();
      return centres.map((c) => ({
        ...(JSON.parse(c.defined) as CentreDefined),
        templates: templates
          .filter((t) => t.centre_id === c.centre_id)
          .map((t) => JSON.parse(t.template) as SlotTemplate)
          .sort((a, b) => a.templateId.localeCompare(b.templateId)),
        allocationPolicies: policies
          .filter((p) => p.centre_id === c.centre_id)
          .map((p) => JSON.parse(p.policy) as AllocationPolicySet),
      }));
    });
  }

  private async centre(tenant: string, centreId: string, path = 'params.centreId'): Promise<CentreView> {
    const found = (await this.centres(tenant)).find((c) => c.centreId === centreId);
    if (!found)
      throw path.startsWith('params')
        ? new NotFoundError('centre')
        : new ValidationError([{ path, message: 'is not a centre' }]);
    return found;
  }

  /** A centre whose desk the caller works at: the centre's site is theirs (or every site is). */
  private async centreAtOwnSite(ctx: RequestContext, centreId: string): Promise<CentreView> {
    const centre = await this.centre(ctx.tenant, centreId);
    await requireSiteAccess(ctx, 'case', centre.siteId, {
      route: 'treatment centre outside the caller’s sites',
    });
    return centre;
  }

  async defineCentre(ctx: RequestContext, input: CentreInput): Promise<CentreView> {
    if (!(await this.deps.accounts.sites(ctx.tenant)).some((s) => s.siteId === input.siteId))
      throw new ValidationError([{ path: 'body.siteId', message: 'is not a site of your provider' }]);
    const existing = (await this.centres(ctx.tenant)).find((c) => c.centreId === input.centreId);
    const homeNodeId = input.homeNodeId ?? existing?.homeNodeId ?? this.nodeId;
    const payload: CentreDefined = {
      centreId: input.centreId,
      siteId: input.siteId,
      name: input.name,
      address: input.address,
      postcode: input.postcode,
      lat: input.lat,
      lon: input.lon,
      phone: input.phone,
      homeNodeId,
      homeNodeName: input.homeNodeName ?? existing?.homeNodeName ?? `${input.name} (node ${homeNodeId})`,
      rooms: input.rooms,
      timeframeNote: input.timeframeNote ?? null,
    };
    await this.ledger.append([this.draft(ctx, 'booking.centre_defined', payload)]);
    return this.centre(ctx.tenant, input.centreId);
  }

  async defineTemplate(ctx: RequestContext, centreId: string, template: SlotTemplate): Promise<CentreView> {
    await this.centre(ctx.tenant, centreId);
    await this.ledger.append([this.draft(ctx, 'booking.template_defined', { centreId, template })]);
    return this.centre(ctx.tenant, centreId);
  }

  /**
   * Plans a session and makes its slots (core generateSlots, right across clock changes), owned by
   * the centre's home node; when that is this node, the centre's allocation policies are applied at
   * once (otherwise the home node applies them when it reads the session).
   */
  async planSession(ctx: RequestContext, centreId: string, input: SessionInput) {
    const centre = await this.centre(ctx.tenant, centreId);
    const template = centre.templates.find((t) => t.templateId === input.templateId);
    if (!template)
      throw new ValidationError([{ path: 'body.templateId', message: 'is not a template of this centre' }]);
    if (!centre.rooms.some((r) => r.roomId === input.roomId))
      throw new ValidationError([{ path: 'body.roomId', message: 'is not a room of this centre' }]);
    const session: DiarySession = {
      sessionId: randomUUID(),
      centreId,
      roomId: input.roomId,
      clinicianId: input.clinicianId ?? null,
      clinicianName: input.clinicianName,
      date: input.date,
      startLocal: input.startLocal,
      endLocal: input.endLocal,
      template,
    };
    let slots: Slot[];
    try {
      slots = generateSlots(session);
    } catch (error) {
      if (error instanceof ValidationError)
        throw new ValidationError(
          error.issues.map((i) => ({ path: i.path.replace(/^session\./, 'body.'), message: i.message })),
        );
      throw error;
    }
    const payload: SessionPlanned = {
      centreId,
      session,
      homeNodeId: centre.homeNodeId,
      slots: slots.map((s) => ({
        slotId: s.slotId,
        startMs: s.startMs,
        endMs: s.endMs,
        startLocal: s.startLocal,
      })),
    };
    await this.ledger.append([this.draft(ctx, 'booking.session_planned', payload)]);
    if (centre.homeNodeId === this.nodeId) await this.applyPolicies(ctx.tenant, centreId);
    return { session, slots: await this.slotViews(ctx.tenant, centreId, { sessionId: session.sessionId }) };
  }

  async cancelSession(ctx: RequestContext, centreId: string, sessionId: string, reason: string) {
    await this.centre(ctx.tenant, centreId);
    // Only a session this centre's diary holds: an unknown id is a 404 and writes nothing.
    const session = await this.store.withTenant(ctx.tenant, (trx) =>
      bookingDb(trx)
        .selectFrom('booking_sessions')
        .select('session_id')
        .where('tenant', '=', ctx.tenant)
        .where('centre_id', '=', centreId)
        .where('session_id', '=', sessionId)
        .executeTakeFirst(),
    );
    if (!session) throw new NotFoundError('session');
    await this.ledger.append([this.draft(ctx, 'booking.session_cancelled', { centreId, sessionId, reason })]);
  }

  async setAllocationPolicy(ctx: RequestContext, centreId: string, input: PolicyInput): Promise<CentreView> {
    const centre = await this.centre(ctx.tenant, centreId);
    if ((input.share === undefined) === (input.count === undefined))
      throw new ValidationError([
        { path: 'body.share', message: 'give either share (0 to 1) or count, not both' },
      ]);
    if (input.toNodeId === centre.homeNodeId)
      throw new ValidationError([
        { path: 'body.toNodeId', message: "is the centre's own home node: it owns the slots already" },
      ]);
    const payload: AllocationPolicySet = {
      centreId,
      toNodeId: input.toNodeId,
      toNodeName: input.toNodeName ?? input.toNodeId,
      share: input.share ?? null,
      count: input.count ?? null,
      cutoffMinutesBeforeStart: input.cutoffMinutesBeforeStart,
    };
    await this.ledger.append([this.draft(ctx, 'booking.allocation_policy_set', payload)]);
    if (centre.homeNodeId === this.nodeId) await this.applyPolicies(ctx.tenant, centreId);
    return this.centre(ctx.tenant, centreId);
  }

  async blockSlots(ctx: RequestContext, slotIds: string[], reason: string, block: boolean) {
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      bookingDb(trx)
        .selectFrom('booking_slots')
        .select(['slot_id', 'centre_id'])
        .where('tenant', '=', ctx.tenant)
        .where('slot_id', 'in', slotIds)
        .execute(),
    );
    const unknown = slotIds.filter((id) => !rows.some((r) => r.slot_id === id));
    if (unknown.length > 0)
      throw new ValidationError([
        { path: 'body.slotIds', message: `${unknown.length} of the slots are not in any diary` },
      ]);
    const byCentre = new Map<string, string[]>();
    for (const r of rows) byCentre.set(r.centre_id, [...(byCentre.get(r.centre_id) ?? []), r.slot_id]);
    await this.ledger.append(
      [...byCentre].map(([centreId, ids]) =>
        this.draft(ctx, block ? 'booking.slots_blocked' : 'booking.slots_released', {
          centreId,
          slotIds: ids,
          reason,
        }),
      ),
    );
    return { slotIds, blocked: block };
  }

  async diary(ctx: RequestContext, centreId: string, date: string) {
    await this.centre(ctx.tenant, centreId);
    return { date, centreId, slots: await this.slotViews(ctx.tenant, centreId, { date }) };
  }

  /** Names of nodes as the diaries know them (a centre's home node, a policy's receiver). */
  private async nodeNames(tenant: string, known?: readonly CentreView[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    for (const c of known ?? (await this.centres(tenant))) {
      names.set(c.homeNodeId, c.homeNodeName);
      for (const p of c.allocationPolicies) names.set(p.toNodeId, p.toNodeName);
    }
    return names;
  }

  private async slotViews(
    tenant: string,
    centreId: string | null,
    where: { date?: string; sessionId?: string; fromMs?: number; toMs?: number },
  ): Promise<DiarySlotView[]> {
    const centres = await this.centres(tenant);
    return this.store.withTenant(tenant, async (trx) => {
      const db = bookingDb(trx);
      let q = db.selectFrom('booking_slots').selectAll().where('tenant', '=', tenant);
      if (centreId) q = q.where('centre_id', '=', centreId);
      if (where.date) q = q.where('date', '=', where.date);
      if (where.sessionId) q = q.where('session_id', '=', where.sessionId);
      if (where.fromMs !== undefined) q = q.where('start_ms', '>=', where.fromMs);
      if (where.toMs !== undefined) q = q.where('start_ms', '<=', where.toMs);
      const slots = await q.orderBy('start_ms').orderBy('slot_id').execute();
      return this.toSlotViews(trx, tenant, slots, centres);
    });
  }

  /** Slot rows as the diary shows them: with the session's clinician and room and the owner's name. */
  private async toSlotViews(
    trx: Tx,
    tenant: string,
    slots: readonly BookingSlotsTable[],
    centreList: readonly CentreView[],
  ): Promise<DiarySlotView[]> {
    if (slots.length === 0) return [];
    const names = await this.nodeNames(tenant, centreList);
    const centres = new Map(centreList.map((c) => [c.centreId, c]));
    const sessions = new Map(
      (
        await bookingDb(trx)
          .selectFrom('booking_sessions')
          .select(['session_id', 'session'])
          .where('tenant', '=', tenant)
          .where('session_id', 'in', [...new Set(slots.map((s) => s.session_id))])
          .execute()
      ).map((s) => [s.session_id, JSON.parse(s.session) as DiarySession]),
    );
    return slots.map((s) => {
      const session = sessions.get(s.session_id);
      const bookings = Number(s.booked);
      const capacity = Number(s.capacity);
      const roomId = session?.roomId ?? '';
      return {
        slotId: s.slot_id,
        sessionId: s.session_id,
        centreId: s.centre_id,
        roomId,
        date: s.date,
        startMs: Number(s.start_ms),
        endMs: Number(s.end_ms),
        startLocal: s.start_local,
        capacity,
        kinds: JSON.parse(s.kinds) as AppointmentKind[],
        ownerNodeId: s.owner_node,
        ownerNodeName: names.get(s.owner_node) ?? s.owner_node,
        bookableHere: s.owner_node === this.nodeId,
        bookings,
        free: Math.max(0, capacity - bookings),
        blocked: s.blocked_reason !== null,
        blockReason: s.blocked_reason,
        sessionCancelled: Number(s.session_cancelled) === 1,
        clinicianName: session?.clinicianName ?? '',
        roomName: centres.get(s.centre_id)?.rooms.find((r) => r.roomId === roomId)?.name ?? roomId,
      };
    });
  }

  // ---- booking ------------------------------------------------------------------------------------

  /** The case's booking window: from its disposition, or a clinician's outcome "book an appointment". */
  private timeframeOf(ctx: RequestContext, row: CasesTable): Timeframe | null {
    const state = JSON.parse(row.state) as CaseState;
    if (state.outcomes.includes('book_appointment')) return bookingTimeframe({ outcome: 'book_appointment' });
    const fromDisposition = row.disposition_kind
      ? bookingTimeframe({
          kind: row.disposition_kind as DispositionKind,
          ...(row.dx_code ? { dxCode: row.dx_code } : {}),
          ...(row.timeframe_minutes !== null ? { timeframeMinutes: Number(row.timeframe_minutes) } : {}),
        })
      : null;
    if (fromDisposition) return fromDisposition;
    // A clinician books from the consultation as the outcome "book an appointment" would.
    if (hasPermission(ctx.roles, 'consultations.write'))
      return bookingTimeframe({ outcome: 'book_appointment' });
    return null;
  }

  /**
   * A case one can book for, with its window, and `also` read in the same transaction as the case
   * (given the window, only when the case is bookable as stored; the checks still run after it).
   */
  private async bookableCase<T = undefined>(
    ctx: RequestContext,
    caseId: string,
    also?: (trx: Tx, window: { timeframe: Timeframe; deadlineMs: number }) => Promise<T>,
  ) {
    const read = await this.deps.cases.getWith(ctx, caseId, async (trx, stored) => {
      const window = stored && also ? this.bookingWindow(ctx, stored) : null;
      return window && !(window instanceof ConflictError) ? also!(trx, window) : undefined;
    });
    const window = this.bookingWindow(ctx, read.row);
    if (window instanceof ConflictError) throw window;
    return { row: read.row, ...window, also: read.also };
  }

  /** The case's window (kind, minutes, deadline), or why nothing can be booked for it. */
  private bookingWindow(
    ctx: RequestContext,
    row: CasesTable,
  ): { timeframe: Timeframe; deadlineMs: number } | ConflictError {
    if (['closed', 'abandoned', 'call_ended'].includes(row.status))
      return new ConflictError(
        `the case is ${row.status.replace('_', ' ')}: nothing more can be booked for it`,
      );
    const timeframe = this.timeframeOf(ctx, row);
    if (!timeframe)
      return new ConflictError(
        "the case's disposition is not seen at a treatment centre: a clinician may book one from the consultation",
      );
    return { timeframe, deadlineMs: Number(row.received_at) + timeframe.minutes * 60_000 };
  }

  async options(
    ctx: RequestContext,
    caseId: string,
    input: {
      kind?: AppointmentKind | undefined;
      limit?: number | undefined;
      /** Where the patient is: the options come nearest first (core suggestSlots); none: by time only. */
      from?: { postcode: string } | { latitude: number; longitude: number } | null | undefined;
    },
  ) {
    const now = this.clock.nowMs();
    const limit = Math.min(
      MAX_SUGGESTION_LIMIT,
      Math.max(0, Math.floor(input.limit ?? DEFAULT_SUGGESTION_LIMIT)),
    );
    const centres = await this.centres(ctx.tenant);
    // The case and the only slots that can reach the list, in one transaction.
    const { timeframe, deadlineMs, also } = await this.bookableCase(ctx, caseId, async (trx, window) =>
      this.toSlotViews(
        trx,
        ctx.tenant,
        await this.candidateSlots(
          trx,
          ctx.tenant,
          centres.map((c) => c.centreId),
          { now, deadlineMs: window.deadlineMs, kind: input.kind ?? window.timeframe.kind, limit },
        ),
        centres,
      ),
    );
    const slots = also ?? [];
    const from = input.from ? await this.place(input.from) : null;
    const kind = input.kind ?? timeframe.kind;
    const suggested = suggestSlots({
      slots: slots.map((s) => ({ ...s, utcOffsetMinutes: 0 })),
      centres: centres.map((c) => ({ centreId: c.centreId, name: c.name, lat: c.lat, lon: c.lon })),
      from,
      nowMs: now,
      deadlineMs,
      kind,
      limit,
    });
    const byId = new Map(centres.map((c) => [c.centreId, c]));
    return {
      kind,
      timeframeMinutes: timeframe.minutes,
      deadlineMs,
      options: suggested.map((s) => {
        const c = byId.get(s.centre.centreId)!;
        const { utcOffsetMinutes: _offset, ...slot } = s.slot;
        return {
          slot,
          centre: {
            centreId: c.centreId,
            name: c.name,
            address: c.address,
            postcode: c.postcode,
            phone: c.phone,
          },
          distanceKm: s.distanceKm,
          withinTimeframe: s.withinTimeframe,
          free: s.slot.free,
          bookableHere: s.slot.bookableHere,
          ownerNodeId: s.slot.ownerNodeId,
          ownerNodeName: s.slot.ownerNodeName,
        };
      }),
    };
  }

  /** The patient's place: coordinates as given, or a postcode's from the postcode table (400 when unknown). */
  private async place(
    from: { postcode: string } | { latitude: number; longitude: number },
  ): Promise<{ lat: number; lon: number }> {
    if (!('postcode' in from)) return { lat: from.latitude, lon: from.longitude };
    const found = this.deps.locate ? await this.deps.locate(from.postcode) : null;
    if (!found)
      throw new ValidationError([
        {
          path: 'query.postcode',
          message: 'is not in the postcode table: check it, or give the latitude and longitude instead',
        },
      ]);
    return { lat: found.latitude, lon: found.longitude };
  }

  /**
   * The only slots that can reach the first `limit` suggestions, read through the open-slot indexes
   * (projection.ts) without the rest of the fortnight. Core's order (suggestSlots) puts the groups
   * first (in the timeframe and bookable here, in the timeframe held elsewhere, after it and
   * bookable here, after it held elsewhere) and within a group takes the centres' earliest suitable
   * slots in turns: a slot is in the first `limit` only if its group's earlier groups leave room and
   * fewer than `limit` suitable slots of its centre and group come before it. So each group is read
   * only while the list is short, as each centre's first `k` slots of the group (one statement per
   * group), with `k` the centres' fair share of the room left, and again with `k` = the room left
   * when a centre had more and the share did not fill it. Ties in time are broken by slot id in
   * byte order as core breaks them (`collate "C"` on PostgreSQL).
   */
  private async candidateSlots(
    trx: Tx,
    tenant: string,
    centreIds: readonly string[],
    at: { now: number; deadlineMs: number; kind: AppointmentKind; limit: number },
  ): Promise<BookingSlotsTable[]> {
    const horizon = at.now + LOOK_AHEAD_MS;
    const groups = [
      { ownedHere: true, within: true },
      { ownedHere: false, within: true },
      { ownedHere: true, within: false },
      { ownedHere: false, within: false },
    ];
    const kindLike = `%"${at.kind.replace(/[\\%_]/g, (c) => `\\${c}`)}"%`;
    const bySlotId = this.store.dialect === 'postgres' ? sql`slot_id collate "C"` : sql`slot_id`;
    // One centre's first `k` open slots of a group, the centre given as SQL.
    const firstOf = (centre: RawBuilder<unknown>, g: (typeof groups)[number], k: number) => sql`
      select * from booking_slots
      where tenant = ${tenant} and centre_id = ${centre}
        and ${g.ownedHere ? sql`owner_node = ${this.nodeId}` : sql`owner_node <> ${this.nodeId}`}
        and start_ms >= ${at.now} and start_ms <= ${horizon}
        and start_ms ${g.within ? sql`<=` : sql`>`} ${at.deadlineMs}
        and booked < capacity and blocked_reason is null and session_cancelled = 0
        and kinds like ${kindLike} escape '\\'
      order by start_ms, ${bySlotId}
      limit ${k}`;
    const read = async (g: (typeof groups)[number], k: number): Promise<BookingSlotsTable[]> => {
      // PostgreSQL: one lateral subquery run per centre. A union of one branch per centre took
      // PostgreSQL 20-35 ms to plan (each branch matched against every index, under row-level
      // security) on every options call; this plans in about 2 ms.
      if (this.store.dialect === 'postgres')
        return (
          await sql<BookingSlotsTable>`select s.* from unnest(cast(${[...centreIds]} as text[])) as c(centre_id)
            cross join lateral (${firstOf(sql`c.centre_id`, g, k)}) as s`.execute(trx)
        ).rows;
      // SQLite has no lateral join: a union of one branch per centre, at most 500 selects a statement.
      const out: BookingSlotsTable[] = [];
      for (let i = 0; i < centreIds.length; i += 100) {
        const branches = centreIds
          .slice(i, i + 100)
          .map(
            (centreId, j) => sql`select * from (${firstOf(sql`${centreId}`, g, k)}) as ${sql.raw(`c${j}`)}`,
          );
        out.push(
          ...(await sql<BookingSlotsTable>`${sql.join(branches, sql` union all `)}`.execute(trx)).rows,
        );
      }
      return out;
    };
    const found: BookingSlotsTable[] = [];
    let room = at.limit;
    for (const g of groups) {
      if (room <= 0 || centreIds.length === 0) break;
      // The timeframe is over, or ends after the look-ahead: that group has no slots.
      if (g.within ? at.deadlineMs < at.now : at.deadlineMs >= horizon) continue;
      const share = Math.ceil(room / centreIds.length);
      let rows = await read(g, share);
      const perCentre = new Map<string, number>();
      for (const r of rows) perCentre.set(r.centre_id, (perCentre.get(r.centre_id) ?? 0) + 1);
      if (rows.length < room && share < room && [...perCentre.values()].some((n) => n === share))
        rows = await read(g, room);
      found.push(...rows);
      room -= rows.length;
    }
    return found;
  }

  /**
   * Books a slot for a case, only when this node owns it now (else 409 `slot_not_owned_here` naming the
   * owner) and a place is free (`slot_full`), checked again inside the commit. Outside the case's
   * timeframe only with a clinician's recorded reason. Answers with the centre's address and the time
   * only after the booking committed.
   */
  async book(
    ctx: RequestContext,
    caseId: string,
    input: {
      slotId: string;
      kind?: AppointmentKind | undefined;
      outsideTimeframeReason?: string | undefined;
    },
    rebook: { of: BookingAppointmentsTable; reason: string } | null = null,
  ): Promise<AppointmentView> {
    const { row, timeframe, deadlineMs, also } = await this.bookableCase(ctx, caseId, (trx) =>
      this.slotRow(ctx.tenant, input.slotId, trx),
    );
    const kind = input.kind ?? timeframe.kind;
    const slot = also;
    if (!slot) throw new ValidationError([{ path: slotPath, message: 'is not a slot in any diary' }]);
    const outside = Number(slot.start_ms) > deadlineMs;
    const reason = input.outsideTimeframeReason?.trim() || null;
    if (outside && !hasPermission(ctx.roles, 'consultations.write'))
      throw new ValidationError([
        {
          path: 'body.outsideTimeframeReason',
          message: `the slot is after the case's ${timeframe.minutes}-minute timeframe: only a clinician can book it, with a reason`,
        },
      ]);
    if (outside && !reason)
      throw new ValidationError([
        {
          path: 'body.outsideTimeframeReason',
          message: "the slot is after the case's timeframe: give the clinical reason for booking it",
        },
      ]);
    if (!outside && reason)
      throw new ValidationError([
        {
          path: 'body.outsideTimeframeReason',
          message: 'the slot is within the timeframe: no reason is needed',
        },
      ]);
    const first = this.refusal(slot, kind);
    if (first) throw await this.named(ctx.tenant, first);
    // Bookings of this slot from this node already on their way to the ledger count as taken
    // places: a booking that could only succeed if one of them failed is refused now, with what is
    // true at this moment, instead of joining the same group commit to be refused there by the
    // guard (a round trip with the write lock held while every other booking waits).
    const key = `${ctx.tenant}/${slot.slot_id}`;
    const going = this.bookingsGoing.get(key) ?? 0;
    if (Number(slot.booked) + going >= Number(slot.capacity))
      throw new BookingRefusedError(
        'slot_being_booked',
        'another booking of this slot is being made at this moment: choose another slot, or try this one again in a moment',
      );
    this.bookingsGoing.set(key, going + 1);
    try {
      return await this.commitBooking(
        ctx,
        caseId,
        row,
        slot,
        kind,
        timeframe,
        outside ? reason : null,
        rebook,
      );
    } finally {
      const left = (this.bookingsGoing.get(key) ?? 1) - 1;
      if (left > 0) this.bookingsGoing.set(key, left);
      else this.bookingsGoing.delete(key);
    }
  }

  /**
   * Per tenant and slot, this node's bookings of it sent to the ledger and not yet committed or
   * refused. Only a way to keep bookings that cannot succeed out of the commit: the guard inside the
   * commit still decides (and this node is the only one that can book its slots).
   */
  private readonly bookingsGoing = new Map<string, number>();

  private async commitBooking(
    ctx: RequestContext,
    caseId: string,
    row: CasesTable,
    slot: BookingSlotsTable,
    kind: AppointmentKind,
    timeframe: Timeframe,
    outsideTimeframeReason: string | null,
    rebook: { of: BookingAppointmentsTable; reason: string } | null,
  ): Promise<AppointmentView> {
    const bookingId = randomUUID();
    const now = this.clock.nowMs();
    const payload: Booked = {
      bookingId,
      slotId: slot.slot_id,
      centreId: slot.centre_id,
      caseId,
      patientId: row.patient_id,
      patientName: await this.patientName(ctx, row),
      kind,
      startMs: Number(slot.start_ms),
      startLocal: slot.start_local,
      timeframeMinutes: timeframe.minutes,
      outsideTimeframeReason,
      rebookOf: rebook?.of.booking_id ?? null,
      byUserId: ctx.userId,
      atMs: now,
    };
    const drafts: EventDraft[] = [];
    if (rebook)
      drafts.push(
        this.draft(ctx, 'booking.cancelled', {
          bookingId: rebook.of.booking_id,
          caseId,
          reason: rebook.reason,
          atMs: now,
        }),
      );
    drafts.push(this.draft(ctx, 'booking.booked', { ...payload }), this.caseWrite(ctx, caseId));
    let stored: StoredEvent[];
    try {
      stored = await this.ledger.append(drafts, {
        // The database is the last line of defence: owner, block and places (the slot row's booked
        // count, which every append before this one in the commit has updated) read again in the
        // commit.
        guard: async (trx) => {
          const now2 = await this.slotRow(ctx.tenant, slot.slot_id, trx);
          const refused = now2 ? this.refusal(now2, kind) : null;
          if (refused) throw refused;
          if (rebook) {
            const still = await this.appointmentRow(ctx.tenant, rebook.of.booking_id, trx);
            if (still?.status !== 'booked')
              throw new ConflictError('the appointment changed while you were rebooking it: reload');
          }
        },
      });
    } catch (error) {
      throw error instanceof BookingRefusedError ? await this.named(ctx.tenant, error) : error;
    }
    // Answered from the committed event (the row its projection stored in the same commit), not
    // read back: a booking's answer is on the critical path of every client waiting for a place.
    const booked = stored.find((e) => e.type === 'booking.booked')!;
    const centre = (await this.centres(ctx.tenant)).find((c) => c.centreId === slot.centre_id);
    return this.view(newAppointmentRow({ ...booked, payload: JSON.parse(booked.payloadJson) }), centre);
  }

  /**
   * Why this node may not book the slot now, from its row alone (owner, block, start, kinds, and the
   * standing bookings the projection keeps on it), or null. A `slot_not_owned_here` names the owner
   * by its id; `named` gives it the diaries' name for the answer.
   */
  private refusal(s: BookingSlotsTable, kind: AppointmentKind): BookingRefusedError | null {
    if (s.owner_node !== this.nodeId)
      return new BookingRefusedError(
        'slot_not_owned_here',
        `this slot is held by ${s.owner_node}: only that node can book it`,
        s.owner_node,
        s.owner_node,
      );
    if (s.blocked_reason !== null || Number(s.session_cancelled) === 1)
      return new BookingRefusedError('slot_blocked', 'this slot is blocked: choose another');
    if (Number(s.start_ms) < this.clock.nowMs())
      return new BookingRefusedError('slot_in_past', 'this slot has started already: choose a later one');
    if (!(JSON.parse(s.kinds) as string[]).includes(kind))
      return new BookingRefusedError(
        'wrong_kind',
        `this slot does not take ${APPOINTMENT_KIND_WORDS[kind].toLowerCase()} appointments`,
      );
    if (Number(s.booked) >= Number(s.capacity))
      return new BookingRefusedError('slot_full', 'this slot was just taken: choose another');
    return null;
  }

  /** A refusal naming the owner node as the diaries know it (read only when there is one to name). */
  private async named(tenant: string, refusal: BookingRefusedError): Promise<BookingRefusedError> {
    if (refusal.reason !== 'slot_not_owned_here' || !refusal.ownerNodeId) return refusal;
    const name = (await this.nodeNames(tenant)).get(refusal.ownerNodeId) ?? refusal.ownerNodeId;
    return new BookingRefusedError(
      'slot_not_owned_here',
      `this slot is held by ${name}: only that node can book it`,
      refusal.ownerNodeId,
      name,
    );
  }

  private async patientName(ctx: RequestContext, row: CasesTable): Promise<string> {
    if (row.patient_id) {
      const facts = await this.deps.patients.queueFacts(ctx, [row.patient_id]);
      const name = facts.get(row.patient_id)?.name;
      if (name) return name.slice(0, 200);
    }
    const caller = JSON.parse(row.caller) as { name?: string; relationship?: string };
    return (caller.relationship === 'self' && caller.name ? caller.name : 'Patient not yet identified').slice(
      0,
      200,
    );
  }

  private async slotRow(tenant: string, slotId: string, trx?: Tx): Promise<BookingSlotsTable | undefined> {
    const read = (t: Tx) =>
      bookingDb(t)
        .selectFrom('booking_slots')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('slot_id', '=', slotId)
        .executeTakeFirst();
    return trx ? read(trx) : this.store.withTenant(tenant, read);
  }

  private async appointmentRow(tenant: string, bookingId: string, trx?: Tx) {
    const read = (t: Tx) =>
      bookingDb(t)
        .selectFrom('booking_appointments')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('booking_id', '=', bookingId)
        .executeTakeFirst();
    return trx ? read(trx) : this.store.withTenant(tenant, read);
  }

  /** An appointment the caller may act on (through its case: the access layer's site rule). */
  private async ownAppointment(ctx: RequestContext, bookingId: string) {
    const row = await this.appointmentRow(ctx.tenant, bookingId);
    if (!row) throw new NotFoundError('appointment');
    await this.deps.cases.get(ctx, row.case_id);
    return row;
  }

  /**
   * Cancels an appointment with a reason. Any node may write it: it only frees a place, which the
   * slot's owner can book again once it has read the cancellation.
   */
  async cancel(ctx: RequestContext, bookingId: string, reason: string): Promise<AppointmentView> {
    const row = await this.ownAppointment(ctx, bookingId);
    if (row.status !== 'booked')
      throw new ConflictError(
        `the appointment is ${row.status.replace(/_/g, ' ')}: it can no longer be cancelled`,
      );
    await this.ledger.append([
      this.draft(ctx, 'booking.cancelled', {
        bookingId,
        caseId: row.case_id,
        reason,
        atMs: this.clock.nowMs(),
      }),
      this.caseWrite(ctx, row.case_id),
    ]);
    return (await this.appointment(ctx.tenant, bookingId))!;
  }

  /** Cancel and book in one commit: the new slot must be owned here; the old place is freed. */
  async rebook(
    ctx: RequestContext,
    bookingId: string,
    input: { slotId: string; reason: string; outsideTimeframeReason?: string | undefined },
  ): Promise<AppointmentView> {
    const row = await this.ownAppointment(ctx, bookingId);
    if (row.status !== 'booked')
      throw new ConflictError(
        `the appointment is ${row.status.replace(/_/g, ' ')}: it can no longer be moved`,
      );
    if (row.slot_id === input.slotId)
      throw new ValidationError([{ path: slotPath, message: 'is the slot the appointment is in already' }]);
    return this.book(
      ctx,
      row.case_id,
      {
        slotId: input.slotId,
        kind: row.kind as AppointmentKind,
        outsideTimeframeReason: input.outsideTimeframeReason,
      },
      { of: row, reason: input.reason },
    );
  }

  async caseAppointments(ctx: RequestContext, caseId: string): Promise<AppointmentView[]> {
    await this.deps.cases.get(ctx, caseId);
    return this.appointmentsOfCase(ctx.tenant, caseId);
  }

  private async appointmentsOfCase(tenant: string, caseId: string): Promise<AppointmentView[]> {
    const rows = await this.store.withTenant(tenant, (trx) =>
      bookingDb(trx)
        .selectFrom('booking_appointments')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('case_id', '=', caseId)
        .orderBy('hlc', 'desc')
        .execute(),
    );
    const centres = new Map((await this.centres(tenant)).map((c) => [c.centreId, c]));
    return rows.map((r) => this.view(r, centres.get(r.centre_id)));
  }

  private async appointment(tenant: string, bookingId: string): Promise<AppointmentView | null> {
    const row = await this.appointmentRow(tenant, bookingId);
    if (!row) return null;
    return this.view(
      row,
      (await this.centres(tenant)).find((c) => c.centreId === row.centre_id),
    );
  }

  private view(r: BookingAppointmentsTable, centre: CentreDefined | undefined): AppointmentView {
    const b = JSON.parse(r.booked) as Partial<Booked> & WalkIn;
    const startMs = Number(r.start_ms);
    return {
      bookingId: r.booking_id,
      caseId: r.case_id,
      slotId: r.slot_id,
      kind: r.kind as AppointmentKind,
      kindText: APPOINTMENT_KIND_WORDS[r.kind as AppointmentKind],
      centreId: r.centre_id,
      centreName: centre?.name ?? r.centre_id,
      address: centre?.address ?? '',
      postcode: centre?.postcode ?? '',
      phone: centre?.phone ?? '',
      startMs,
      startLocal: b.startLocal ?? formatLocal(startMs),
      state: r.status as AppointmentState,
      walkIn: Number(r.walk_in) === 1,
      outsideTimeframeReason: b.outsideTimeframeReason ?? null,
      cancelReason: r.cancelled ? (JSON.parse(r.cancelled) as { reason: string }).reason : null,
      rebookOf: b.rebookOf ?? null,
      bookedByNodeId: r.node,
    };
  }

  // ---- reception ----------------------------------------------------------------------------------

  /** The day's list at a centre: no clinical notes, only who, when, arrival, waiting and who saw them. */
  async reception(
    ctx: RequestContext,
    centreId: string,
    date: string,
  ): Promise<{ date: string; appointments: ReceptionRow[] }> {
    await this.centreAtOwnSite(ctx, centreId);
    const { startMs, endMs } = dayBounds(date);
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      bookingDb(trx)
        .selectFrom('booking_appointments')
        .selectAll()
        .where('tenant', '=', ctx.tenant)
        .where('centre_id', '=', centreId)
        .where('start_ms', '>=', startMs)
        .where('start_ms', '<', endMs)
        .where('status', '!=', 'cancelled')
        .orderBy('start_ms')
        .orderBy('booking_id')
        .execute(),
    );
    const seenBy = rows.flatMap((r) =>
      r.seen ? [(JSON.parse(r.seen) as { clinicianId: string }).clinicianId] : [],
    );
    const names = await this.deps.accounts.displayNames(ctx.tenant, seenBy);
    const now = this.clock.nowMs();
    const appointments = rows.map((r): ReceptionRow => {
      const b = JSON.parse(r.booked) as Partial<Booked> & {
        patientName: string;
        timeframeMinutes: number | null;
      };
      const arrivedAtMs = num(r.arrived_at_ms);
      const timeframe = b.timeframeMinutes ?? null;
      const waitingNow = arrivedAtMs !== null && r.status === 'arrived';
      return {
        bookingId: r.booking_id,
        caseId: r.case_id,
        startMs: Number(r.start_ms),
        startLocal: b.startLocal ?? formatLocal(Number(r.start_ms)),
        patientName: b.patientName,
        kind: r.kind as AppointmentKind,
        kindText: APPOINTMENT_KIND_WORDS[r.kind as AppointmentKind],
        state: r.status as AppointmentState,
        walkIn: Number(r.walk_in) === 1,
        arrivedAtMs,
        waitingMinutes: waitingNow ? Math.floor((now - arrivedAtMs) / 60_000) : null,
        timeframeMinutes: timeframe,
        waiting: waitingNow && timeframe !== null ? waitingAtRisk(arrivedAtMs, now, timeframe) : null,
        seenByName: r.seen
          ? (names.get((JSON.parse(r.seen) as { clinicianId: string }).clinicianId) ?? null)
          : null,
      };
    });
    await this.ledger.append([
      accessEvent(ctx, {
        action: 'read',
        resourceType: 'case',
        breakGlass: false,
        fields: ['reception:patientName', 'reception:arrival'],
      }),
    ]);
    return { date, appointments };
  }

  /**
   * The patient arrived: recorded, and the case goes to the clinicians' queue in the same commit (a
   * case waiting for its appointment, or for a referral, is queued; one already queued stays so).
   */
  async arrived(ctx: RequestContext, bookingId: string) {
    const row = await this.ownAppointment(ctx, bookingId);
    if (row.status !== 'booked' && row.status !== 'did_not_attend')
      throw new ConflictError(
        `the appointment is ${row.status.replace(/_/g, ' ')}: arrival cannot be recorded`,
      );
    const fact = this.draft(ctx, 'booking.arrived', {
      bookingId,
      caseId: row.case_id,
      atMs: this.clock.nowMs(),
    });
    const caseRow = await this.deps.cases.get(ctx, row.case_id);
    const drafts: EventDraft[] = [fact];
    if (['follow_up_arranged', 'referral_pending', 'disposition_reached'].includes(caseRow.status))
      for (const e of decide(JSON.parse(caseRow.state) as CaseState, { type: 'queue_for_clinician' }))
        drafts.push({
          tenant: ctx.tenant,
          type: e.type,
          actor: actorOf(ctx),
          payload: e.payload as Record<string, unknown>,
        });
    // Appended only if the case has not moved on since it was read (the case service's compare-and-set).
    await this.deps.cases.appendFacts(ctx, row.case_id, drafts, Number(caseRow.version));
    return (await this.appointment(ctx.tenant, bookingId))!;
  }

  async didNotAttend(ctx: RequestContext, bookingId: string) {
    const row = await this.ownAppointment(ctx, bookingId);
    if (row.status !== 'booked')
      throw new ConflictError(
        `the appointment is ${row.status.replace(/_/g, ' ')}: it cannot be marked did not attend`,
      );
    await this.ledger.append([
      this.draft(ctx, 'booking.did_not_attend', { bookingId, caseId: row.case_id, atMs: this.clock.nowMs() }),
    ]);
    return (await this.appointment(ctx.tenant, bookingId))!;
  }

  async seen(ctx: RequestContext, bookingId: string, clinicianId: string | undefined) {
    const row = await this.ownAppointment(ctx, bookingId);
    if (row.status !== 'arrived')
      throw new ConflictError('the patient has not arrived: record the arrival first');
    const who = clinicianId ?? ctx.userId;
    if (!(await this.deps.accounts.displayNames(ctx.tenant, [who])).has(who))
      throw new ValidationError([
        { path: 'body.clinicianId', message: 'is not a member of staff of your provider' },
      ]);
    await this.ledger.append([
      this.draft(ctx, 'booking.seen', {
        bookingId,
        caseId: row.case_id,
        clinicianId: who,
        atMs: this.clock.nowMs(),
      }),
    ]);
    return (await this.appointment(ctx.tenant, bookingId))!;
  }

  /**
   * A patient who walked in: a case opened at the desk at the centre's site (the call's details as a
   * health adviser takes them), arrived at once and in the clinicians' queue, in one commit.
   */
  async walkIn(
    ctx: RequestContext,
    centreId: string,
    input: {
      patientName: string;
      patientId?: string | undefined;
      callbackNumber: string;
      presentingComplaint: string;
      kind?: AppointmentKind | undefined;
    },
  ): Promise<AppointmentView> {
    const centre = await this.centreAtOwnSite(ctx, centreId);
    if (
      input.patientId &&
      !(await this.deps.patients.queueFacts(ctx, [input.patientId])).has(input.patientId)
    )
      throw new ValidationError([{ path: 'body.patientId', message: 'is not a patient of your provider' }]);
    const caseId = randomUUID();
    const bookingId = randomUUID();
    const now = this.clock.nowMs();
    const actor = actorOf(ctx);
    const walk: WalkIn = {
      bookingId,
      caseId,
      centreId,
      patientId: input.patientId ?? null,
      patientName: input.patientName,
      kind: input.kind ?? 'urgent_face_to_face',
      timeframeMinutes: WALK_IN_TIMEFRAME_MINUTES,
      atMs: now,
    };
    const drafts = this.deps.cases.openingDrafts(ctx.tenant, actor, {
      caseId,
      input: {
        siteId: centre.siteId,
        receivedAt: new Date(now).toISOString(),
        caller: {
          name: input.patientName,
          relationship: 'self',
          callbackNumber: input.callbackNumber,
        },
        ...(input.patientId ? { patientId: input.patientId } : {}),
        location: `Walked in at ${centre.name}`,
        presentingComplaint: input.presentingComplaint,
      },
      before: [
        { type: 'answer_call' },
        { type: 'start_triage' },
        { type: 'reach_disposition', kind: 'other', timeframeMinutes: WALK_IN_TIMEFRAME_MINUTES },
      ],
      facts: [
        this.draft(ctx, 'booking.walk_in', { ...walk }),
        this.draft(ctx, 'booking.arrived', { bookingId, caseId, atMs: now }),
      ],
      after: [{ type: 'queue_for_clinician' }],
    });
    await this.ledger.append([
      ...drafts,
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        resourceId: caseId,
        breakGlass: false,
        fields: ['caller', 'presentingComplaint'],
      }),
    ]);
    return (await this.appointment(ctx.tenant, bookingId))!;
  }

  // ---- custody on this node: policies and the cut-off ----------------------------------------------

  /**
   * Applies the allocation policies of the centres whose home node this is: each future session not
   * yet allocated to a policy's receiver gets its slots (core pickAllocation, spread through the
   * session) handed over, to come back `cutoffMinutesBeforeStart` before the session starts.
   */
  async applyPolicies(tenant: string, onlyCentre?: string): Promise<number> {
    const now = this.clock.nowMs();
    let written = 0;
    for (const centre of await this.centres(tenant)) {
      if (centre.homeNodeId !== this.nodeId || (onlyCentre && centre.centreId !== onlyCentre)) continue;
      for (const policy of centre.allocationPolicies) {
        if (policy.toNodeId === this.nodeId) continue;
        // A policy that hands over nothing has nothing to do (and must not cost a read per session).
        if (policy.count === 0 || (policy.count === null && !policy.share)) continue;
        const cutoffMs = policy.cutoffMinutesBeforeStart * 60_000;
        const pending = await this.store.withTenant(tenant, async (trx) => {
          const db = bookingDb(trx);
          // Only sessions whose first slot is still beyond the cut-off: a session that has started,
          // or is inside its cut-off, would come straight back, so it is never handed over. Past
          // sessions are most of a diary's history, so they are left out in the query.
          const sessions = await db
            .selectFrom('booking_sessions as s')
            .innerJoin('booking_slots as slot', (join) =>
              join.onRef('slot.tenant', '=', 's.tenant').onRef('slot.session_id', '=', 's.session_id'),
            )
            .select('s.session_id')
            .where('s.tenant', '=', tenant)
            .where('s.centre_id', '=', centre.centreId)
            .where('s.cancelled_reason', 'is', null)
            .groupBy('s.session_id')
            .having((eb) => eb.fn.min('slot.start_ms'), '>', now + cutoffMs)
            .execute();
          const done = new Set(
            (
              await db
                .selectFrom('booking_allocations')
                .select('session_id')
                .where('tenant', '=', tenant)
                .where('centre_id', '=', centre.centreId)
                .where('to_node', '=', policy.toNodeId)
                .where('from_node', '=', this.nodeId)
                .execute()
            ).map((r) => r.session_id),
          );
          return sessions.map((s) => s.session_id).filter((id) => !done.has(id));
        });
        for (const sessionId of pending) {
          const slots = await this.slotViews(tenant, centre.centreId, { sessionId });
          const startMs = Math.min(...slots.map((s) => s.startMs));
          const returnAtMs = startMs - cutoffMs;
          if (slots.length === 0 || returnAtMs <= now) continue;
          const candidates = slots.filter(
            (s) => s.bookableHere && s.bookings === 0 && !s.blocked && !s.sessionCancelled,
          );
          const picked = pickAllocation(
            candidates.map((s) => ({ ...s, utcOffsetMinutes: 0 })),
            policy.count !== null ? { count: policy.count } : { share: policy.share ?? 0 },
          );
          if (picked.length === 0) continue;
          await this.ledger.append(
            [
              {
                tenant,
                type: 'booking.slots_allocated',
                actor: `node:${this.nodeId}`,
                payload: {
                  centreId: centre.centreId,
                  sessionId,
                  slotIds: picked,
                  toNodeId: policy.toNodeId,
                  returnAtMs,
                },
              },
            ],
            { guard: (trx) => this.stillOwnedAndFree(trx, tenant, picked) },
          );
          written++;
        }
      }
    }
    return written;
  }

  private async stillOwnedAndFree(trx: Tx, tenant: string, slotIds: string[]): Promise<void> {
    const rows = await bookingDb(trx)
      .selectFrom('booking_slots')
      .select(['slot_id', 'owner_node', 'booked'])
      .where('tenant', '=', tenant)
      .where('slot_id', 'in', slotIds)
      .execute();
    if (
      rows.length !== slotIds.length ||
      rows.some((r) => r.owner_node !== this.nodeId || Number(r.booked) > 0)
    )
      throw new ConflictError('the slots changed while they were being allocated');
  }

  /**
   * Gives back the slots this node holds by allocation whose cut-off has come (booked or not: their
   * bookings stay, and the place freed by a later cancellation is the giver's to re-use).
   */
  async returnDue(tenant: string): Promise<number> {
    const now = this.clock.nowMs();
    const due = await this.store.withTenant(tenant, async (trx) => {
      const db = bookingDb(trx);
      const allocations = await db
        .selectFrom('booking_allocations')
        .selectAll()
        .where('tenant', '=', tenant)
        .where('to_node', '=', this.nodeId)
        .where('return_at_ms', '<=', now)
        .execute();
      const out: { centreId: string; toNodeId: string; slotIds: string[] }[] = [];
      for (const a of allocations) {
        const ids = JSON.parse(a.slot_ids) as string[];
        if (ids.length === 0) continue;
        const held = await db
          .selectFrom('booking_slots')
          .select('slot_id')
          .where('tenant', '=', tenant)
          .where('slot_id', 'in', ids)
          .where('owner_node', '=', this.nodeId)
          .execute();
        if (held.length > 0)
          out.push({ centreId: a.centre_id, toNodeId: a.from_node, slotIds: held.map((h) => h.slot_id) });
      }
      return out;
    });
    for (const d of due)
      await this.ledger.append(
        [{ tenant, type: 'booking.slots_returned', actor: `node:${this.nodeId}`, payload: { ...d } }],
        {
          guard: async (trx) => {
            const rows = await bookingDb(trx)
              .selectFrom('booking_slots')
              .select('owner_node')
              .where('tenant', '=', tenant)
              .where('slot_id', 'in', d.slotIds)
              .execute();
            if (rows.some((r) => r.owner_node !== this.nodeId)) throw new ConflictError('returned already');
          },
        },
      );
    return due.length;
  }

  /** Hands slots back by hand (a holder giving up its allocation before the cut-off). */
  async returnSlots(ctx: RequestContext, slotIds: string[]) {
    const rows = await this.store.withTenant(ctx.tenant, async (trx) => {
      const db = bookingDb(trx);
      const slots = await db
        .selectFrom('booking_slots')
        .select(['slot_id', 'centre_id', 'owner_node'])
        .where('tenant', '=', ctx.tenant)
        .where('slot_id', 'in', slotIds)
        .execute();
      const allocations = await db
        .selectFrom('booking_allocations')
        .select(['slot_ids', 'from_node'])
        .where('tenant', '=', ctx.tenant)
        .where('to_node', '=', this.nodeId)
        .execute();
      return slots.map((s) => ({
        ...s,
        giver:
          allocations.find((a) => (JSON.parse(a.slot_ids) as string[]).includes(s.slot_id))?.from_node ??
          null,
      }));
    });
    const notHeld = slotIds.filter(
      (id) => !rows.some((r) => r.slot_id === id && r.owner_node === this.nodeId && r.giver),
    );
    if (notHeld.length > 0)
      throw new ValidationError([
        { path: 'body.slotIds', message: `${notHeld.length} of the slots are not held here by allocation` },
      ]);
    const groups = new Map<string, { centreId: string; toNodeId: string; slotIds: string[] }>();
    for (const r of rows) {
      const key = `${r.centre_id} ${r.giver}`;
      const g = groups.get(key) ?? { centreId: r.centre_id, toNodeId: r.giver!, slotIds: [] };
      g.slotIds.push(r.slot_id);
      groups.set(key, g);
    }
    await this.ledger.append(
      [...groups.values()].map((g) => this.draft(ctx, 'booking.slots_returned', { ...g })),
    );
    return { returned: slotIds };
  }

  /** One pass of this node's timer: policies applied, allocations past their cut-off returned. */
  async tick(tenant: string): Promise<{ allocated: number; returned: number }> {
    const allocated = await this.applyPolicies(tenant);
    const returned = await this.returnDue(tenant);
    return { allocated, returned };
  }

  // ---- the invariant, PEM, downtime ---------------------------------------------------------------

  /**
   * Re-checks the scheme over this node's whole ledger with core's custody fold: a booking written by
   * a node that did not own the slot at that point of ledger order, or beyond the slot's places, or a
   * hand-over by a non-owner. The scheme makes these impossible; anything found is a double booking to
   * be reconciled by a person, never settled silently.
   */
  async custodyViolations(tenant: string): Promise<CustodyViolation[]> {
    const rows = await this.store.withTenant(tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['node', 'type', 'payload'])
        .where('tenant', '=', tenant)
        .where('type', 'like', 'booking.%')
        .orderBy('hlc')
        .orderBy('node')
        .orderBy('seq')
        .execute(),
    );
    return foldCustody(
      rows.map((r) => ({ node: r.node, type: r.type, payload: JSON.parse(r.payload) as unknown })),
    ).violations;
  }

  /** The PEM's "Appointment" lines: where and when the patient was booked (cancelled ones say so). */
  async pemLines(tenant: string, caseId: string): Promise<string[]> {
    return (await this.appointmentsOfCase(tenant, caseId)).map(
      (a) =>
        `${a.kindText} at ${a.centreName}, ${a.address}, ${a.postcode} on ${a.startLocal}` +
        (a.state === 'cancelled'
          ? ', cancelled'
          : a.state === 'did_not_attend'
            ? ', did not attend'
            : a.state === 'seen'
              ? ', seen'
              : ''),
    );
  }

  /**
   * The downtime pack's appointments (issue 16 item 6): each centre of the given sites (all when
   * 'all') with its standing appointments (booked or arrived) starting from an hour ago (a patient
   * may be late or waiting) to `hours` ahead, in time order. Patient name, time, kind, state and
   * the case reference: what a receptionist needs to run the day on paper, no clinical notes.
   */
  async packSection(
    tenant: string,
    siteIds: readonly string[] | 'all',
    fromMs: number,
    hours: number,
  ): Promise<PackAppointments> {
    const centres = (await this.centres(tenant)).filter(
      (c) => siteIds === 'all' || siteIds.includes(c.siteId),
    );
    if (centres.length === 0) return { fromMs, hours, centres: [] };
    const rows = await this.store.withTenant(tenant, (trx) =>
      bookingDb(trx)
        .selectFrom('booking_appointments')
        .selectAll()
        .where('tenant', '=', tenant)
        .where(
          'centre_id',
          'in',
          centres.map((c) => c.centreId),
        )
        .where('start_ms', '>=', fromMs - 3600_000)
        .where('start_ms', '<', fromMs + hours * 3600_000)
        .where('status', 'in', ['booked', 'arrived'])
        .orderBy('start_ms')
        .orderBy('booking_id')
        .execute(),
    );
    return {
      fromMs,
      hours,
      centres: centres.map((c) => ({
        centreId: c.centreId,
        name: c.name,
        address: `${c.address}, ${c.postcode}`,
        phone: c.phone,
        appointments: rows
          .filter((r) => r.centre_id === c.centreId)
          .map((r) => {
            const v = this.view(r, c);
            return {
              caseId: r.case_id,
              reference: caseReference(r.case_id),
              startLocal: v.startLocal,
              patientName: (JSON.parse(r.booked) as { patientName: string }).patientName,
              kind: v.kindText,
              state: v.state === 'arrived' ? ('arrived' as const) : ('booked' as const),
            };
          }),
      })),
    };
  }

  // ---- helpers -------------------------------------------------------------------------------------

  private draft(ctx: RequestContext, type: string, payload: object): EventDraft {
    return { tenant: ctx.tenant, type, actor: actorOf(ctx), payload: payload as Record<string, unknown> };
  }

  private caseWrite(ctx: RequestContext, caseId: string): EventDraft {
    return accessEvent(ctx, {
      action: 'write',
      resourceType: 'case',
      resourceId: caseId,
      breakGlass: false,
      fields: ['appointment'],
    });
  }
}

/** A local date's first instant and the next day's, in the diary's zone (23 or 25 hours apart across a clock change). */
function dayBounds(date: string): { startMs: number; endMs: number } {
  return { startMs: localToUtcMs(date, '00:00'), endMs: localToUtcMs(addLocalDays(date, 1), '00:00') };
}
