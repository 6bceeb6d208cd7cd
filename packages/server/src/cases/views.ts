import {
  ConflictError,
  ForbiddenError,
  hasPermission,
  isUrgentNews2Band,
  NEWS2_PARAMETER_COUNT,
  news2NotApplicable,
  news2NotApplicableMessage,
  NON_URGENT_OUTCOMES,
  NotFoundError,
  scoreNews2,
  TERMINAL_STATUSES,
  ValidationError,
  type CaseCommand,
  type CaseState,
  type ConsultationOutcome,
  type News2NotApplicableReason,
  type News2Observations,
  type PregnancyAnswer,
  type WelfareChecker,
  type WelfareCheckOutcome,
} from '@holdfast/core';
import { ageInYears, pathwayNotForAge, type PathwayAges } from '@holdfast/core/triage/eligibility';
import type { AccountsService } from '../accounts/service.ts';
import type { AccessFields, Auditor } from '../audit/auditor.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft } from '../ledger/ledger.ts';
import type { PatientService } from '../patients/service.ts';
import { type CasesTable, type TriageAnswerRecord } from './projection.ts';
import { caseReference } from '@holdfast/core';
import { buildCaseRecord, userIdsIn, type CaseRecordView } from './record.ts';
import type { CaseService } from './service.ts';
import { queueSitesOf } from './sites.ts';
import type { TriageService } from './triage.ts';

/** At most this many previous encounters are listed on a patient's screen. */
export const ENCOUNTERS_LIMIT = 100;

/** Shown with every disposition that came from the shipped sample protocols. */
export const SAMPLE_LABEL = 'Sample content for demonstration — not clinically validated';

export interface IdentifyPatientInput {
  patientId: string;
  /** The patient the case has now, when this corrects it. */
  replacing?: string | undefined;
  /** Why the patient is corrected (required with `replacing`). */
  reason?: string | undefined;
  /** The adviser confirmed that the call is about a patient whose record says they have died. */
  deceasedConfirmed?: boolean | undefined;
}

export interface ConsultationInput {
  history?: string;
  examination?: string;
  observations?: News2Observations;
  /** Pregnant or up to 6 weeks after giving birth. */
  pregnancy?: PregnancyAnswer;
  /** The age given at the call, used when the patient is not identified. */
  statedAgeYears?: number;
  assessment?: string;
  plan?: string;
  safetyNetting?: string;
}

/** Reads of cases (audited, as they carry patient data) and the case facts that need checks. */
export class CaseViews {
  constructor(
    private readonly cases: CaseService,
    private readonly patients: PatientService,
    private readonly accounts: AccountsService,
    private readonly auditor: Auditor,
    private readonly triage: TriageService,
  ) {}

  async detail(ctx: RequestContext, caseId: string) {
    // Whoever worked on the case (the adviser who took the call, a clinician who held it) reads it
    // wherever it is; anyone else only at their own sites (the access layer, in `CaseService.get`).
    const row = await this.cases.get(ctx, caseId, undefined, 'GET /api/v1/cases/:caseId');
    const history = await this.cases.history(ctx, row.case_id);
    const involved = userIdsIn(history);
    const names = await this.accounts.displayNames(ctx.tenant, [
      ...involved,
      ...(row.claimed_by ? [row.claimed_by] : []),
    ]);
    const record = this.record(ctx, row, history, names);
    await this.auditor.access(ctx, detailRead(caseId, record));
    return {
      ...caseView(row),
      // "Held by Dr A Khan", never "another clinician": whom to ask is part of the work.
      claimedByName: row.claimed_by ? (names.get(row.claimed_by) ?? 'a former member of staff') : null,
      record,
    };
  }

  /** The case's full record: triage path, consultations, and what happened, with who did it. */
  private record(
    ctx: RequestContext,
    row: CasesTable,
    history: Awaited<ReturnType<CaseService['history']>>,
    names: Map<string, string>,
  ): CaseRecordView {
    return buildCaseRecord({
      roles: ctx.roles,
      history,
      triagePath: this.triagePathOf(row),
      names,
      pathwayTitle: (id) => this.triage.pack.protocols.get(id)?.content.pathwayTitle ?? id,
    });
  }

