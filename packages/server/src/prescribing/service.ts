import { randomBytes, randomUUID } from 'node:crypto';
import {
  blockingProblems,
  checkPrescription,
  ConflictError,
  makePrescriptionId,
  NotFoundError,
  type CaseState,
  type Clock,
  type Formulary,
  type Override,
  type PatientForPrescribing,
  type PrescriptionDraft,
} from '@holdfast/core';
import { ageInYears } from '@holdfast/core/triage/eligibility';
import { sql } from 'kysely';
import type { CaseService } from '../cases/service.ts';
import type { DirectoryService } from '../directory/service.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft, Ledger } from '../ledger/ledger.ts';
import { endpointAddress, type MessagingService } from '../messaging/service.ts';
import type { PatientService } from '../patients/service.ts';
import type { Store } from '../store/store.ts';
import { prescriptionBundle } from './eps-bundle.ts';
import type { AllergyRecorded, MedicationRecorded, PrescriptionIssued } from './events.ts';
import { renderPrescriptionPdf } from './pdf.ts';

/**
 * Allergies, current medication and prescriptions (C9). (h18-web's thin stand-in of CONTRACT-18's
 * PrescribingService, reading its own facts from the ledger by subject; h18-server's fuller module,
 * with a projection, the pharmacy receiver and the PEM, replaces it.)
 */
export type PrescriptionState =
  'queued' | 'sent' | 'received' | 'dispensed' | 'rejected' | 'failed' | 'cancelled' | 'printed';

const STATE_TEXT: Record<PrescriptionState, string> = {
  queued: 'Queued — not yet received by the pharmacy',
  sent: 'Sent — not yet received by the pharmacy',
  received: 'Received by the pharmacy',
  dispensed: 'Dispensed by the pharmacy',
  rejected: 'Refused by the pharmacy',
  failed: 'Not delivered to the pharmacy: print a paper prescription, or cancel and send again',
  cancelled: 'Cancelled',
  printed: 'Printed on paper (not sent)',
};

export type FactSource = 'caller' | 'record' | 'clinician';
export interface FactView {
  id: string;
  text: string;
  source: FactSource;
  reportedBy: string;
  recordedBy: string;
  atMs: number;
}
export interface AllergyView extends FactView {
  allergen: string;
  allergyClass: string | null;
  reaction: string | null;
}
export interface MedicationView extends FactView {
  name: string;
  code: string | null;
  dose: string | null;
}

export type PharmacyChoice = 'nominated' | { odsCode: string } | { serviceId: string };

export interface PrescriptionView extends PrescriptionIssued {
  state: PrescriptionState;
  stateText: string;
  cancelReason: string | null;
  printedAtMs: number | null;
}

interface Deps {
  cases: CaseService;
  patients: PatientService;
  messaging: MessagingService;
  directory: Pick<DirectoryService, 'serviceById'>;
  formulary: Formulary;
}

