import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  NotFoundError,
  REFERRABLE_DISPOSITIONS,
  ValidationError,
  type CaseState,
  type Clock,
  type Endpoint,
  type MessageState,
} from '@holdfast/core';
import { accessEvent } from '../audit/auditor.ts';
import type { CasesTable } from '../cases/projection.ts';
import type { CaseService } from '../cases/service.ts';
import type { TriageService } from '../cases/triage.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import { endpointAddress, type MessageView, type MessagingService } from '../messaging/service.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store } from '../store/store.ts';
import { bookingBundle, referralBundle } from './bundles.ts';
import type { BookingRequested, ReferralChosen, ReferralRouteKind } from './events.ts';
import { referralsDb, type AcknowledgedAlert, type ReferralsTable } from './projection.ts';

/**
 * What a referral needs of a directory service (the contract's `DirectoryService` has these and
 * more): who it is, how it takes referrals, and where it shows its slots.
 */
export interface ReferralTarget {
  serviceId: string;
  name: string;
  odsCode: string;
  type: string;
  phone: string | null;
  referral: { kind: 'message'; endpointId: string } | { kind: 'phone'; phone: string } | { kind: 'walk_in' };
  booking: { slotsEndpointId: string } | null;
}

/** Finds a service of the provider's directory by id (DirectoryService.serviceById). */
export interface ServiceLookup {
  serviceById(tenant: string, serviceId: string): Promise<ReferralTarget | null>;
}

export type ReferralState =
  'none' | 'waiting' | 'sent' | 'accepted' | 'rejected' | 'did_not_attend' | 'phoned' | 'walk_in' | 'failed';

export type BookingState = 'waiting' | 'booked' | 'refused';

export interface BookingView {
  bookingId: string;
  state: BookingState;
  service: ReferralChosen['service'];
  slot: BookingRequested['slot'];
  reference: string | null;
  reason: string | null;
  requestedAtMs: number;
}

export interface ReferralView {
  state: ReferralState;
  referralId?: string;
  service?: ReferralChosen['service'];
  route?: ReferralRouteKind;
  reference?: string | null;
  reason?: string | null;
  offered: string[];
  searchId?: string | null;
  reasonIfNotFirst?: string | null;
  chosenAtMs?: number;
  phoned?: ReferralChosen['phoned'];
  safeguarding?: boolean;
  messageId?: string | null;
  booking?: BookingView;
}

export interface ReferralAlert {
  referralId: string;
  caseId: string;
  alert: 'rejected' | 'did_not_attend';
  service: { serviceId: string; name: string };
  /** In words for the shift manager: what happened, never patient data. */
  words: string;
  atMs: number;
}

export interface ReferInput {
  serviceId: string;
  searchId: string | null;
  offered: string[];
  reasonIfNotFirst: string | null;
  phoneReferral: { spokeTo: string; reference: string | null } | null;
}

export interface FreeSlot {
  slotId: string;
  start: string;
  end: string;
}

/** The service's slots endpoint could not be asked: answered as a 502 naming the service only. */
export class SlotsUnavailableError extends Error {
  constructor(readonly serviceName: string) {
    super(`${serviceName} did not answer with its free slots: book by phone or try again`);
  }
}

/** How long a referral may wait for the service's answer before it fails and a person is told. */
const REFERRAL_FAIL_AFTER_MS = 30 * 60_000;
/** A booking is made while the caller is on the line: its answer must come quickly. */
const BOOKING_FAIL_AFTER_MS = 5 * 60_000;
const SLOTS_TIMEOUT_MS = 5_000;

/** The states a referral is in once it was chosen: another may be chosen only after these. */
const ENDED: readonly ReferralState[] = ['rejected', 'failed', 'did_not_attend'];