  /** The questions and answers of the case's triage; empty if its pathway is no longer loaded. */
  private triagePathOf(row: CasesTable): { question: string; answer: string }[] {
    try {
      return this.triage.answeredPath(row);
    } catch (error) {
      if (error instanceof NotFoundError) return [];
      throw error;
    }
  }

  /**
   * A patient's previous encounters with the provider, across all its sites, newest first: a
   * clinician calling back sees what was found and done before, wherever it was. Reading them is
   * reading the patient's record, so the same rule applies (own sites, or break-glass with a reason),
   * and the read is audited with the case ids shown.
   */
  async patientEncounters(ctx: RequestContext, patientId: string, breakGlassReason?: string) {
    const access = await this.patients.requireReadable(
      ctx,
      patientId,
      breakGlassReason,
      'GET /api/v1/patients/:patientId/encounters',
    );
    const rows = await this.cases.rowsOfPatient(ctx, patientId, ENCOUNTERS_LIMIT);
    const sites = new Map((await this.accounts.sites(ctx.tenant)).map((s) => [s.siteId, s.name]));
    await this.auditor.access(ctx, {
      action: 'read',
      resourceType: 'patient',
      resourceId: patientId,
      ...(access.reason ? { reason: access.reason } : {}),
      breakGlass: access.breakGlass,
      fields: ['encounters', ...rows.map((r) => `case:${r.case_id}`)],
    });
    return {
      patientId,
      breakGlass: access.breakGlass,
      encounters: rows.map((row) => {
        const state = JSON.parse(row.state) as CaseState;
        return {
          caseId: row.case_id,
          reference: caseReference(row.case_id),
          siteId: row.site_id,
          siteName: sites.get(row.site_id) ?? null,
          receivedAt: new Date(Number(row.received_at)).toISOString(),
          closedAt: row.closed_at === null ? null : new Date(Number(row.closed_at)).toISOString(),
          status: state.status,
          presentingComplaint: row.complaint,
          disposition: row.disposition_label ? { label: row.disposition_label, dxCode: row.dx_code } : null,
          outcomes: state.outcomes,
          news2: row.news2_total === null ? null : { total: Number(row.news2_total), band: row.news2_band },
          escalated: state.escalated,
        };
      }),
    };
  }

  /**
   * Runs a command and answers with the case as it left it. The audit of that read is appended
   * with the command's events, in one commit: a command answered with an error was not stored,
   * and a stored one was never answered with an error because its audit could not be written.
   */
  async commandThenDetail(
    ctx: RequestContext,
    caseId: string,
    command: CaseCommand,
    extra?: (row: CasesTable) => EventDraft[],
  ) {
    if (command.type === 'claim') {
      // Claiming is taking the work: only at one's own sites, unless one works across sites.
      const sites = queueSitesOf(ctx);
      const row = await this.cases.get(ctx, caseId);
      if (sites !== 'all' && !sites.includes(row.site_id))
        throw new ForbiddenError(
          "this case belongs to a site that is not one of yours: it is left for that site's clinicians",
        );
    }
    await this.cases.command(ctx, caseId, command, extra ? (row) => extra(row) : undefined, {
      audit: detailRead(caseId, null),
    });
    return caseView(await this.cases.get(ctx, caseId));
  }

