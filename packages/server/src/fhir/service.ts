import { ForbiddenError, NotFoundError, type CaseState, type News2Observations } from '@holdfast/core';
import type {
  Composition,
  Encounter,
  Observation,
  Patient,
  QuestionnaireResponse,
  Resource,
  ServiceRequest,
} from '@medplum/fhirtypes';
import type { Auditor } from '../audit/auditor.ts';
import type { CasesTable } from '../cases/projection.ts';
import type { CaseService } from '../cases/service.ts';
import type { TriageService } from '../cases/triage.ts';
import type { RequestContext } from '../http/context.ts';
import type { PatientService } from '../patients/service.ts';
import {
  caseResources,
  fhirId,
  patientInputFromRecord,
  patientResource,
  type CaseInput,
  type CaseResources,
  type ConsultationInput,
  type DispositionInput,
  type TriagePathInput,
} from './mapping.ts';
import { validateOutgoing } from './validate.ts';

/** The resource types of a case that the API serves, and how an audit record names them. */
export type CaseResourceType =
  'Encounter' | 'ServiceRequest' | 'QuestionnaireResponse' | 'Observation' | 'Composition';

/** A FHIR id made by Holdfast for a case's resources starts with the case id (a UUID). */
const CASE_ID_PREFIX = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(-|$)/;

/**
 * Reads for the FHIR API. Every read goes through the owning module's service, so the same
 * tenant isolation, site scope, field rules and audit apply as on the REST API: patient records
 * through PatientService (which audits each read and search and applies break-glass), cases through
 * CaseService with an audit record per case read here. Every resource is validated before it is
 * returned.
 */
export class FhirService {
  constructor(
    private readonly patients: PatientService,
    private readonly cases: CaseService,
    private readonly triage: TriageService,
    private readonly auditor: Auditor,
  ) {}

  async patient(ctx: RequestContext, patientId: string, breakGlassReason?: string): Promise<Patient> {
    const view = await this.patients.read(ctx, patientId, breakGlassReason);
    const { givenName, familyName, dateOfBirth } = view.record;
    if (!givenName || !familyName || !dateOfBirth) throw new NotFoundError('patient');
    return validateOutgoing(
      patientResource(
        patientInputFromRecord(
          patientId,
          { ...view.record, givenName, familyName, dateOfBirth },
          fhirId(ctx.tenant),
        ),
      ),
    );
  }

  /**
   * Patients with this NHS number that the caller may read (records outside their sites are left
   * out: break-glass is for one record at a time, with a reason). The search itself is audited,
   * and so is each record read.
   */
  async patientsByNhsNumber(ctx: RequestContext, nhsNumber: string): Promise<Patient[]> {
    // The search leaves out records outside the caller's sites (the access layer's rule).
    const found = await this.patients.search(ctx, { nhsNumber });
    const out: Patient[] = [];
    for (const summary of found.patients) {
      try {
        out.push(await this.patient(ctx, summary.patientId));
      } catch (error) {
        if (!(error instanceof ForbiddenError || error instanceof NotFoundError)) throw error;
      }
    }
    return out;
  }

  /** The case's data as the mapping takes it, its read audited. NotFound for another provider's case. */
  private async caseInput(ctx: RequestContext, caseId: string, reading: string): Promise<CaseInput> {
    const row = await this.cases.get(ctx, caseId);
    const consultations = await this.cases.consultations(ctx, caseId);
    await this.auditor.access(ctx, {
      action: 'read',
      resourceType: 'case',
      resourceId: caseId,
      breakGlass: false,
      fields: [`fhir:${reading}`],
    });
    return caseInputFromRow(
      fhirId(ctx.tenant),
      row,
      this.triagePath(row),
      consultations.map(toConsultationInput),
    );
  }

  private triagePath(row: CasesTable): TriagePathInput | null {
    return triagePathOf(this.triage, row);
  }

  private async resourcesOfCase(
    ctx: RequestContext,
    caseId: string,
    reading: string,
  ): Promise<CaseResources> {
    return caseResources(await this.caseInput(ctx, caseId, reading));
  }

  async encounter(ctx: RequestContext, caseId: string): Promise<Encounter> {
    return validateOutgoing((await this.resourcesOfCase(ctx, caseId, 'Encounter')).encounter);
  }

  async serviceRequest(ctx: RequestContext, caseId: string): Promise<ServiceRequest> {
    const r = (await this.resourcesOfCase(ctx, caseId, 'ServiceRequest')).serviceRequest;
    if (!r) throw new NotFoundError('ServiceRequest (the case has no disposition or no identified patient)');
    return validateOutgoing(r);
  }

  async questionnaireResponse(ctx: RequestContext, caseId: string): Promise<QuestionnaireResponse> {
    const r = (await this.resourcesOfCase(ctx, caseId, 'QuestionnaireResponse')).questionnaireResponse;
    if (!r) throw new NotFoundError('QuestionnaireResponse (the case has not been triaged)');
    return validateOutgoing(r);
  }

