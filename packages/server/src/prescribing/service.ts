import { randomBytes, randomUUID } from 'node:crypto';
import {
  blockingProblems,
  checkPrescription,
  ConflictError,
  makePrescriptionId,
  medicineLabel,
  NotFoundError,
  NOT_CLINICALLY_VALIDATED_FORMULARY,
  ValidationError,
  type CaseState,
  type CheckResult,
  type Clock,
  type Formulary,
  type MessageState,
  type Override,
  type PatientForPrescribing,
  type PrescriptionDraft,
} from '@holdfast/core';
import type { AccountsService } from '../accounts/service.ts';
import { accessEvent } from '../audit/auditor.ts';
import type { CaseService } from '../cases/service.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import { endpointAddress, type MessageView, type MessagingService } from '../messaging/service.ts';
import type { PatientService } from '../patients/service.ts';
import type { ServiceLookup } from '../referrals/service.ts';
import type { Store } from '../store/store.ts';
import { prescriptionBundle } from './eps-bundle.ts';
import type { AllergyRecorded, MedicationRecorded, PrescriptionIssued } from './events.ts';
import { renderPrescriptionPdf } from './pdf.ts';
import { prescribingDb, type PrescriptionsTable } from './projection.ts';

export type Source = 'caller' | 'record' | 'clinician';

export interface AllergyView {
  id: string;
  text: string;
  allergen: string;
  allergyClass: string | null;
  reaction: string | null;
  source: Source;
  reportedBy: string;
  recordedBy: string;
  atMs: number;
}

export interface MedicationView {
  id: string;
  text: string;
  name: string;
  code: string | null;
  dose: string | null;
  source: Source;
  reportedBy: string;
  recordedBy: string;
  atMs: number;
}

export type PrescriptionState =
  'queued' | 'sent' | 'received' | 'dispensed' | 'rejected' | 'failed' | 'cancelled' | 'printed';

export interface PrescriptionView extends Omit<PrescriptionIssued, 'patientId'> {
  state: PrescriptionState;
  stateText: string;
  /** What may be done now: print it (the message cannot go), cancel it. */
  canPrint: boolean;
  canCancel: boolean;
  cancelled: { reason: string; atMs: number; cancelMessageId: string | null; confirmed: boolean } | null;
  printed: { reason: string; atMs: number } | null;
  dispensedAtMs: number | null;
}

export type PharmacyChoice = { odsCode: string } | { serviceId: string } | 'nominated';

export interface IssueInput {
  draft: PrescriptionDraft;
  overrides: Override[];
  pharmacy: PharmacyChoice;
  weightKg?: number | null;
  pregnant?: boolean | null;
  renalImpairment?: boolean | null;
}

/** Answered 409 with the problems the server's own checks found (the client's are never trusted). */
export class PrescriptionBlockedError extends ConflictError {
  constructor(
    readonly problems: string[],
    readonly checks: CheckResult[],
  ) {
    super(`the prescription cannot be issued: ${problems.join('; ')}`);
  }
}

/** How long a prescription may wait for the pharmacy before it fails and printing is offered. */
const PRESCRIPTION_FAIL_AFTER_MS = 10 * 60_000;
/** Message states in which the message may still reach (or has reached) the pharmacy: no printing. */
const LIVE: readonly MessageState[] = ['queued', 'sent', 'delivered', 'accepted'];

/**
 * Emergency prescribing (C9): allergies and current medication on the patient, with who said so;
 * prescriptions from a consultation, checked on the server by core's checks whatever the browser
 * showed, sent to the pharmacy through the outbox in the same commit, cancelled before dispensing,
 * or printed for the paper route when the message cannot go — never both sent and printed without
 * a cancellation between.
 */