/**
 * Referrals and bookings (C10): the service chosen for a case is recorded with what was offered;
 * a service that takes messages gets the BaRS referral through the outbox in the same commit as the
 * case's facts; a phone-only service's referral is recorded with who took it; a walk-in service is
 * advice only. The referral's state follows the outbox message (waiting, sent, accepted with the
 * receiver's reference, rejected with its reason, failed), then a did-not-attend from the service.
 * A rejection, or a did-not-attend for a patient with a safeguarding flag, is an alert the shift
 * manager sees until acknowledged with a reason.
 */
export class ReferralService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly deps: {
      cases: CaseService;
      messaging: MessagingService;
      patients: PatientService;
      triage: TriageService;
      directory: ServiceLookup;
      fetch?: typeof fetch;
    },
  ) {}

  /** Refers the case to the chosen service (see the class comment). */
  async refer(ctx: RequestContext, caseId: string, input: ReferInput): Promise<ReferralView> {
    const row = await this.deps.cases.get(ctx, caseId);
    const state = JSON.parse(row.state) as CaseState;
    if (state.status !== 'disposition_reached' && state.status !== 'referral_pending')
      throw new ConflictError(
        `a referral is made from a confirmed disposition or a clinician's referral outcome; this case is ${state.status.replace(/_/g, ' ')}`,
      );
    if (
      state.status === 'disposition_reached' &&
      (!state.disposition || !REFERRABLE_DISPOSITIONS.includes(state.disposition))
    )
      throw new ConflictError(`a ${state.disposition ?? 'missing'} disposition is not passed on by referral`);
    const current = await this.status(ctx, caseId);
    if (current.state !== 'none' && !ENDED.includes(current.state))
      throw new ConflictError(
        `the case is referred already (${current.service?.name ?? 'a service'}, ${current.state.replace(/_/g, ' ')})`,
      );
    if (input.offered.length > 0 && input.offered[0] !== input.serviceId && !input.reasonIfNotFirst)
      throw new ValidationError([
        {
          path: 'body.reasonIfNotFirst',
          message: 'say why the first service offered was not chosen',
        },
      ]);
    const service = await this.deps.directory.serviceById(ctx.tenant, input.serviceId);
    if (!service)
      throw new ValidationError([{ path: 'body.serviceId', message: 'is not a service in your directory' }]);
    const route = service.referral.kind;
    if (route === 'phone' && !input.phoneReferral)
      throw new ValidationError([
        {
          path: 'body.phoneReferral',
          message: `${service.name} takes referrals by phone: phone it and say who took the referral`,
        },
      ]);
    let endpoint: Endpoint | null = null;
    if (service.referral.kind === 'message') {
      endpoint = await this.deps.messaging.endpoint(ctx.tenant, service.referral.endpointId);
      if (!endpoint || !endpoint.kinds.includes('referral'))
        throw new ConflictError(
          `${service.name} has no message endpoint for referrals configured: phone the referral${service.phone ? ` (${service.phone})` : ''}`,
        );
    }
    const patient = row.patient_id ? await this.deps.patients.read(ctx, row.patient_id) : null;
    const notes = patient?.record.specialNotes ?? [];
    const concernOnCase = (await this.deps.cases.history(ctx, caseId)).some(
      (e) => e.type === 'case.safeguarding_concern_raised',
    );
    const safeguarding = concernOnCase || notes.some((n) => n.kind === 'safeguarding');
    const now = this.clock.nowMs();
    const referralId = randomUUID();
    const messageId = endpoint ? randomUUID() : null;
    const chosen: ReferralChosen = {
      referralId,
      caseId,
      service: {
        serviceId: service.serviceId,
        name: service.name,
        odsCode: service.odsCode,
        type: service.type,
        phone: service.phone,
      },
      route,
      endpointId: endpoint?.endpointId ?? null,
      messageId,
      searchId: input.searchId,
      offered: input.offered,
      reasonIfNotFirst: input.reasonIfNotFirst,
      phoned: route === 'phone' ? input.phoneReferral : null,
      safeguarding,
      byClinicianId: ctx.roles.some((r) => r === 'clinician' || r === 'prescriber') ? ctx.userId : null,
      atMs: now,
    };
    const facts: EventDraft[] = [
      { tenant: ctx.tenant, type: 'referral.chosen', actor: actorOf(ctx), payload: { ...chosen } },
    ];
    if (endpoint && messageId)
      facts.push(
        this.deps.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
          messageId,
          kind: 'referral',
          endpointId: endpoint.endpointId,
          caseId,
          siteId: row.site_id,
          bundle: referralBundle({
            messageId,
            caseId,
            sentAtIso: new Date(now).toISOString(),
            source: { node: this.ledger.node, tenant: ctx.tenant },
            destination: {
              name: service.name,
              endpoint: endpointAddress(endpoint),
              odsCode: service.odsCode,
            },
            dxCode: row.dx_code ?? 'Referral',
            dispositionLabel: row.disposition_label ?? 'referral to another service',
            timeframeMinutes: row.timeframe_minutes === null ? null : Number(row.timeframe_minutes),
            presentingComplaint: row.complaint,
            location: row.location,
            triagePath: this.deps.triage.answeredPath(row),
            // A note withheld from this role stays withheld from the receiver too.
            specialNotes: notes.flatMap((n) => ('text' in n ? [{ kind: n.kind, text: n.text }] : [])),
            safeguarding,
            patient: patient?.record ?? null,
          }),
          summary: `Referral to ${service.name}`.slice(0, 200),
          failAfterMs: REFERRAL_FAIL_AFTER_MS,
        }),
      );
    facts.push(
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        resourceId: caseId,
        breakGlass: false,
        fields: ['referral'],
      }),
    );
    if (state.status === 'disposition_reached') {
      // The case moves as `refer` always moved it; the referral's facts are in the same commit.
      await this.deps.cases.command(ctx, caseId, { type: 'refer' }, () => facts);
    } else {
      await this.deps.cases.appendFacts(ctx, caseId, facts, Number(row.version));
    }
    return this.status(ctx, caseId);
  }

  /** Where the case's latest referral stands, with its booking if one was asked for. */
  async status(ctx: RequestContext, caseId: string): Promise<ReferralView> {
    await this.deps.cases.get(ctx, caseId);
    const rows = await this.referralRows(ctx.tenant, { caseId });
    const latest = rows[0];
    const booking = await this.latestBooking(ctx, caseId);
    if (!latest) return { state: 'none', offered: [], ...(booking ? { booking } : {}) };
    const message = latest.message_id ? await this.message(ctx, latest.message_id) : null;
    return { ...this.view(latest, message), ...(booking ? { booking } : {}) };
  }

  private view(row: ReferralsTable, message: MessageView | null): ReferralView {
    const chosen = JSON.parse(row.chosen) as ReferralChosen;
    const base = {
      referralId: chosen.referralId,
      service: chosen.service,
      route: chosen.route,
      offered: chosen.offered,
      searchId: chosen.searchId,
      reasonIfNotFirst: chosen.reasonIfNotFirst,
      chosenAtMs: chosen.atMs,
      phoned: chosen.phoned,
      safeguarding: chosen.safeguarding,
      messageId: chosen.messageId,
      reference: chosen.phoned?.reference ?? message?.reference ?? null,
      reason: message?.reason ?? null,
    };
    if (row.did_not_attend_at_ms !== null) return { ...base, state: 'did_not_attend' };
    if (chosen.route === 'walk_in') return { ...base, state: 'walk_in' };
    if (chosen.route === 'phone') return { ...base, state: 'phoned' };
    return { ...base, state: messageStateToReferral(message?.state ?? null, message) };
  }

  /**
   * Referral alerts not yet acknowledged: a rejection, or a did-not-attend for a patient with a
   * safeguarding flag. Read for the dashboard's figure and the shift manager's list.
   */
  async alerts(ctx: RequestContext): Promise<ReferralAlert[]> {
    const rows = await this.referralRows(ctx.tenant, { messageOrDna: true });
    const out: ReferralAlert[] = [];
    for (const row of rows) {
      const acknowledged = (JSON.parse(row.acknowledged) as AcknowledgedAlert[]).map((a) => a.alert);
      const chosen = JSON.parse(row.chosen) as ReferralChosen;
      const service = { serviceId: chosen.service.serviceId, name: chosen.service.name };
      if (
        row.did_not_attend_at_ms !== null &&
        (Number(row.did_not_attend_safeguarding) === 1 || Number(row.safeguarding) === 1) &&
        !acknowledged.includes('did_not_attend')
      )
        out.push({
          referralId: row.referral_id,
          caseId: row.case_id,
          alert: 'did_not_attend',
          service,
          words: `The patient did not attend ${chosen.service.name}, and has a safeguarding flag: follow up now`,
          atMs: Number(row.did_not_attend_at_ms),
        });
      if (!row.message_id || acknowledged.includes('rejected')) continue;
      const message = await this.message(ctx, row.message_id);
      if (message?.state === 'rejected')
        out.push({
          referralId: row.referral_id,
          caseId: row.case_id,
          alert: 'rejected',
          service,
          words: `${chosen.service.name} refused the referral: ${message.reason ?? 'no reason given'}`,
          atMs: message.answeredAtMs ?? Number(row.chosen_at_ms),
        });
    }
    return out.sort((a, b) => b.atMs - a.atMs);
  }

  async acknowledge(
    ctx: RequestContext,
    referralId: string,
    input: { alert: 'rejected' | 'did_not_attend'; reason: string },
  ): Promise<{ alerts: ReferralAlert[] }> {
    const open = (await this.alerts(ctx)).find((a) => a.referralId === referralId && a.alert === input.alert);
    if (!open) {
      const exists = (await this.referralRows(ctx.tenant, { referralId })).length > 0;
      if (!exists) throw new NotFoundError('referral');
      throw new ConflictError(`this referral has no ${input.alert.replace(/_/g, ' ')} alert to acknowledge`);
    }
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'referral.alert_acknowledged',
        actor: actorOf(ctx),
        payload: {
          referralId,
          caseId: open.caseId,
          alert: input.alert,
          atMs: this.clock.nowMs(),
          reason: input.reason,
        },
      },
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        resourceId: open.caseId,
        breakGlass: false,
        fields: ['referral'],
      }),
    ]);
    return { alerts: await this.alerts(ctx) };
  }

  /**
   * A later message about one of our referrals, from the endpoint it went to (the inbound response
   * hook): a Task whose businessStatus says the patient did not attend records it, with whether the
   * patient has a safeguarding flag (as when referred, or a concern raised on the case since).
   */
  async didNotAttendDrafts(
    tenant: string,
    answered: { messageId: string; endpointId: string; kind: string },
    inbound: { messageId: string; bundle: Record<string, unknown> },
  ): Promise<EventDraft[]> {
    if (answered.kind !== 'referral' || !saysDidNotAttend(inbound.bundle)) return [];
    const row = (await this.referralRows(tenant, { messageId: answered.messageId }))[0];
    if (!row || row.did_not_attend_at_ms !== null) return [];
    const concern = (await this.deps.cases.history({ tenant }, row.case_id)).some(
      (e) => e.type === 'case.safeguarding_concern_raised',
    );
    return [
      {
        tenant,
        type: 'referral.did_not_attend',
        actor: `endpoint:${answered.endpointId}`,
        payload: {
          referralId: row.referral_id,
          caseId: row.case_id,
          endpointId: answered.endpointId,
          inboundMessageId: inbound.messageId,
          atMs: this.clock.nowMs(),
          safeguarding: concern || Number(row.safeguarding) === 1,
        },
      },
    ];
  }

  /** How many referral alerts wait for the shift manager (the dashboard's figure). */
  async alertCount(ctx: RequestContext): Promise<number> {
    return (await this.alerts(ctx)).length;
  }

  // ---- bookings ---------------------------------------------------------------------------------

  /** The service's free slots from now, asked of its slots endpoint over HTTP (FHIR Slot search). */
  async slots(ctx: RequestContext, caseId: string, serviceId: string): Promise<{ slots: FreeSlot[] }> {
    await this.deps.cases.get(ctx, caseId);
    const { service, endpoint } = await this.bookable(ctx, serviceId, 'query.serviceId');
    const base = endpointAddress(endpoint).replace(/\/+$/, '');
    const now = new Date(this.clock.nowMs()).toISOString();
    const url = `${base}/Slot?status=free&start=ge${encodeURIComponent(now)}&_count=50`;
    let bundle: { resourceType?: string; entry?: { resource?: Record<string, unknown> }[] };
    try {
      const response = await (this.deps.fetch ?? fetch)(url, {
        headers: { accept: 'application/fhir+json' },
        signal: AbortSignal.timeout(SLOTS_TIMEOUT_MS),
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      bundle = (await response.json()) as typeof bundle;
    } catch {
      throw new SlotsUnavailableError(service.name);
    }
    if (bundle.resourceType !== 'Bundle') throw new SlotsUnavailableError(service.name);
    const slots = (bundle.entry ?? [])
      .map((e) => e.resource)
      .filter((r): r is Record<string, unknown> => r?.resourceType === 'Slot' && r.status === 'free')
      .map((r) => ({ slotId: String(r.id), start: String(r.start), end: String(r.end) }))
      .filter((s) => s.start >= now)
      .sort((a, b) => a.start.localeCompare(b.start));
    return { slots };
  }

  /** Asks the service for a slot: queued through the outbox; booked only once the service accepts. */
  async book(
    ctx: RequestContext,
    caseId: string,
    input: { serviceId: string; slotId: string },
  ): Promise<BookingView> {
    const row = await this.deps.cases.get(ctx, caseId);
    if (row.status === 'closed' || row.status === 'abandoned')
      throw new ConflictError(`the case is ${row.status}: nothing can be booked for it`);
    const current = await this.latestBooking(ctx, caseId);
    if (current && current.state !== 'refused')
      throw new ConflictError(
        `a slot is ${current.state === 'booked' ? 'booked' : 'being booked'} already for this case`,
      );
    const { service, endpoint } = await this.bookable(ctx, input.serviceId, 'body.serviceId');
    const slot = (await this.slots(ctx, caseId, input.serviceId)).slots.find(
      (s) => s.slotId === input.slotId,
    );
    if (!slot)
      throw new ValidationError([
        { path: 'body.slotId', message: `is not a free slot at ${service.name} now: choose another` },
      ]);
    const patient = row.patient_id ? await this.deps.patients.read(ctx, row.patient_id) : null;
    const now = this.clock.nowMs();
    const bookingId = randomUUID();
    const messageId = randomUUID();
    const requested: BookingRequested = {
      bookingId,
      caseId,
      service: {
        serviceId: service.serviceId,
        name: service.name,
        odsCode: service.odsCode,
        type: service.type,
        phone: service.phone,
      },
      endpointId: endpoint.endpointId,
      messageId,
      slot,
      atMs: now,
    };
    await this.deps.cases.appendFacts(ctx, caseId, [
      {
        tenant: ctx.tenant,
        type: 'referral.booking_requested',
        actor: actorOf(ctx),
        payload: { ...requested },
      },
      this.deps.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
        messageId,
        kind: 'booking',
        endpointId: endpoint.endpointId,
        caseId,
        siteId: row.site_id,
        bundle: bookingBundle({
          messageId,
          caseId,
          sentAtIso: new Date(now).toISOString(),
          source: { node: this.ledger.node, tenant: ctx.tenant },
          destination: { name: service.name, endpoint: endpointAddress(endpoint) },
          slot,
          dxCode: row.dx_code ?? 'Booking',
          dispositionLabel: row.disposition_label ?? 'appointment',
          patient: patient?.record ?? null,
        }),
        summary: `Booking at ${service.name}`.slice(0, 200),
        failAfterMs: BOOKING_FAIL_AFTER_MS,
      }),
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        resourceId: caseId,
        breakGlass: false,
        fields: ['booking'],
      }),
    ]);
    return (await this.latestBooking(ctx, caseId))!;
  }

  private async bookable(ctx: RequestContext, serviceId: string, path: string) {
    const service = await this.deps.directory.serviceById(ctx.tenant, serviceId);
    if (!service) throw new ValidationError([{ path, message: 'is not a service in your directory' }]);
    if (!service.booking)
      throw new ValidationError([{ path, message: `${service.name} does not take bookings` }]);
    const endpoint = await this.deps.messaging.endpoint(ctx.tenant, service.booking.slotsEndpointId);
    if (!endpoint || endpoint.transport.type !== 'http')
      throw new ConflictError(`${service.name} has no slots endpoint configured: book by phone`);
    return { service, endpoint };
  }

  private async latestBooking(ctx: RequestContext, caseId: string): Promise<BookingView | null> {
    const row = await this.store.withTenant(ctx.tenant, (trx) =>
      referralsDb(trx)
        .selectFrom('referral_bookings')
        .selectAll()
        .where('tenant', '=', ctx.tenant)
        .where('case_id', '=', caseId)
        .orderBy('requested_hlc', 'desc')
        .executeTakeFirst(),
    );
    if (!row) return null;
    const requested = JSON.parse(row.requested) as BookingRequested;
    const message = await this.message(ctx, row.message_id);
    const state: BookingState =
      message?.state === 'accepted'
        ? 'booked'
        : message && (['rejected', 'failed', 'cancelled'] as MessageState[]).includes(message.state)
          ? 'refused'
          : 'waiting';
    return {
      bookingId: requested.bookingId,
      state,
      service: requested.service,
      slot: requested.slot,
      reference: message?.state === 'accepted' ? message.reference : null,
      reason: state === 'refused' ? (message?.reason ?? null) : null,
      requestedAtMs: requested.atMs,
    };
  }

  private async message(ctx: RequestContext, messageId: string): Promise<MessageView | null> {
    try {
      return await this.deps.messaging.get(ctx, messageId);
    } catch (error) {
      // A message queued on another node not yet synced here: the referral is still waiting.
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  private async referralRows(
    tenant: string,
    where: { caseId?: string; referralId?: string; messageId?: string; messageOrDna?: boolean },
  ): Promise<ReferralsTable[]> {
    return this.store.withTenant(tenant, (trx) => {
      let q = referralsDb(trx).selectFrom('referrals').selectAll().where('tenant', '=', tenant);
      if (where.caseId) q = q.where('case_id', '=', where.caseId);
      if (where.referralId) q = q.where('referral_id', '=', where.referralId);
      if (where.messageId) q = q.where('message_id', '=', where.messageId);
      if (where.messageOrDna)
        q = q.where((eb) => eb.or([eb('route', '=', 'message'), eb('did_not_attend_at_ms', 'is not', null)]));
      return q.orderBy('chosen_hlc', 'desc').limit(1000).execute();
    });
  }
}

function messageStateToReferral(state: MessageState | null, message: MessageView | null): ReferralState {
  if (message?.invalid) return 'failed';
  switch (state) {
    case null:
    case 'queued':
      return 'waiting';
    case 'sent':
    case 'delivered':
      return 'sent';
    case 'accepted':
      return 'accepted';
    case 'rejected':
      return 'rejected';
    case 'failed':
    case 'cancelled':
      return 'failed';
  }
}

/** Whether a message about a referral says the patient did not attend (a Task's businessStatus). */
export function saysDidNotAttend(bundle: Record<string, unknown>): boolean {
  const entries = Array.isArray(bundle.entry)
    ? (bundle.entry as { resource?: Record<string, unknown> }[])
    : [];
  return entries.some((e) => {
    const r = e.resource;
    if (r?.resourceType !== 'Task') return false;
    const status = r.businessStatus as { coding?: { code?: string }[] } | undefined;
    return (status?.coding ?? []).some((c) => c.code === 'did-not-attend');
  });
}

export type { CasesTable };