  async composition(ctx: RequestContext, caseId: string): Promise<Composition> {
    const r = (await this.resourcesOfCase(ctx, caseId, 'Composition')).composition;
    if (!r) throw new NotFoundError('Composition (the case has no identified patient)');
    return validateOutgoing(r);
  }

  async observation(ctx: RequestContext, observationId: string): Promise<Observation> {
    const caseId = caseIdOf(observationId);
    if (!caseId) throw new NotFoundError('Observation');
    const found = (await this.resourcesOfCase(ctx, caseId, 'Observation')).observations.find(
      (o) => o.id === observationId,
    );
    if (!found) throw new NotFoundError('Observation');
    return validateOutgoing(found);
  }

  /** Every resource of one type for a case (a search by encounter). */
  async ofCase(ctx: RequestContext, type: CaseResourceType, caseId: string): Promise<Resource[]> {
    let r: CaseResources;
    try {
      r = await this.resourcesOfCase(ctx, caseId, type);
    } catch (error) {
      // A search finds nothing where a read would not find the case (another provider's too).
      if (error instanceof NotFoundError) return [];
      throw error;
    }
    const list: (Resource | undefined)[] =
      type === 'Encounter'
        ? [r.encounter]
        : type === 'ServiceRequest'
          ? [r.serviceRequest]
          : type === 'QuestionnaireResponse'
            ? [r.questionnaireResponse]
            : type === 'Composition'
              ? [r.composition]
              : r.observations;
    return list.filter((x): x is Resource => x !== undefined).map((x) => validateOutgoing(x));
  }

  /** Case ids of a patient, newest first. The patient read is audited (and scoped) first. */
  async caseIdsOfPatient(ctx: RequestContext, patientId: string, limit: number): Promise<string[]> {
    try {
      await this.patients.read(ctx, patientId);
    } catch (error) {
      if (error instanceof NotFoundError || error instanceof ForbiddenError) return [];
      throw error;
    }
    return this.cases.caseIdsOfPatient(ctx, patientId, limit);
  }
}

export function caseIdOf(resourceId: string): string | null {
  return CASE_ID_PREFIX.exec(resourceId)?.[1] ?? null;
}

export function toConsultationInput(
  c: Awaited<ReturnType<CaseService['consultations']>>[number],
): ConsultationInput {
  const { history, examination, observations, assessment, plan, safetyNetting } = c.record;
  return {
    consultationId: c.eventId,
    recordedAt: new Date(c.recordedAtMs).toISOString(),
    clinicianId: c.record.clinicianId,
    ...(history ? { history } : {}),
    ...(examination ? { examination } : {}),
    ...(observations ? { observations: observations as News2Observations } : {}),
    ...(c.record.news2NotApplicable ? { news2NotApplicable: true } : {}),
    ...(assessment ? { assessment } : {}),
    ...(plan ? { plan } : {}),
    ...(safetyNetting ? { safetyNetting } : {}),
  };
}

/** A `cases` row (with its triage path and consultations) as the mapping's plain input. */
export function caseInputFromRow(
  organizationId: string,
  row: CasesTable,
  triage: TriagePathInput | null,
  consultations: ConsultationInput[],
): CaseInput {
  const state = JSON.parse(row.state) as CaseState;
  const disposition: DispositionInput | null =
    row.disposition_kind && row.dx_code
      ? {
          kind: row.disposition_kind,
          dxCode: row.dx_code,
          label: row.disposition_label ?? row.dx_code,
          timeframeMinutes: Number(row.timeframe_minutes ?? 0),
          ambulanceCategory: row.ambulance_category === null ? null : Number(row.ambulance_category),
          careAdvice: JSON.parse(row.care_advice) as string[],
          sample: Number(row.sample) === 1,
        }
      : null;
  const iso = (ms: number | null) => (ms === null ? null : new Date(Number(ms)).toISOString());
  return {
    caseId: row.case_id,
    siteId: row.site_id,
    status: state.status,
    receivedAt: iso(row.received_at)!,
    closedAt: iso(row.closed_at) ?? iso(row.abandoned_at),
    patientId: row.patient_id,
    presentingComplaint: row.complaint,
    location: row.location,
    disposition,
    deadline: iso(row.deadline_at),
    claimedBy: state.claimantId,
    triage,
    consultations,
    organizationId,
  };
}

/** The triage walk of a case as the mapping takes it; null before triage. */
export function triagePathOf(triage: TriageService, row: CasesTable): TriagePathInput | null {
  const state = triage.stateOf(row);
  if (!state || !row.pathway_id || !row.pathway_version) return null;
  const answers = JSON.parse(row.answers) as { at: number }[];
  const last = answers.at(-1);
  return {
    pathwayId: row.pathway_id,
    pathwayVersion: row.pathway_version,
    steps: state.result.path.map((s) => ({ nodeId: s.nodeId, question: s.question, answer: s.answer })),
    complete: state.result.status === 'disposition',
    ...(last ? { lastAnsweredAt: new Date(last.at).toISOString() } : {}),
  };
}
