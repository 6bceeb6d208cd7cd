import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  pemContent,
  pemNeverSent,
  type CaseState,
  type Clock,
  type PatientRecord,
  type PemContent,
  type PemNotSentReason,
} from '@holdfast/core';
import { providerName } from '../accounts/reads.ts';
import type { AccountsService } from '../accounts/service.ts';
import type { Auditor } from '../audit/auditor.ts';
import type { CasesTable } from '../cases/projection.ts';
import type { CaseService, ClosingCase } from '../cases/service.ts';
import type { TriageService } from '../cases/triage.ts';
import { caseResources, fhirId, patientInputFromRecord, type CaseBundleInput } from '../fhir/mapping.ts';
import { caseInputFromRow, toConsultationInput, triagePathOf } from '../fhir/service.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft } from '../ledger/ledger.ts';
import type { MessagingService } from '../messaging/service.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store } from '../store/store.ts';
import { pemBundle, pemSections, pemTypeLabel, type PemDocument } from './document.ts';
import { renderPemPdf } from './pdf.ts';

/** Why a closed case's practice was never told: the reasons the report lists (never-send is by rule). */
const UNTOLD_REASONS: readonly PemNotSentReason[] = [
  'no_patient',
  'no_registered_practice',
  'no_practice_endpoint',
];

export interface PemReport {
  from: string;
  to: string;
  /** PEMs queued in the period that the practice has not accepted yet. */
  undelivered: {
    messageId: string;
    caseId: string | null;
    state: string;
    destination: string;
    queuedAt: string;
    dueAt: string;
    overdue: boolean;
  }[];
  /** Cases closed in the period whose practice no PEM could reach. */
  notSent: {
    caseId: string;
    reason: PemNotSentReason;
    odsCode: string | null;
    closedAt: string;
    dueAt: string;
  }[];
}

/**
 * Post Event Messages (C11): when a case closes, whichever path closes it, the patient's registered
 * practice gets a PEM through the outbox in the same commit, "for action" or "for information" (rules
 * in core messaging/pem.ts), due by 08:00 on the next working day (the message's deadline). When the
 * disposition is on the never-send list, or there is no practice or no endpoint for it, a
 * `pem.not_sent` fact says why, so the report lists the practices that were never told; the PDF of
 * the same content is the fallback for a practice that cannot take the structured message.
 */
