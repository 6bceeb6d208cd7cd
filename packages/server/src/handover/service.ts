import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  FINISHED_MESSAGE_STATES,
  type Clock,
  type Endpoint,
  type MessageState,
} from '@holdfast/core';
import { accessEvent } from '../audit/auditor.ts';
import type { CasesTable } from '../cases/projection.ts';
import type { CaseService } from '../cases/service.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import {
  endpointAddress,
  onlyEndpointFor,
  type MessageView,
  type MessagingService,
} from '../messaging/service.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store } from '../store/store.ts';
import { ambulanceRequestBundle } from './ambulance-bundle.ts';

/** How long an ambulance request may go unanswered before it fails and the shift manager is told. */
const AMBULANCE_FAIL_AFTER_MS = 10 * 60_000;

/** Where the 999 handover of a case stands, in the words the adviser's screen uses. */
export type AmbulanceHandoverState =
  /** Queued or sent, not yet accepted, still within the ambulance service's window. */
  | 'waiting'
  | 'accepted'
  | 'rejected'
  /** Not accepted within the window (or failed): the adviser must phone now. */
  | 'phone_now'
  /** No ambulance service endpoint is configured: the adviser must phone. */
  | 'no_endpoint'
  | 'phoned';

export interface AmbulanceHandoverView {
  caseId: string;
  state: AmbulanceHandoverState;
  destination: string | null;
  /** The ambulance service's number to phone, when the request is not accepted in time. */
  phone: string | null;
  acceptWithinSeconds: number | null;
  /** When the request was queued, and by when it must be accepted before the adviser phones. */
  queuedAt: string | null;
  acceptBy: string | null;
  reference: string | null;
  reason: string | null;
  messageState: MessageState | null;
  phoned: { at: string; spokeTo: string; reference: string | null } | null;
}

export interface AmbulanceRequestFacts {
  /** The case as it stood before the command that requested the ambulance. */
  row: CasesTable;
  category: 1 | 2 | 3 | 4;
  /** The clinician who upgraded the case in a consultation; null for a confirmed triage disposition. */
  byClinicianId: string | null;
  triagePath: { question: string; answer: string }[];
}

/**
 * The 999 handover (C8): an ambulance disposition queues a request to the provider's ambulance
 * service through the outbox, in the same commit as the case's own facts. The adviser's screen follows
 * it: waiting, accepted with the ambulance service's incident reference, rejected, or, when it is not
 * accepted within the endpoint's window (30 s for 999), "phone the ambulance service now" with the
 * number and the details to read out; the phone handover is then recorded and the electronic request
 * cancelled so the ambulance service is not asked twice.
 */