  /**
   * The consultation's outcome. NEWS2 of 5 or more, or a single parameter scoring 3, asks for an
   * urgent response: an outcome that is not urgent (advice and close, a booked appointment) needs
   * the clinician's reason, stored with the outcome in the same commit. Checked against the case as
   * the command is decided, so a score recorded meanwhile is not missed.
   */
  async recordOutcome(
    ctx: RequestContext,
    caseId: string,
    input: {
      outcome: ConsultationOutcome;
      ambulanceCategory?: 1 | 2 | 3 | 4;
      news2Reason?: string;
      homeVisit?: { withinHours: number; reason: string };
    },
  ) {
    return this.commandThenDetail(
      ctx,
      caseId,
      {
        type: 'record_outcome',
        clinicianId: ctx.userId,
        outcome: input.outcome,
        ...(input.ambulanceCategory ? { ambulanceCategory: input.ambulanceCategory } : {}),
        ...(input.outcome === 'home_visit' && input.homeVisit ? { homeVisit: input.homeVisit } : {}),
      },
      (row) => {
        const news2 = news2View(row);
        if (!news2 || !isUrgentNews2Band(news2.band) || !NON_URGENT_OUTCOMES.includes(input.outcome))
          return [];
        if (!input.news2Reason)
          throw new ValidationError([
            {
              path: 'body.news2Reason',
              message: `is required: ${describeNews2(news2)} asks for an urgent response, so say why this outcome is right for the patient`,
            },
          ]);
        return [
          {
            tenant: ctx.tenant,
            type: 'case.news2_outcome_confirmed',
            actor: actorOf(ctx),
            payload: {
              caseId,
              clinicianId: ctx.userId,
              outcome: input.outcome,
              news2: { total: news2.total, band: news2.band, present: news2.present },
              reason: input.news2Reason,
            },
          },
        ];
      },
    );
  }

  /** A welfare check on an escalated case: who made it, when, what it found. */
  async recordWelfareCheck(
    ctx: RequestContext,
    caseId: string,
    input: {
      checkedBy: WelfareChecker;
      /** Defaults to now. */
      checkedAt?: string | undefined;
      outcome: WelfareCheckOutcome;
      details?: string;
    },
  ) {
    const now = this.cases.nowMs();
    // A minute's grace for a clock on the user's machine a little ahead of the node's.
    if (input.checkedAt && Date.parse(input.checkedAt) > now + 60_000)
      throw new ValidationError([{ path: 'body.checkedAt', message: 'must not be in the future' }]);
    return this.commandThenDetail(ctx, caseId, {
      type: 'record_welfare_check',
      clinicianId: ctx.userId,
      checkedBy: input.checkedBy,
      checkedAt: input.checkedAt ?? new Date(now).toISOString(),
      outcome: input.outcome,
      ...(input.details ? { details: input.details } : {}),
    });
  }