export class PrescribingService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly clock: Clock,
    private readonly deps: Deps,
  ) {}

  formulary(): Formulary {
    return this.deps.formulary;
  }

  private async events(
    tenant: string,
    subject: string,
  ): Promise<{ type: string; actor: string; payload: Record<string, unknown> }[]> {
    const rows = await this.store.withTenant(tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['type', 'actor', 'payload'])
        .where('tenant', '=', tenant)
        .where('subject', '=', subject)
        .orderBy('hlc')
        .orderBy('node')
        .orderBy('seq')
        .execute(),
    );
    return rows.map((r) => ({
      type: r.type,
      actor: r.actor,
      payload: (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as Record<string, unknown>,
    }));
  }

  async allergiesAndMedication(
    ctx: RequestContext,
    patientId: string,
  ): Promise<{ allergies: AllergyView[]; medication: MedicationView[] }> {
    await this.deps.patients.requireReadable(ctx, patientId, undefined, 'prescribing');
    return this.factsOf(ctx.tenant, patientId);
  }

  private async factsOf(
    tenant: string,
    patientId: string,
  ): Promise<{ allergies: AllergyView[]; medication: MedicationView[] }> {
    const allergies = new Map<string, AllergyView>();
    const medication = new Map<string, MedicationView>();
    for (const e of await this.events(tenant, `prescribing:${patientId}`)) {
      const recordedBy = e.actor.replace(/^user:/, '');
      if (e.type === 'patient.allergy_recorded') {
        const p = e.payload as AllergyRecorded;
        allergies.set(p.allergyId, {
          id: p.allergyId,
          text: p.allergen + (p.reaction ? ` (${p.reaction})` : ''),
          allergen: p.allergen,
          allergyClass: p.allergyClass,
          reaction: p.reaction,
          source: p.source,
          reportedBy: p.reportedBy,
          recordedBy,
          atMs: p.atMs,
        });
      } else if (e.type === 'patient.allergy_removed') allergies.delete(e.payload.allergyId as string);
      else if (e.type === 'patient.medication_recorded') {
        const p = e.payload as MedicationRecorded;
        medication.set(p.medicationId, {
          id: p.medicationId,
          text: p.name + (p.dose ? `, ${p.dose}` : ''),
          name: p.name,
          code: p.code,
          dose: p.dose,
          source: p.source,
          reportedBy: p.reportedBy,
          recordedBy,
          atMs: p.atMs,
        });
      } else if (e.type === 'patient.medication_stopped') medication.delete(e.payload.medicationId as string);
    }
    return { allergies: [...allergies.values()], medication: [...medication.values()] };
  }

  async recordAllergy(
    ctx: RequestContext,
    patientId: string,
    input: {
      allergen: string;
      allergyClass: string | null;
      reaction: string | null;
      source: FactSource;
      reportedBy: string;
    },
  ): Promise<{ allergyId: string }> {
    await this.deps.patients.requireReadable(ctx, patientId, undefined, 'prescribing');
    const allergyId = randomUUID();
    await this.append(ctx, 'patient.allergy_recorded', {
      allergyId,
      patientId,
      ...input,
      atMs: this.clock.nowMs(),
    });
    return { allergyId };
  }

  async removeAllergy(
    ctx: RequestContext,
    patientId: string,
    allergyId: string,
    reason: string,
  ): Promise<void> {
    const facts = await this.allergiesAndMedication(ctx, patientId);
    if (!facts.allergies.some((a) => a.id === allergyId)) throw new NotFoundError('allergy');
    await this.append(ctx, 'patient.allergy_removed', {
      allergyId,
      patientId,
      reason,
      atMs: this.clock.nowMs(),
    });
  }

  async recordMedication(
    ctx: RequestContext,
    patientId: string,
    input: { name: string; code: string | null; dose: string | null; source: FactSource; reportedBy: string },
  ): Promise<{ medicationId: string }> {
    await this.deps.patients.requireReadable(ctx, patientId, undefined, 'prescribing');
    const medicationId = randomUUID();
    await this.append(ctx, 'patient.medication_recorded', {
      medicationId,
      patientId,
      ...input,
      atMs: this.clock.nowMs(),
    });
    return { medicationId };
  }

  async stopMedication(
    ctx: RequestContext,
    patientId: string,
    medicationId: string,
    reason: string,
  ): Promise<void> {
    const facts = await this.allergiesAndMedication(ctx, patientId);
    if (!facts.medication.some((m) => m.id === medicationId)) throw new NotFoundError('medication');
    await this.append(ctx, 'patient.medication_stopped', {
      medicationId,
      patientId,
      reason,
      atMs: this.clock.nowMs(),
    });
  }

  private async append(ctx: RequestContext, type: string, payload: Record<string, unknown>): Promise<void> {
    await this.ledger.append([{ tenant: ctx.tenant, type, actor: actorOf(ctx), payload }]);
  }

  /** The case in consultation held by this prescriber, and its patient. */
  private async consultingCase(ctx: RequestContext, caseId: string) {
    const row = await this.deps.cases.get(ctx, caseId);
    const state = JSON.parse(row.state) as CaseState;
    if (state.status !== 'in_consultation' || row.claimed_by !== ctx.userId)
      throw new ConflictError('prescribing needs the case in a consultation held by you');
    if (!row.patient_id) throw new ConflictError('the patient is not identified on this case');
    return { row, patientId: row.patient_id };
  }

  async patientFor(
    ctx: RequestContext,
    patientId: string,
    extra: { weightKg?: number | null; pregnant?: boolean | null },
  ): Promise<PatientForPrescribing> {
    const view = await this.deps.patients.read(ctx, patientId);
    const facts = await this.factsOf(ctx.tenant, patientId);
    const dob = view.record.dateOfBirth;
    return {
      ageYears: dob ? ageInYears(dob, new Date(this.clock.nowMs()).toISOString()) : null,
      weightKg: extra.weightKg ?? null,
      pregnant: extra.pregnant ?? null,
      renalImpairment: null,
      allergies: facts.allergies.map((a) => ({ allergen: a.allergen, allergyClass: a.allergyClass })),
      currentMedication: facts.medication.map((m) => ({ code: m.code, name: m.name })),
    };
  }

  async check(
    ctx: RequestContext,
    caseId: string,
    draft: PrescriptionDraft,
    extra: { weightKg?: number | null; pregnant?: boolean | null },
  ) {
    const { patientId } = await this.consultingCase(ctx, caseId);
    const patient = await this.patientFor(ctx, patientId, extra);
    return { checks: checkPrescription(draft, patient, this.deps.formulary), patient };
  }

  async prescribe(
    ctx: RequestContext,
    caseId: string,
    input: {
      draft: PrescriptionDraft;
      overrides: Override[];
      pharmacy: PharmacyChoice;
      weightKg?: number | null;
      pregnant?: boolean | null;
    },
  ): Promise<PrescriptionView> {
    const { row, patientId } = await this.consultingCase(ctx, caseId);
    const medicine = this.deps.formulary.medicines.find((m) => m.code === input.draft.medicineCode);
    if (!medicine) throw new NotFoundError('medicine');
    const patient = await this.patientFor(ctx, patientId, input);
    // The checks run again here: what the browser showed is never trusted.
    const checks = checkPrescription(input.draft, patient, this.deps.formulary);
    const problems = blockingProblems(checks, input.overrides);
    if (problems.length > 0) throw new ConflictError(`not sent: ${problems.join('; ')}`);
    // One prescription of a medicine at a time: a printed or undelivered one is cancelled first.
    const same = (await this.list(ctx, caseId)).find(
      (p) => p.draft.medicineCode === medicine.code && !['cancelled', 'rejected'].includes(p.state),
    );
    if (same)
      throw new ConflictError(
        same.state === 'printed'
          ? 'a paper prescription of this medicine was printed: cancel it before sending again'
          : `a prescription of this medicine is already ${same.state}: cancel it before sending again`,
      );
    const view = await this.deps.patients.read(ctx, patientId);
    let pharmacy: { odsCode: string; name: string };
    if (input.pharmacy === 'nominated') {
      const nominated = view.record.nominatedPharmacy;
      if (!nominated)
        throw new ConflictError('the patient has no nominated pharmacy: choose one from the directory');
      pharmacy = { odsCode: nominated.odsCode, name: nominated.name ?? nominated.odsCode };
    } else if ('serviceId' in input.pharmacy) {
      const service = await this.deps.directory.serviceById(ctx.tenant, input.pharmacy.serviceId);
      if (!service || service.type !== 'community_pharmacy' || !service.odsCode)
        throw new NotFoundError('community pharmacy');
      pharmacy = { odsCode: service.odsCode, name: service.name };
    } else pharmacy = { odsCode: input.pharmacy.odsCode, name: input.pharmacy.odsCode };
    const endpoint = await this.deps.messaging.endpointFor(ctx.tenant, 'prescription', pharmacy.odsCode);
    if (!endpoint)
      throw new ConflictError(`${pharmacy.name} takes no electronic prescriptions: choose another pharmacy`);
    if (input.pharmacy !== 'nominated' && 'odsCode' in input.pharmacy) pharmacy.name = endpoint.name;
    const now = this.clock.nowMs();
    const issued: PrescriptionIssued = {
      prescriptionId: randomUUID(),
      caseId,
      patientId,
      shortFormId: makePrescriptionId({
        random6Hex: randomBytes(3).toString('hex'),
        odsCode: 'HOLDFS',
        sequence: randomBytes(3).readUIntBE(0, 3),
      }),
      medicine: {
        code: medicine.code,
        name: medicine.name,
        form: medicine.form,
        strength: medicine.strength,
        route: medicine.route,
        schedule: medicine.controlledSchedule,
      },
      draft: input.draft,
      checks,
      overrides: input.overrides.filter((o) =>
        checks.some((c) => c.check === o.check && c.outcome === 'warning'),
      ),
      pharmacy: { ...pharmacy, endpointId: endpoint.endpointId },
      route: 'message',
      messageId: randomUUID(),
      formulary: { id: this.deps.formulary.id, version: this.deps.formulary.version },
      prescriberId: ctx.userId,
      atMs: now,
    };
    const bundle = prescriptionBundle(
      issued,
      { name: endpoint.name, endpoint: endpointAddress(endpoint) },
      {
        familyName: view.record.familyName ?? 'Unknown',
        givenName: view.record.givenName ?? null,
        nhsNumber: view.record.nhsNumber ?? null,
      },
      new Date(now).toISOString(),
    );
    const drafts: EventDraft[] = [
      { tenant: ctx.tenant, type: 'prescription.issued', actor: actorOf(ctx), payload: { ...issued } },
      this.deps.messaging.queuedDraft(ctx.tenant, actorOf(ctx), {
        messageId: issued.messageId!,
        kind: 'prescription',
        endpointId: endpoint.endpointId,
        caseId,
        siteId: row.site_id,
        bundle,
        summary: `Prescription ${issued.shortFormId} to ${pharmacy.name}`,
        failAfterMs: endpoint.acceptWithinSeconds * 1000,
      }),
    ];
    await this.ledger.append(drafts);
    return (await this.one(ctx, issued.prescriptionId)).view;
  }

  async list(ctx: RequestContext, caseId: string): Promise<PrescriptionView[]> {
    await this.deps.cases.get(ctx, caseId);
    const out = new Map<string, PrescriptionView>();
    for (const e of await this.events(ctx.tenant, `prescriptions:${caseId}`)) {
      const id = e.payload.prescriptionId as string;
      if (e.type === 'prescription.issued')
        out.set(id, {
          ...(e.payload as PrescriptionIssued),
          state: 'queued',
          stateText: '',
          cancelReason: null,
          printedAtMs: null,
        });
      const p = out.get(id);
      if (!p) continue;
      if (e.type === 'prescription.cancelled') p.cancelReason = e.payload.reason as string;
      if (e.type === 'prescription.printed') p.printedAtMs = e.payload.atMs as number;
    }
    for (const p of out.values()) {
      p.state = await this.stateOf(ctx, p);
      p.stateText = STATE_TEXT[p.state];
    }
    return [...out.values()].sort((a, b) => b.atMs - a.atMs);
  }

  private async stateOf(ctx: RequestContext, p: PrescriptionView): Promise<PrescriptionState> {
    if (p.cancelReason !== null) return 'cancelled';
    if (p.printedAtMs !== null) return 'printed';
    if (!p.messageId) return 'failed';
    const message = await this.deps.messaging.get(ctx, p.messageId).catch(() => null);
    switch (message?.state) {
      case 'queued':
        return 'queued';
      case 'sent':
      case 'delivered':
        return 'sent';
      case 'accepted':
        return 'received';
      case 'rejected':
        return 'rejected';
      case 'failed':
      case 'cancelled':
      case undefined:
        return 'failed';
    }
  }

  private async one(ctx: RequestContext, prescriptionId: string): Promise<{ view: PrescriptionView }> {
    const rows = await this.store.withTenant(ctx.tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select('subject')
        .where('tenant', '=', ctx.tenant)
        .where('type', '=', 'prescription.issued')
        .where(sql<boolean>`payload like ${`%"prescriptionId":"${prescriptionId}"%`}`)
        .limit(1)
        .execute(),
    );
    const caseId = rows[0]?.subject?.replace(/^prescriptions:/, '');
    if (!caseId) throw new NotFoundError('prescription');
    const view = (await this.list(ctx, caseId)).find((p) => p.prescriptionId === prescriptionId);
    if (!view) throw new NotFoundError('prescription');
    return { view };
  }

  async cancel(ctx: RequestContext, prescriptionId: string, reason: string): Promise<PrescriptionView> {
    const { view } = await this.one(ctx, prescriptionId);
    if (view.state === 'cancelled') throw new ConflictError('the prescription is already cancelled');
    if (view.state === 'dispensed')
      throw new ConflictError('the pharmacy has dispensed it: it cannot be cancelled');
    const now = this.clock.nowMs();
    const drafts: EventDraft[] = [
      {
        tenant: ctx.tenant,
        type: 'prescription.cancelled',
        actor: actorOf(ctx),
        payload: { prescriptionId, caseId: view.caseId, reason, cancelMessageId: null, atMs: now },
      },
    ];
    // An unanswered message is stopped with it, so the pharmacy is never sent a cancelled one.
    if (view.messageId && (view.state === 'queued' || view.state === 'sent'))
      drafts.push({
        tenant: ctx.tenant,
        type: 'message.cancelled',
        actor: actorOf(ctx),
        payload: { messageId: view.messageId, atMs: now, reason },
      });
    await this.ledger.append(drafts);
    return (await this.one(ctx, prescriptionId)).view;
  }

  async print(ctx: RequestContext, prescriptionId: string, reason: string): Promise<PrescriptionView> {
    const { view } = await this.one(ctx, prescriptionId);
    if (view.state === 'printed') throw new ConflictError('the prescription was already printed');
    if (view.state !== 'failed' && view.state !== 'rejected')
      throw new ConflictError(
        view.state === 'cancelled'
          ? 'the prescription is cancelled: it cannot be printed'
          : `the prescription is ${view.state} by message: it cannot also be printed`,
      );
    await this.append(ctx, 'prescription.printed', {
      prescriptionId,
      caseId: view.caseId,
      reason,
      atMs: this.clock.nowMs(),
    });
    return (await this.one(ctx, prescriptionId)).view;
  }

  async pdf(ctx: RequestContext, prescriptionId: string): Promise<Buffer> {
    const { view } = await this.one(ctx, prescriptionId);
    if (view.printedAtMs === null) throw new ConflictError('record the printing first: the PDF follows it');
    const patient = (await this.deps.patients.read(ctx, view.patientId)).record;
    return renderPrescriptionPdf(view, patient, this.deps.formulary);
  }
}