export class PemService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly deps: {
      cases: CaseService;
      patients: PatientService;
      triage: TriageService;
      accounts: AccountsService;
      messaging: MessagingService;
      auditor: Auditor;
    },
  ) {}

  private prescribedOf: (tenant: string, caseId: string) => Promise<string[]> = async () => [];

  /** What was prescribed on a case, a line each (the prescribing module's, set when the app is built). */
  setPrescriptions(read: (tenant: string, caseId: string) => Promise<string[]>): void {
    this.prescribedOf = read;
  }

  private appointmentsOf: (tenant: string, caseId: string) => Promise<string[]> = async () => [];

  /** The case's treatment-centre appointments, a line each (the booking module's, set when the app is built). */
  setAppointments(read: (tenant: string, caseId: string) => Promise<string[]>): void {
    this.appointmentsOf = read;
  }

  /** The facts a close carries: the queued PEM, or why there is none. */
  async closeDrafts(ctx: RequestContext, closing: ClosingCase): Promise<EventDraft[]> {
    const { row, state, closedAtMs } = closing;
    const prescribed = await this.prescribedOf(ctx.tenant, row.case_id);
    const content = pemContent(this.factsOf(row, state, closedAtMs, prescribed));
    const notSent = (reason: PemNotSentReason, odsCode: string | null = null): EventDraft[] => [
      {
        tenant: ctx.tenant,
        type: 'pem.not_sent',
        actor: actorOf(ctx),
        payload: {
          caseId: row.case_id,
          reason,
          odsCode,
          dxCode: row.dx_code,
          closedAtMs,
          dueAtMs: content.dueAtMs,
        },
      },
    ];
    if (pemNeverSent(row.dx_code)) return notSent('never_send_disposition');
    if (!row.patient_id) return notSent('no_patient');
    const patient = await this.deps.patients.readForPracticeMessage(ctx, row.patient_id);
    if (!patient) return notSent('no_patient');
    const practice = patient.registeredPractice;
    if (!practice) return notSent('no_registered_practice');
    const endpoint = await this.deps.messaging.endpointFor(
      ctx.tenant,
      'post_event_message',
      practice.odsCode,
    );
    if (!endpoint) return notSent('no_practice_endpoint', practice.odsCode);
    const built = await this.build(ctx, row, state, patient, closedAtMs, content);
    if (!built) return notSent('no_patient');
    const messageId = randomUUID();
    const bundle = pemBundle(built.input, built.doc, messageId);
    if (!bundle) return notSent('no_patient');
    return [
      this.deps.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
        messageId,
        kind: 'post_event_message',
        endpointId: endpoint.endpointId,
        caseId: row.case_id,
        siteId: row.site_id,
        bundle: bundle as unknown as Record<string, unknown>,
        summary: `Post Event Message, ${pemTypeLabel(content).toLowerCase()}`,
        // The deadline is the due time: not accepted by 08:00 next working day, a person is alerted.
        failAfterMs: Math.max(60_000, content.dueAtMs - this.clock.nowMs()),
      }),
    ];
  }

  /** The PEM of a closed case as a PDF (the fallback for a practice without the structured message). */
  async pdf(ctx: RequestContext, caseId: string): Promise<Buffer> {
    const row = await this.deps.cases.get(ctx, caseId);
    const state = JSON.parse(row.state) as CaseState;
    if (state.status !== 'closed' || row.closed_at === null)
      throw new ConflictError('the case is not closed: a Post Event Message is made when it closes');
    if (pemNeverSent(row.dx_code))
      throw new ConflictError(`no Post Event Message is sent for disposition ${row.dx_code ?? ''}`);
    if (!row.patient_id)
      throw new ConflictError('the case has no identified patient: there is no practice to tell');
    // The same scope as any read of the record by this user (site, break-glass), audited.
    const patient = (await this.deps.patients.read(ctx, row.patient_id)).record;
    if (!patient.registeredPractice)
      throw new ConflictError('the patient has no registered practice: there is no practice to tell');
    const built = await this.build(ctx, row, state, patient, Number(row.closed_at));
    if (!built) throw new ConflictError('the patient record lacks a name or date of birth');
    await this.deps.auditor.access(ctx, {
      action: 'read',
      resourceType: 'case',
      resourceId: caseId,
      breakGlass: false,
      fields: ['pem.pdf'],
    });
    return renderPemPdf(built.doc);
  }

  /** PEMs not yet accepted, and closed cases whose practice was never told, in [from, to). */
  async report(ctx: RequestContext, fromMs: number, toMs: number): Promise<PemReport> {
    const now = this.clock.nowMs();
    const iso = (ms: number) => new Date(ms).toISOString();
    const messages = await this.deps.messaging.list(ctx, { kind: 'post_event_message', limit: 5000 });
    const undelivered = messages
      .filter((m) => m.state !== 'accepted' && m.queuedAtMs >= fromMs && m.queuedAtMs < toMs)
      .map((m) => ({
        messageId: m.messageId,
        caseId: m.caseId,
        state: m.state,
        destination: m.destination,
        queuedAt: iso(m.queuedAtMs),
        dueAt: iso(m.failAtMs),
        overdue: now >= m.failAtMs,
      }));
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['payload'])
        .where('tenant', '=', ctx.tenant)
        .where('type', '=', 'pem.not_sent')
        .orderBy('hlc')
        .execute(),
    );
    const notSent = rows
      .map(
        (r) =>
          JSON.parse(r.payload) as {
            caseId: string;
            reason: PemNotSentReason;
            odsCode: string | null;
            closedAtMs: number;
            dueAtMs: number;
          },
      )
      .filter((p) => UNTOLD_REASONS.includes(p.reason) && p.closedAtMs >= fromMs && p.closedAtMs < toMs)
      .map((p) => ({
        caseId: p.caseId,
        reason: p.reason,
        odsCode: p.odsCode,
        closedAt: iso(p.closedAtMs),
        dueAt: iso(p.dueAtMs),
      }));
    await this.deps.auditor.access(ctx, {
      action: 'read',
      resourceType: 'case',
      breakGlass: false,
      fields: ['report:pem'],
    });
    return { from: iso(fromMs), to: iso(toMs), undelivered, notSent };
  }

  private factsOf(row: CasesTable, state: CaseState, closedAtMs: number, prescribed: readonly string[]) {
    return {
      dxCode: row.dx_code,
      dispositionKind: row.disposition_kind,
      dispositionLabel: row.disposition_label,
      timeframeMinutes: row.timeframe_minutes === null ? null : Number(row.timeframe_minutes),
      outcomes: state.outcomes,
      closedAtMs,
      prescriptionsIssued: prescribed.filter((l) => !l.endsWith(', cancelled')).length,
    };
  }

  /** The PEM's content and the mapping's input, from the case as it closes. */
  private async build(
    ctx: RequestContext,
    row: CasesTable,
    state: CaseState,
    patient: Omit<Partial<PatientRecord>, 'specialNotes'>,
    closedAtMs: number,
    /** The PEM's type and due time, when the caller has worked them out already. */
    given?: PemContent,
  ): Promise<{ doc: PemDocument; input: CaseBundleInput } | null> {
    const prescribed = await this.prescribedOf(ctx.tenant, row.case_id);
    const content = given ?? pemContent(this.factsOf(row, state, closedAtMs, prescribed));
    const { givenName, familyName, dateOfBirth, registeredPractice } = patient;
    if (!givenName || !familyName || !dateOfBirth || !registeredPractice) return null;
    const organizationId = fhirId(ctx.tenant);
    const consultations = (await this.deps.cases.consultations(ctx, row.case_id)).map(toConsultationInput);
    const caseInput = {
      ...caseInputFromRow(organizationId, row, triagePathOf(this.deps.triage, row), consultations),
      status: 'closed' as const,
      closedAt: new Date(closedAtMs).toISOString(),
    };
    const providerName = await this.providerName(ctx.tenant);
    const sites = await this.deps.accounts.sites(ctx.tenant);
    const clinicianIds = [...new Set(consultations.map((k) => k.clinicianId))];
    const practitioners = [];
    for (const id of clinicianIds) {
      const user = await this.deps.accounts.get(ctx.tenant, id);
      practitioners.push({
        userId: id,
        displayName: user?.displayName ?? 'Clinician',
        roles: user?.roles ?? [],
        organizationId,
        siteIds: user?.siteIds ?? [],
      });
    }
    const input: CaseBundleInput = {
      base: `urn:holdfast:${ctx.tenant}`,
      case: caseInput,
      patient: patientInputFromRecord(
        row.patient_id!,
        { ...patient, givenName, familyName, dateOfBirth },
        organizationId,
      ),
      notes: [],
      organization: { id: organizationId, name: providerName, tenant: ctx.tenant },
      site: {
        siteId: row.site_id,
        name: sites.find((s) => s.siteId === row.site_id)?.name ?? row.site_id,
        organizationId,
      },
      practitioners,
      timestamp: new Date(closedAtMs).toISOString(),
    };
    const observations = caseResources(caseInput).observations;
    const doc: PemDocument = {
      caseId: row.case_id,
      providerName,
      patient: {
        name: `${givenName} ${familyName}`,
        nhsNumber: patient.nhsNumber ?? null,
        dateOfBirth,
      },
      practice: { odsCode: registeredPractice.odsCode, name: registeredPractice.name ?? null },
      content,
      closedAtMs,
      sample: caseInput.disposition?.sample ?? false,
      sections: pemSections(
        caseInput,
        observations,
        content,
        prescribed,
        await this.appointmentsOf(ctx.tenant, row.case_id),
      ),
    };
    return { doc, input };
  }

  private async providerName(tenant: string): Promise<string> {
    return (await this.store.withTenant(tenant, (trx) => providerName(trx, tenant))) ?? tenant;
  }
}