  /**
   * A started pathway's age range, for identifying a patient after triage started. A pathway no
   * longer in the pack (a case older than a pack update) has no range to check against.
   */
  private pathwayAges(pathwayId: string): PathwayAges | null | undefined {
    try {
      return this.triage.protocol(pathwayId).content.ageYears;
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  /**
   * Identifies the case's patient. A case's patient is never replaced silently: identifying the
   * same patient again stores nothing, and another patient is taken only as a correction that names
   * the patient it replaces (the one the case has now, compared inside the commit) with a reason.
   * A patient outside the age range of a pathway already started is refused: identifying them
   * afterwards would walk them through triage written for another age group (H14 by the back door).
   * A closed or abandoned case keeps its patient: its Post Event Message was decided at the close.
   */
  async identify(ctx: RequestContext, caseId: string, input: IdentifyPatientInput): Promise<void> {
    const { patientId, replacing, reason } = input;
    const row = await this.cases.get(ctx, caseId);
    if ((TERMINAL_STATUSES as readonly string[]).includes(row.status))
      throw new ConflictError(
        `the case is ${row.status}: its patient can no longer be set or changed (the Post Event Message was decided at the close)`,
      );
    const current = row.patient_id;
    if (current === patientId) return;
    if (current !== null && replacing === undefined)
      throw new ConflictError(
        `this case already has a patient (patient ${current}): to correct it, send replacing (that patient's id) and a reason`,
      );
    if (current === null && replacing !== undefined)
      throw new ValidationError([
        { path: 'body.replacing', message: 'must be left out: the case has no patient yet' },
      ]);
    if (current !== null && replacing !== current)
      throw new ConflictError(
        "the case's patient is no longer the one you are replacing: reload the case and check who it is for",
      );
    if (replacing !== undefined && reason === undefined)
      throw new ValidationError([
        {
          path: 'body.reason',
          message: 'is required to correct the patient: say why (at least 10 characters)',
        },
      ]);
    // Read for checks only; `read` below is the audited view of the record.
    const facts = await this.patients.identityFacts(ctx.tenant, patientId);
    if (facts === null)
      throw new ValidationError([{ path: 'body.patientId', message: 'is not a patient of your provider' }]);
    const dob = facts.dateOfBirth;
    // A namesake who has died is an easy wrong pick; a call about someone who has just died is
    // real. Either way it is a decision the adviser makes knowingly, never by a single click.
    if (facts.deceasedAt !== null && input.deceasedConfirmed !== true)
      throw new ValidationError([
        {
          path: 'body.deceasedConfirmed',
          message:
            'must be true to identify this patient: their record says they have died; confirm with the caller that the call is about them',
        },
      ]);
    if (row.pathway_id) {
      const why = pathwayNotForAge(
        this.pathwayAges(row.pathway_id),
        ageInYears(dob, new Date(Number(row.received_at)).toISOString()),
      );
      if (why)
        throw new ValidationError([
          {
            path: 'body.patientId',
            message: `cannot be this case's patient: triage has started on a pathway not for them (${why})`,
          },
        ]);
    }
    // Reading the record is what identifies the patient: audited by the patient service (and
    // refused outside the caller's sites without break-glass).
    await this.patients.read(ctx, patientId);
    await this.cases.appendFacts(
      ctx,
      caseId,
      [
        {
          tenant: ctx.tenant,
          type: 'case.patient_identified',
          actor: actorOf(ctx),
          payload: {
            caseId,
            patientId,
            ...(replacing !== undefined ? { replaces: { patientId: replacing, reason: reason! } } : {}),
          },
        },
      ],
      // Compared inside the commit: if the case moved on (another adviser identified someone
      // meanwhile), this is refused instead of winning silently.
      Number(row.version),
    );
  }

  async requireClinician(ctx: RequestContext, userId: string): Promise<void> {
    const user = await this.accounts.get(ctx.tenant, userId);
    if (!user || user.disabled || !hasPermission(user.roles, 'queue.work')) {
      throw new ValidationError([
        { path: 'body.toClinicianId', message: 'is not an active clinician of your provider' },
      ]);
    }
  }

  /** Consultation notes by the clinician holding the case, with NEWS2 computed from the observations. */
  async recordConsultation(ctx: RequestContext, caseId: string, input: ConsultationInput) {
    const row = await this.cases.get(ctx, caseId);
    const state = JSON.parse(row.state) as CaseState;
    if (state.status !== 'in_consultation') throw new ForbiddenError('start the consultation first');
    if (state.claimantId !== ctx.userId) throw new ForbiddenError('another clinician holds this case');
    // NEWS2 is for adults who are not pregnant: the age from the identified patient's date of birth
    // at the call's time, else the age given at the call.
    const dob = row.patient_id ? await this.patients.dateOfBirth(ctx.tenant, row.patient_id) : null;
    const ageYears = dob
      ? ageInYears(dob, new Date(Number(row.received_at)).toISOString())
      : (input.statedAgeYears ?? null);
    const notApplicable = input.observations
      ? news2NotApplicable({ ageYears, pregnancy: input.pregnancy })
      : null;
    const news2 = input.observations && !notApplicable ? scoreNews2(input.observations) : null;
    await this.cases.appendFacts(ctx, caseId, [
      {
        tenant: ctx.tenant,
        type: 'case.consultation_recorded',
        actor: actorOf(ctx),
        payload: {
          caseId,
          clinicianId: ctx.userId,
          ...stripUndefined(input),
          ...(news2
            ? {
                news2: {
                  total: news2.total,
                  band: news2.band,
                  complete: news2.complete,
                  present: news2.present,
                },
              }
            : {}),
          ...(notApplicable ? { news2NotApplicable: notApplicable.reason } : {}),
        },
      },
    ]);
    return { news2, news2NotApplicable: notApplicable };
  }
}

function detailRead(caseId: string, record: CaseRecordView | null): AccessFields {
  const shown = record
    ? ['triagePath', 'timeline', record.withheld.includes('consultations') ? [] : ['consultations']].flat()
    : [];
  return {
    action: 'read',
    resourceType: 'case',
    resourceId: caseId,
    breakGlass: false,
    fields: ['caller', 'patient', 'triage', 'disposition', 'consultation', ...shown],
  };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function caseView(row: CasesTable) {
  const state = JSON.parse(row.state) as CaseState;
  return {
    caseId: row.case_id,
    siteId: row.site_id,
    status: state.status,
    receivedAt: new Date(Number(row.received_at)).toISOString(),
    caller: JSON.parse(row.caller) as unknown,
    patientId: row.patient_id,
    location: row.location,
    presentingComplaint: row.complaint,
    triage: row.pathway_id
      ? {
          pathwayId: row.pathway_id,
          pathwayVersion: row.pathway_version,
          answers: JSON.parse(row.answers) as TriageAnswerRecord[],
        }
      : null,
    disposition: row.disposition_kind
      ? {
          kind: row.disposition_kind,
          dxCode: row.dx_code,
          label: row.disposition_label,
          skillSet: row.skill_set,
          timeframeMinutes: row.timeframe_minutes === null ? null : Number(row.timeframe_minutes),
          ambulanceCategory: row.ambulance_category === null ? null : Number(row.ambulance_category),
          careAdvice: JSON.parse(row.care_advice) as string[],
          ...(Number(row.sample) === 1
            ? { sample: true, label: row.disposition_label, notice: SAMPLE_LABEL }
            : {}),
        }
      : null,
    deadline: row.deadline_at === null ? null : new Date(Number(row.deadline_at)).toISOString(),
    claimedBy: state.claimantId,
    escalated: state.escalated,
    callbackAttempts: state.callbackAttempts,
    failedCallbackAttempts: state.failedCallbackAttempts,
    news2: news2View(row),
    news2NotApplicable: news2NotApplicableView(row),
    welfareChecks: JSON.parse(row.welfare_checks) as WelfareCheckRecord[],
    outcomes: state.outcomes,
    // Collisions from a merge wait for a shift manager's decision: the case says so wherever it is shown.
    openReconciliationItems: Number(row.open_reconciliation),
  };
}

/** NEWS2 as the queue and the case show it: a partial score has no total and says how many of 7. */
export interface News2View {
  /** Null unless all seven parameters were scored. */
  total: number | null;
  /** Null when unknown (a partial set not yet above low). */
  band: string | null;
  complete: boolean;
  present: number;
  of: number;
}

export function news2View(row: CasesTable): News2View | null {
  if (row.news2_present === null || row.news2_not_applicable !== null) return null;
  const present = Number(row.news2_present);
  return {
    total: row.news2_total === null ? null : Number(row.news2_total),
    band: row.news2_band,
    complete: present === NEWS2_PARAMETER_COUNT,
    present,
    of: NEWS2_PARAMETER_COUNT,
  };
}

export function news2NotApplicableView(
  row: CasesTable,
): { reason: News2NotApplicableReason; message: string } | null {
  const reason = row.news2_not_applicable as News2NotApplicableReason | null;
  return reason ? { reason, message: news2NotApplicableMessage(reason) } : null;
}

/** "NEWS2 7 (high)", or "a partial NEWS2 (3 of 7 parameters) already at medium". */
function describeNews2(n: News2View): string {
  const band = (n.band ?? 'unknown').replace('_', '-');
  return n.total !== null
    ? `NEWS2 ${n.total} (${band})`
    : `a partial NEWS2 (${n.present} of ${n.of} parameters) already at ${band}`;
}

/** A welfare check as the case shows it (from `case.welfare_check_recorded`). */
export interface WelfareCheckRecord {
  recordedBy: string;
  recordedAt: string;
  checkedBy: string;
  checkedAt: string;
  outcome: string;
  details?: string;
}