export class PrescribingService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly formulary: Formulary,
    private readonly deps: {
      cases: CaseService;
      messaging: MessagingService;
      patients: PatientService;
      accounts: AccountsService;
      directory: ServiceLookup;
      /** How long a prescription message may go unreceived before it fails (config). */
      failAfterMs?: number;
    },
  ) {}

  formularyView() {
    const f = this.formulary;
    return {
      formulary: {
        id: f.id,
        version: f.version,
        title: f.title,
        notClinicallyValidated: f.notClinicallyValidated,
        ...(f.notClinicallyValidated ? { notice: NOT_CLINICALLY_VALIDATED_FORMULARY } : {}),
      },
      medicines: f.medicines,
    };
  }

  // ---- allergies and current medication ---------------------------------------------------------

  async allergiesAndMedication(
    ctx: RequestContext,
    patientId: string,
  ): Promise<{ allergies: AllergyView[]; medication: MedicationView[] }> {
    const access = await this.deps.patients.requireReadable(
      ctx,
      patientId,
      undefined,
      'allergies-medication',
    );
    const out = await this.listFor(ctx.tenant, patientId);
    await this.ledger.append([
      accessEvent(ctx, {
        action: 'read',
        resourceType: 'patient',
        resourceId: patientId,
        breakGlass: access.breakGlass,
        fields: ['allergies', 'medication'],
      }),
    ]);
    return out;
  }

  private async listFor(tenant: string, patientId: string) {
    const [allergyRows, medicationRows] = await this.store.withTenant(
      tenant,
      async (trx) =>
        [
          await prescribingDb(trx)
            .selectFrom('patient_allergies')
            .selectAll()
            .where('tenant', '=', tenant)
            .where('patient_id', '=', patientId)
            .where('removed', 'is', null)
            .execute(),
          await prescribingDb(trx)
            .selectFrom('patient_medication')
            .selectAll()
            .where('tenant', '=', tenant)
            .where('patient_id', '=', patientId)
            .where('stopped', 'is', null)
            .execute(),
        ] as const,
    );
    const allergies = allergyRows
      .map((r) => {
        const p = JSON.parse(r.recorded) as AllergyRecorded;
        return {
          id: p.allergyId,
          text: `${p.allergen}${p.reaction ? ` (${p.reaction})` : ''}`,
          allergen: p.allergen,
          allergyClass: p.allergyClass,
          reaction: p.reaction,
          source: p.source,
          reportedBy: p.reportedBy,
          recordedBy: r.recorded_by,
          atMs: p.atMs,
        };
      })
      .sort((a, b) => a.atMs - b.atMs);
    const medication = medicationRows
      .map((r) => {
        const p = JSON.parse(r.recorded) as MedicationRecorded;
        return {
          id: p.medicationId,
          text: `${p.name}${p.dose ? ` ${p.dose}` : ''}`,
          name: p.name,
          code: p.code,
          dose: p.dose,
          source: p.source,
          reportedBy: p.reportedBy,
          recordedBy: r.recorded_by,
          atMs: p.atMs,
        };
      })
      .sort((a, b) => a.atMs - b.atMs);
    return { allergies, medication };
  }

  async recordAllergy(
    ctx: RequestContext,
    patientId: string,
    input: { allergen: string; allergyClass?: string; reaction?: string; source: Source; reportedBy: string },
  ) {
    await this.deps.patients.requireReadable(ctx, patientId, undefined, 'allergies');
    const allergyId = randomUUID();
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'patient.allergy_recorded',
        actor: actorOf(ctx),
        payload: {
          allergyId,
          patientId,
          allergen: input.allergen,
          allergyClass: input.allergyClass?.toLowerCase() ?? null,
          reaction: input.reaction ?? null,
          source: input.source,
          reportedBy: input.reportedBy,
          atMs: this.clock.nowMs(),
        },
      },
      this.patientWrite(ctx, patientId, 'allergies'),
    ]);
    return this.listFor(ctx.tenant, patientId);
  }

  async removeAllergy(ctx: RequestContext, patientId: string, allergyId: string, reason: string) {
    await this.deps.patients.requireReadable(ctx, patientId, undefined, 'allergies');
    const { allergies } = await this.listFor(ctx.tenant, patientId);
    if (!allergies.some((a) => a.id === allergyId)) throw new NotFoundError('allergy');
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'patient.allergy_removed',
        actor: actorOf(ctx),
        payload: { allergyId, patientId, reason, atMs: this.clock.nowMs() },
      },
      this.patientWrite(ctx, patientId, 'allergies'),
    ]);
    return this.listFor(ctx.tenant, patientId);
  }

  async recordMedication(
    ctx: RequestContext,
    patientId: string,
    input: { name: string; code?: string; dose?: string; source: Source; reportedBy: string },
  ) {
    await this.deps.patients.requireReadable(ctx, patientId, undefined, 'medication');
    if (input.code && !this.formulary.medicines.some((m) => m.code === input.code))
      throw new ValidationError([{ path: 'body.code', message: 'is not a medicine of the formulary' }]);
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'patient.medication_recorded',
        actor: actorOf(ctx),
        payload: {
          medicationId: randomUUID(),
          patientId,
          name: input.name,
          code: input.code ?? null,
          dose: input.dose ?? null,
          source: input.source,
          reportedBy: input.reportedBy,
          atMs: this.clock.nowMs(),
        },
      },
      this.patientWrite(ctx, patientId, 'medication'),
    ]);
    return this.listFor(ctx.tenant, patientId);
  }

  async stopMedication(ctx: RequestContext, patientId: string, medicationId: string, reason: string) {
    await this.deps.patients.requireReadable(ctx, patientId, undefined, 'medication');
    const { medication } = await this.listFor(ctx.tenant, patientId);
    if (!medication.some((m) => m.id === medicationId)) throw new NotFoundError('medication');
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'patient.medication_stopped',
        actor: actorOf(ctx),
        payload: { medicationId, patientId, reason, atMs: this.clock.nowMs() },
      },
      this.patientWrite(ctx, patientId, 'medication'),
    ]);
    return this.listFor(ctx.tenant, patientId);
  }

  private patientWrite(ctx: RequestContext, patientId: string, field: string): EventDraft {
    return accessEvent(ctx, {
      action: 'write',
      resourceType: 'patient',
      resourceId: patientId,
      breakGlass: false,
      fields: [field],
    });
  }

  // ---- prescriptions ----------------------------------------------------------------------------

  /** The case and its patient as prescribing needs them; the case must be in this prescriber's consultation. */
  private async consultation(ctx: RequestContext, caseId: string) {
    const row = await this.deps.cases.get(ctx, caseId);
    const state = JSON.parse(row.state) as CaseState;
    if (state.status !== 'in_consultation' || state.claimantId !== ctx.userId)
      throw new ConflictError(
        'a prescription is issued from your own consultation: start the consultation first',
      );
    if (!row.patient_id)
      throw new ConflictError('identify the patient before prescribing: a prescription names its patient');
    const patient = await this.deps.patients.read(ctx, row.patient_id);
    return { row, patient };
  }

  private async patientFacts(
    ctx: RequestContext,
    patient: Awaited<ReturnType<PatientService['read']>>,
    given: { weightKg?: number | null; pregnant?: boolean | null; renalImpairment?: boolean | null },
  ): Promise<PatientForPrescribing> {
    const { allergies, medication } = await this.listFor(ctx.tenant, patient.patientId);
    const dob = patient.record.dateOfBirth ?? null;
    return {
      ageYears: dob ? ageInYears(dob, this.clock.nowMs()) : null,
      weightKg: given.weightKg ?? null,
      pregnant: given.pregnant ?? null,
      renalImpairment: given.renalImpairment ?? null,
      allergies: [
        ...allergies.map((a) => ({ allergen: a.allergen, allergyClass: a.allergyClass })),
        // Allergies written on the record by an edit count too (free text, no class).
        ...(patient.record.allergies ?? []).map((a) => ({ allergen: a.substance, allergyClass: null })),
      ],
      currentMedication: medication.map((m) => ({ code: m.code, name: m.name })),
    };
  }

  /** Runs the checks for a draft (what the prescriber sees before sending). */
  async check(
    ctx: RequestContext,
    caseId: string,
    input: {
      draft: PrescriptionDraft;
      weightKg?: number | null;
      pregnant?: boolean | null;
      renalImpairment?: boolean | null;
    },
  ) {
    const { patient } = await this.consultation(ctx, caseId);
    this.medicine(input.draft.medicineCode);
    const facts = await this.patientFacts(ctx, patient, input);
    return { checks: checkPrescription(input.draft, facts, this.formulary), patient: facts };
  }

  private medicine(code: string) {
    const m = this.formulary.medicines.find((x) => x.code === code);
    if (!m)
      throw new ValidationError([
        { path: 'body.draft.medicineCode', message: 'is not a medicine of the formulary' },
      ]);
    return m;
  }

  /** Issues a prescription (see the class comment); refused 409 when the server's checks block it. */
  async issue(ctx: RequestContext, caseId: string, input: IssueInput): Promise<PrescriptionView> {
    const { row, patient } = await this.consultation(ctx, caseId);
    const medicine = this.medicine(input.draft.medicineCode);
    const facts = await this.patientFacts(ctx, patient, input);
    const checks = checkPrescription(input.draft, facts, this.formulary);
    const problems = blockingProblems(checks, input.overrides);
    if (problems.length > 0) throw new PrescriptionBlockedError(problems, checks);
    // The same medicine for the same case once: "send again" after printing or failing needs a cancellation.
    for (const existing of await this.list(ctx, caseId, false))
      if (
        existing.medicine.code === medicine.code &&
        existing.state !== 'cancelled' &&
        existing.state !== 'rejected'
      )
        throw new ConflictError(
          `${medicine.name} is prescribed already on this case (${existing.stateText}): cancel that prescription before sending another`,
        );
    const pharmacy = await this.pharmacy(ctx, patient, input.pharmacy);
    const now = this.clock.nowMs();
    const prescriptionId = randomUUID();
    const messageId = pharmacy.endpoint ? randomUUID() : null;
    // Five hex characters: the short form's sequence block (0 to 0xFFFFF).
    const sequence = Number.parseInt(randomBytes(3).toString('hex').slice(0, 5), 16);
    const issued: PrescriptionIssued = {
      prescriptionId,
      caseId,
      patientId: patient.patientId,
      shortFormId: makePrescriptionId({
        random6Hex: randomBytes(3).toString('hex'),
        odsCode: providerOds(ctx.tenant),
        sequence,
      }),
      medicine: {
        code: medicine.code,
        name: medicine.name,
        form: medicine.form,
        strength: medicine.strength,
        route: medicine.route,
        unit: medicine.unit,
        schedule: medicine.controlledSchedule,
      },
      draft: {
        doseMg: input.draft.doseMg,
        frequencyPerDay: input.draft.frequencyPerDay,
        durationDays: input.draft.durationDays,
        quantity: input.draft.quantity,
        quantityWords: input.draft.quantityWords,
        directions: input.draft.directions,
      },
      checks,
      overrides: input.overrides.filter((o) =>
        checks.some((c) => c.check === o.check && c.outcome === 'warning'),
      ),
      pharmacy: {
        odsCode: pharmacy.odsCode,
        name: pharmacy.name,
        endpointId: pharmacy.endpoint?.endpointId ?? null,
      },
      route: pharmacy.endpoint ? 'message' : 'paper',
      messageId,
      formulary: { id: this.formulary.id, version: this.formulary.version },
      prescriberId: ctx.userId,
      atMs: now,
    };
    const facts2: EventDraft[] = [
      { tenant: ctx.tenant, type: 'prescription.issued', actor: actorOf(ctx), payload: { ...issued } },
    ];
    if (pharmacy.endpoint && messageId)
      facts2.push(
        this.deps.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
          messageId,
          kind: 'prescription',
          endpointId: pharmacy.endpoint.endpointId,
          caseId,
          siteId: row.site_id,
          bundle: prescriptionBundle({
            messageId,
            sentAtIso: new Date(now).toISOString(),
            source: { node: this.ledger.node, tenant: ctx.tenant },
            destination: { name: pharmacy.name, endpoint: endpointAddress(pharmacy.endpoint) },
            issued,
            prescriber: { name: await this.prescriberName(ctx.tenant, ctx.userId) },
            patient: patient.record,
          }),
          summary: `Prescription ${issued.shortFormId} to ${pharmacy.name}`.slice(0, 200),
          failAfterMs: this.deps.failAfterMs ?? PRESCRIPTION_FAIL_AFTER_MS,
        }),
      );
    facts2.push(this.caseWrite(ctx, caseId));
    await this.deps.cases.appendFacts(ctx, caseId, facts2, Number(row.version));
    return (await this.one(ctx, prescriptionId))!;
  }

  private async prescriberName(tenant: string, userId: string): Promise<string> {
    return (await this.deps.accounts.get(tenant, userId))?.displayName ?? 'Prescriber';
  }

  private async pharmacy(
    ctx: RequestContext,
    patient: Awaited<ReturnType<PatientService['read']>>,
    choice: PharmacyChoice,
  ) {
    const byOds = async (odsCode: string, name: string | null, path: string) => {
      const endpoint = await this.deps.messaging.endpointFor(ctx.tenant, 'prescription', odsCode);
      if (!endpoint && !name)
        throw new ValidationError([
          { path, message: 'is not a pharmacy we know: choose one from the directory' },
        ]);
      return { odsCode, name: name ?? endpoint!.name, endpoint };
    };
    if (choice === 'nominated') {
      const nominated = patient.record.nominatedPharmacy;
      if (!nominated)
        throw new ValidationError([
          {
            path: 'body.pharmacy',
            message: 'the patient has no nominated pharmacy: choose one from the directory',
          },
        ]);
      return byOds(nominated.odsCode, nominated.name ?? null, 'body.pharmacy');
    }
    if ('odsCode' in choice) return byOds(choice.odsCode, null, 'body.pharmacy.odsCode');
    const service = await this.deps.directory.serviceById(ctx.tenant, choice.serviceId);
    if (!service || service.type !== 'community_pharmacy')
      throw new ValidationError([
        { path: 'body.pharmacy.serviceId', message: 'is not a community pharmacy in your directory' },
      ]);
    let endpoint = null;
    if (service.referral.kind === 'message') {
      const named = await this.deps.messaging.endpoint(ctx.tenant, service.referral.endpointId);
      if (named?.kinds.includes('prescription')) endpoint = named;
    }
    endpoint ??= service.odsCode
      ? await this.deps.messaging.endpointFor(ctx.tenant, 'prescription', service.odsCode)
      : null;
    return { odsCode: service.odsCode, name: service.name, endpoint };
  }

  private caseWrite(ctx: RequestContext, caseId: string): EventDraft {
    return accessEvent(ctx, {
      action: 'write',
      resourceType: 'case',
      resourceId: caseId,
      breakGlass: false,
      fields: ['prescription'],
    });
  }

  /** The case's prescriptions, newest first, each with where it stands. */
  async list(ctx: RequestContext, caseId: string, audit = true): Promise<PrescriptionView[]> {
    await this.deps.cases.get(ctx, caseId);
    const rows = await this.rows(ctx.tenant, { caseId });
    const out: PrescriptionView[] = [];
    for (const r of rows) out.push(await this.view(ctx, r));
    if (audit)
      await this.ledger.append([
        accessEvent(ctx, {
          action: 'read',
          resourceType: 'case',
          resourceId: caseId,
          breakGlass: false,
          fields: ['prescriptions'],
        }),
      ]);
    return out;
  }

  private async one(ctx: RequestContext, prescriptionId: string): Promise<PrescriptionView | null> {
    const row = (await this.rows(ctx.tenant, { prescriptionId }))[0];
    return row ? this.view(ctx, row) : null;
  }

  private async require(ctx: RequestContext, prescriptionId: string) {
    const row = (await this.rows(ctx.tenant, { prescriptionId }))[0];
    if (!row) throw new NotFoundError('prescription');
    return { row, view: await this.view(ctx, row) };
  }

  private async view(ctx: RequestContext, row: PrescriptionsTable): Promise<PrescriptionView> {
    const issued = JSON.parse(row.issued) as PrescriptionIssued;
    const { patientId: _patient, ...rest } = issued;
    const cancelledFact = row.cancelled
      ? (JSON.parse(row.cancelled) as { reason: string; atMs: number; cancelMessageId: string | null })
      : null;
    const printedFact = row.printed ? (JSON.parse(row.printed) as { reason: string; atMs: number }) : null;
    const dispensedFact = row.dispensed ? (JSON.parse(row.dispensed) as { atMs: number }) : null;
    const message = row.message_id ? await this.message(ctx, row.message_id) : null;
    const cancelMessage = cancelledFact?.cancelMessageId
      ? await this.message(ctx, cancelledFact.cancelMessageId)
      : null;
    const name = issued.pharmacy.name;
    let state: PrescriptionState;
    let stateText: string;
    if (dispensedFact) {
      state = 'dispensed';
      stateText = `Dispensed by ${name}`;
    } else if (cancelledFact) {
      state = 'cancelled';
      stateText = !cancelledFact.cancelMessageId
        ? 'Cancelled'
        : cancelMessage?.state === 'accepted'
          ? `Cancelled — ${name} confirmed the cancellation`
          : cancelMessage?.state === 'rejected'
            ? `Cancellation refused by ${name}: ${cancelMessage.reason ?? 'no reason given'} — phone the pharmacy`
            : cancelMessage?.state === 'failed'
              ? `Cancellation not delivered to ${name} — phone the pharmacy to cancel it`
              : `Cancellation sent — not yet confirmed by ${name}`;
    } else if (printedFact) {
      state = 'printed';
      stateText = 'Printed for the paper route: not sent to any pharmacy';
    } else if (!message) {
      state = issued.route === 'paper' ? 'failed' : 'queued';
      stateText =
        issued.route === 'paper'
          ? `${name} takes no electronic prescriptions here: print it`
          : 'Queued — not yet received by the pharmacy';
    } else if (message.invalid || message.state === 'failed' || message.state === 'cancelled') {
      state = 'failed';
      stateText = `Not received by ${name}${message.reason ? ` (${message.reason})` : ''}: print it for the paper route, or cancel it`;
    } else if (message.state === 'rejected') {
      state = 'rejected';
      stateText = `${name} refused it: ${message.reason ?? 'no reason given'}`;
    } else if (message.state === 'accepted') {
      state = 'received';
      stateText = `Received by ${name}${message.reference ? ` (${message.reference})` : ''}`;
    } else if (message.state === 'queued') {
      state = 'queued';
      stateText = 'Queued — not yet received by the pharmacy';
    } else {
      state = 'sent';
      stateText = `Sent — not yet received by ${name}`;
    }
    return {
      ...rest,
      state,
      stateText,
      canPrint: state === 'failed' || state === 'rejected',
      canCancel: !dispensedFact && !cancelledFact,
      cancelled: cancelledFact
        ? {
            reason: cancelledFact.reason,
            atMs: cancelledFact.atMs,
            cancelMessageId: cancelledFact.cancelMessageId,
            confirmed: !cancelledFact.cancelMessageId || cancelMessage?.state === 'accepted',
          }
        : null,
      printed: printedFact ? { reason: printedFact.reason, atMs: printedFact.atMs } : null,
      dispensedAtMs: dispensedFact?.atMs ?? null,
    };
  }

  /** Cancels a prescription not yet dispensed: a cancellation message when it may have reached the pharmacy. */
  async cancel(ctx: RequestContext, prescriptionId: string, reason: string): Promise<PrescriptionView> {
    const { row, view } = await this.require(ctx, prescriptionId);
    if (view.state === 'dispensed')
      throw new ConflictError('the pharmacy has dispensed it: it can no longer be cancelled');
    if (view.cancelled) throw new ConflictError('the prescription is cancelled already');
    const issued = JSON.parse(row.issued) as PrescriptionIssued;
    const message = row.message_id ? await this.message(ctx, row.message_id) : null;
    const now = this.clock.nowMs();
    const drafts: EventDraft[] = [];
    let cancelMessageId: string | null = null;
    if (message && !['accepted', 'rejected', 'cancelled'].includes(message.state))
      // Not sent again by anyone (a retry of a failed message).
      drafts.push({
        tenant: ctx.tenant,
        type: 'message.cancelled',
        actor: actorOf(ctx),
        payload: { messageId: message.messageId, atMs: now, reason: `Prescription cancelled: ${reason}` },
      });
    const mayHaveReached = message && !view.printed && message.state !== 'rejected' && !message.invalid;
    if (mayHaveReached && issued.pharmacy.endpointId) {
      const endpoint = await this.deps.messaging.endpoint(ctx.tenant, issued.pharmacy.endpointId);
      if (endpoint) {
        cancelMessageId = randomUUID();
        const caseRow = await this.deps.cases.get(ctx, issued.caseId);
        const patient = await this.deps.patients.read(ctx, issued.patientId);
        drafts.push(
          this.deps.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
            messageId: cancelMessageId,
            kind: 'prescription',
            endpointId: endpoint.endpointId,
            caseId: issued.caseId,
            siteId: caseRow.site_id,
            bundle: prescriptionBundle({
              messageId: cancelMessageId,
              sentAtIso: new Date(now).toISOString(),
              source: { node: this.ledger.node, tenant: ctx.tenant },
              destination: { name: issued.pharmacy.name, endpoint: endpointAddress(endpoint) },
              issued,
              prescriber: { name: await this.prescriberName(ctx.tenant, issued.prescriberId) },
              patient: patient.record,
              cancel: { reason },
            }),
            summary: `Cancellation of prescription ${issued.shortFormId}`.slice(0, 200),
            failAfterMs: this.deps.failAfterMs ?? PRESCRIPTION_FAIL_AFTER_MS,
          }),
        );
      }
    }
    drafts.unshift({
      tenant: ctx.tenant,
      type: 'prescription.cancelled',
      actor: actorOf(ctx),
      payload: { prescriptionId, caseId: issued.caseId, reason, cancelMessageId, atMs: now },
    });
    drafts.push(this.caseWrite(ctx, issued.caseId));
    await this.ledger.append(drafts);
    return (await this.one(ctx, prescriptionId))!;
  }

  /** Records the paper route: only for a prescription whose message cannot go (failed, refused, none). */
  async print(ctx: RequestContext, prescriptionId: string, reason: string): Promise<PrescriptionView> {
    const { row, view } = await this.require(ctx, prescriptionId);
    if (view.printed) throw new ConflictError('the prescription is printed already: reprint it from its PDF');
    if (!view.canPrint)
      throw new ConflictError(
        `the prescription is ${view.state}: only one that could not be sent is printed (cancel it first)`,
      );
    const issued = JSON.parse(row.issued) as PrescriptionIssued;
    const message = row.message_id ? await this.message(ctx, row.message_id) : null;
    if (message && LIVE.includes(message.state))
      throw new ConflictError('the message may still reach the pharmacy: it cannot be printed as well');
    const now = this.clock.nowMs();
    const drafts: EventDraft[] = [
      {
        tenant: ctx.tenant,
        type: 'prescription.printed',
        actor: actorOf(ctx),
        payload: { prescriptionId, caseId: issued.caseId, reason, atMs: now },
      },
    ];
    // A failed message is cancelled with it: nobody may retry it once it is on paper.
    if (message && message.state === 'failed')
      drafts.push({
        tenant: ctx.tenant,
        type: 'message.cancelled',
        actor: actorOf(ctx),
        payload: { messageId: message.messageId, atMs: now, reason: 'Printed for the paper route instead' },
      });
    drafts.push(this.caseWrite(ctx, issued.caseId));
    await this.ledger.append(drafts);
    return (await this.one(ctx, prescriptionId))!;
  }

  /** The printable paper prescription, once printing was recorded. */
  async pdf(ctx: RequestContext, prescriptionId: string): Promise<Buffer> {
    const { row, view } = await this.require(ctx, prescriptionId);
    if (!view.printed) throw new ConflictError('record the printing first: the PDF is served only after it');
    if (view.cancelled) throw new ConflictError('the prescription is cancelled: it is not printed again');
    const issued = JSON.parse(row.issued) as PrescriptionIssued;
    const patient = await this.deps.patients.read(ctx, issued.patientId);
    await this.ledger.append([
      accessEvent(ctx, {
        action: 'read',
        resourceType: 'case',
        resourceId: issued.caseId,
        breakGlass: false,
        fields: ['prescription:pdf'],
      }),
    ]);
    return renderPrescriptionPdf({
      issued,
      patient: patient.record,
      prescriber: await this.prescriberName(ctx.tenant, issued.prescriberId),
      printedAtMs: view.printed.atMs,
      formulary: this.formulary,
    });
  }

  /**
   * A later message about one of our prescriptions from the pharmacy it went to (the inbound response
   * hook): a Task whose businessStatus says dispensed records it.
   */
  async dispensedDrafts(
    tenant: string,
    answered: { messageId: string; endpointId: string; kind: string },
    inbound: { messageId: string; bundle: Record<string, unknown> },
  ): Promise<EventDraft[]> {
    if (answered.kind !== 'prescription' || !saysDispensed(inbound.bundle)) return [];
    const row = (await this.rows(tenant, { messageId: answered.messageId }))[0];
    if (!row || row.dispensed) return [];
    return [
      {
        tenant,
        type: 'prescription.dispensed',
        actor: `endpoint:${answered.endpointId}`,
        payload: {
          prescriptionId: row.prescription_id,
          caseId: row.case_id,
          endpointId: answered.endpointId,
          inboundMessageId: inbound.messageId,
          atMs: this.clock.nowMs(),
        },
      },
    ];
  }

  /** What was prescribed on a case, a line each, for the Post Event Message. */
  async pemLines(tenant: string, caseId: string): Promise<string[]> {
    const rows = await this.rows(tenant, { caseId });
    return rows
      .map((r) => {
        const p = JSON.parse(r.issued) as PrescriptionIssued;
        const how = r.cancelled
          ? 'cancelled'
          : r.dispensed
            ? `dispensed by ${p.pharmacy.name}`
            : r.printed
              ? 'printed (paper prescription)'
              : p.route === 'message'
                ? `sent to ${p.pharmacy.name}`
                : 'not sent';
        const words = p.draft.quantityWords ? ` (${p.draft.quantityWords})` : '';
        return `${medicineLabel(p.medicine)}: ${p.draft.doseMg} mg ${p.draft.frequencyPerDay} times a day for ${p.draft.durationDays} days; quantity ${p.draft.quantity} ${p.medicine.unit}${words}; ${p.draft.directions} — prescription ${p.shortFormId}, ${how}`;
      })
      .reverse();
  }

  private async message(ctx: Pick<RequestContext, 'tenant'>, messageId: string): Promise<MessageView | null> {
    try {
      return await this.deps.messaging.get(ctx as RequestContext, messageId);
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  private rows(
    tenant: string,
    where: { caseId?: string; prescriptionId?: string; messageId?: string },
  ): Promise<PrescriptionsTable[]> {
    return this.store.withTenant(tenant, (trx) => {
      let q = prescribingDb(trx).selectFrom('prescriptions').selectAll().where('tenant', '=', tenant);
      if (where.caseId) q = q.where('case_id', '=', where.caseId);
      if (where.prescriptionId) q = q.where('prescription_id', '=', where.prescriptionId);
      if (where.messageId) q = q.where('message_id', '=', where.messageId);
      return q.orderBy('issued_hlc', 'desc').limit(200).execute();
    });
  }
}

/** Whole years between a date of birth and now (UTC calendar). */
export function ageInYears(dateOfBirth: string, nowMs: number): number {
  const [y, m, d] = dateOfBirth.split('-').map(Number) as [number, number, number];
  const now = new Date(nowMs);
  let age = now.getUTCFullYear() - y;
  if (now.getUTCMonth() + 1 < m || (now.getUTCMonth() + 1 === m && now.getUTCDate() < d)) age--;
  return Math.max(0, age);
}

/**
 * The prescribing organisation's code in the short-form id: the provider has no ODS code of its own
 * in Holdfast yet, so a stable 6-character code is derived from the tenant (letters and digits).
 */
function providerOds(tenant: string): string {
  const code = tenant
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '')
    .slice(0, 6);
  return code || 'HOLDFS';
}

/** Whether a message about a prescription says it was dispensed (a Task's businessStatus). */
export function saysDispensed(bundle: Record<string, unknown>): boolean {
  const entries = Array.isArray(bundle.entry)
    ? (bundle.entry as { resource?: Record<string, unknown> }[])
    : [];
  return entries.some((e) => {
    const r = e.resource;
    if (r?.resourceType !== 'Task') return false;
    const status = r.businessStatus as { coding?: { code?: string }[] } | undefined;
    return (status?.coding ?? []).some((c) => c.code === 'dispensed');
  });
}