export class HandoverService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly messaging: MessagingService,
    private readonly patients: PatientService,
    private readonly cases: CaseService,
  ) {}

  /**
   * The drafts that queue the ambulance request for this case, or none when the provider has no
   * ambulance service endpoint (the screen then tells the adviser to phone). Reading the patient for
   * the request is audited like any read.
   */
  async ambulanceRequestDrafts(ctx: RequestContext, facts: AmbulanceRequestFacts): Promise<EventDraft[]> {
    const endpoint = await this.messaging.endpointFor(ctx.tenant, 'ambulance_request');
    if (!endpoint) return [];
    const { row } = facts;
    const patient = row.patient_id ? await this.patients.read(ctx, row.patient_id) : null;
    const caller = JSON.parse(row.caller) as { name: string; relationship: string; callbackNumber: string };
    const messageId = randomUUID();
    const bundle = ambulanceRequestBundle({
      messageId,
      caseId: row.case_id,
      sentAtIso: new Date(this.clock.nowMs()).toISOString(),
      source: { node: this.ledger.node, tenant: ctx.tenant },
      destination: { name: endpoint.name, endpoint: endpointAddress(endpoint), odsCode: endpoint.odsCode },
      category: facts.category,
      // A clinician's upgrade names itself: the triage disposition (if any) was not an ambulance.
      dxCode: facts.byClinicianId ? 'Clinician upgrade' : (row.dx_code ?? 'Ambulance'),
      dispositionLabel: facts.byClinicianId
        ? `an ambulance is needed after clinical assessment${row.disposition_label ? ` (the triage outcome was: ${row.disposition_label})` : ''}`
        : (row.disposition_label ?? `Ambulance, category ${facts.category}`),
      presentingComplaint: row.complaint,
      location: row.location,
      caller,
      triagePath: facts.triagePath,
      // The crew needs to know of a DNACPR or an end-of-life plan; a note withheld from this role stays withheld.
      specialNotes: (patient?.record.specialNotes ?? []).flatMap((n) =>
        'text' in n ? [{ kind: n.kind, text: n.text }] : [],
      ),
      patient: patient?.record ?? null,
    });
    return [
      this.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
        messageId,
        kind: 'ambulance_request',
        endpointId: endpoint.endpointId,
        caseId: row.case_id,
        siteId: row.site_id,
        bundle,
        summary: `Ambulance request, category ${facts.category}`,
        failAfterMs: AMBULANCE_FAIL_AFTER_MS,
      }),
    ];
  }

  async ambulanceStatus(ctx: RequestContext, caseId: string): Promise<AmbulanceHandoverView> {
    return (await this.read(ctx, caseId)).view;
  }

  /** The case's ambulance requests and the view of where the handover stands (read every second). */
  private async read(ctx: RequestContext, caseId: string) {
    // The case must be this provider's (another provider's id is simply not found).
    await this.cases.get(ctx, caseId);
    // The endpoints are read once: the list names destinations from them, the view takes the
    // ambulance service's number and window from them.
    const endpoints = await this.messaging.endpoints(ctx.tenant);
    const [messages, phoned] = await Promise.all([
      this.messaging.list(ctx, { caseId, kind: 'ambulance_request' }, endpoints),
      this.phoneHandovers(ctx.tenant, caseId),
    ]);
    const endpoint = onlyEndpointFor(endpoints, 'ambulance_request');
    return { messages, view: this.view(caseId, messages[0] ?? null, phoned[0] ?? null, endpoint) };
  }

  /** The adviser phoned the ambulance service: recorded, and the electronic request stopped. */
  async recordPhoneHandover(
    ctx: RequestContext,
    caseId: string,
    input: { spokeTo: string; reference: string | null },
  ): Promise<AmbulanceHandoverView> {
    const { messages, view: status } = await this.read(ctx, caseId);
    if (status.state === 'accepted')
      throw new ConflictError(
        `the ambulance service accepted the request already (incident ${status.reference ?? 'without a reference'}): do not phone it in again`,
      );
    if (status.state === 'phoned') throw new ConflictError('the phone handover is recorded already');
    const open = messages.find((m) => !FINISHED_MESSAGE_STATES.includes(m.state)) ?? null;
    const now = this.clock.nowMs();
    const drafts: EventDraft[] = [
      {
        tenant: ctx.tenant,
        type: 'handover.ambulance_phoned',
        actor: actorOf(ctx),
        payload: {
          caseId,
          messageId: open?.messageId ?? null,
          atMs: now,
          spokeTo: input.spokeTo,
          reference: input.reference,
        },
      },
    ];
    if (open)
      drafts.push({
        tenant: ctx.tenant,
        type: 'message.cancelled',
        actor: actorOf(ctx),
        payload: {
          messageId: open.messageId,
          atMs: now,
          reason: 'handed over to the ambulance service by phone',
        },
      });
    drafts.push(
      accessEvent(ctx, {
        action: 'write',
        resourceType: 'case',
        resourceId: caseId,
        breakGlass: false,
        fields: ['ambulanceHandover'],
      }),
    );
    await this.ledger.append(drafts);
    return this.ambulanceStatus(ctx, caseId);
  }

  private async phoneHandovers(tenant: string, caseId: string) {
    // Phone handovers are few and kept as facts of their own subject: read straight from the ledger.
    const rows = await this.store.withTenant(tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['payload'])
        .where('tenant', '=', tenant)
        .where('subject', '=', `handover:${caseId}`)
        .where('type', '=', 'handover.ambulance_phoned')
        .orderBy('hlc')
        .execute(),
    );
    return rows.map(
      (r) => JSON.parse(r.payload) as { atMs: number; spokeTo: string; reference: string | null },
    );
  }

  private view(
    caseId: string,
    message: MessageView | null,
    phoned: { atMs: number; spokeTo: string; reference: string | null } | null,
    endpoint: Endpoint | null,
  ): AmbulanceHandoverView {
    const windowS = endpoint?.acceptWithinSeconds ?? null;
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const base = {
      caseId,
      destination: message?.destination ?? endpoint?.name ?? null,
      phone: endpoint?.phone ?? null,
      acceptWithinSeconds: windowS,
      queuedAt: iso(message?.queuedAtMs ?? null),
      acceptBy: message && windowS ? iso(message.queuedAtMs + windowS * 1000) : null,
      reference: phoned?.reference ?? message?.reference ?? null,
      reason: message?.reason ?? null,
      messageState: message?.state ?? null,
      phoned: phoned ? { at: iso(phoned.atMs)!, spokeTo: phoned.spokeTo, reference: phoned.reference } : null,
    };
    if (message?.state === 'accepted') return { ...base, state: 'accepted' };
    if (phoned) return { ...base, state: 'phoned' };
    if (!message) return { ...base, state: 'no_endpoint' };
    if (message.state === 'rejected') return { ...base, state: 'rejected' };
    const late = windowS !== null && this.clock.nowMs() >= message.queuedAtMs + windowS * 1000;
    if (message.state === 'failed' || message.state === 'cancelled' || late)
      return { ...base, state: 'phone_now' };
    return { ...base, state: 'waiting' };
  }
}
