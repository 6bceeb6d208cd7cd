import {
  ConflictError,
  DISPOSITION_KINDS,
  NotFoundError,
  ValidationError,
  type CaseCommand,
} from '@holdfast/core';
import { ageInYears, pathwayNotForAge } from '@holdfast/core/triage/eligibility';
import {
  answer,
  changeAnswer,
  startTriage,
  type TriageState,
  type WalkResult,
} from '@holdfast/core/triage/engine';
import type { AnswerValue } from '@holdfast/core/triage/graph';
import type { TriageProtocol } from '@holdfast/core/triage/pack';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { EventDraft } from '../ledger/ledger.ts';
import type { LoadedPack } from '../triage/packs.ts';
import type { CasesTable, TriageAnswerRecord } from './projection.ts';
import type { CaseService } from './service.ts';

/**
 * Runs triage on a case: the pure engine decides what is asked and where it ends; every answer is
 * a ledger event. Reaching a disposition only proposes it: nothing is acted on until the adviser
 * confirms it (one mis-keyed answer must never dispatch an ambulance). Changing an answer before
 * that withdraws the proposal; after it, a change is a recorded re-triage.
 */
export class TriageService {
  constructor(
    private readonly cases: CaseService,
    readonly pack: LoadedPack,
    /** The identified patient's date of birth (YYYY-MM-DD), for the pathways' age ranges. */
    private readonly dateOfBirth: (tenant: string, patientId: string) => Promise<string | null> = async () =>
      null,
  ) {}

  pathways() {
    return [...this.pack.protocols.values()].map((p) => ({ ...p.content }));
  }

  protocol(pathwayId: string): TriageProtocol {
    const protocol = this.pack.protocols.get(pathwayId);
    if (!protocol) throw new NotFoundError('pathway');
    return protocol;
  }

  /** The questions asked and the answers given, in order (empty before triage started). */
  answeredPath(row: CasesTable): { question: string; answer: string }[] {
    const state = this.stateOf(row);
    return state ? state.result.path.map((p) => ({ question: p.question, answer: p.answer })) : [];
  }

  /** The triage state of a case, replayed from its stored answers. */
  stateOf(row: CasesTable): TriageState | null {
    if (!row.pathway_id) return null;
    let state = startTriage(this.protocol(row.pathway_id));
    for (const a of JSON.parse(row.answers) as TriageAnswerRecord[]) {
      state = a.supersedes ? changeAnswer(state, a.nodeId, a.value) : answer(state, a.nodeId, a.value);
    }
    return state;
  }

  async start(ctx: RequestContext, caseId: string, pathwayId: string): Promise<WalkResult> {
    const protocol = this.protocol(pathwayId);
    // A pathway written for another age group asks the wrong questions: not offered for the
    // identified patient (an unidentified one is the adviser's judgement, helped by the list).
    const row = await this.cases.get(ctx, caseId);
    const dob = row.patient_id ? await this.dateOfBirth(ctx.tenant, row.patient_id) : null;
    if (dob) {
      const why = pathwayNotForAge(
        protocol.content.ageYears,
        ageInYears(dob, new Date(Number(row.received_at)).toISOString()),
      );
      if (why)
        throw new ValidationError([
          { path: 'body.pathwayId', message: `is not offered for this patient: ${why}` },
        ]);
    }
    await this.cases.command(ctx, caseId, { type: 'start_triage' }, () => [
      {
        tenant: ctx.tenant,
        type: 'case.triage_pathway_selected',
        actor: actorOf(ctx),
        payload: { caseId, pathwayId, pathwayVersion: protocol.content.pathwayVersion },
      },
    ]);
    return startTriage(protocol).result;
  }

  async current(ctx: RequestContext, caseId: string): Promise<WalkResult | null> {
    return this.stateOf(await this.cases.get(ctx, caseId))?.result ?? null;
  }

  /** Answers (or, with `change`, changes an earlier answer); a reached disposition is acted on at once. */
  async answer(
    ctx: RequestContext,
    caseId: string,
    nodeId: string,
    value: AnswerValue,
    change: boolean,
  ): Promise<WalkResult> {
    let result: WalkResult | null = null;
    const row = await this.cases.get(ctx, caseId);
    const before = this.stateOf(row);
    if (!before) throw new NotFoundError('triage for this case (start it first)');
    const after = change ? changeAnswer(before, nodeId, value) : answer(before, nodeId, value);
    result = after.result;
    const entry = after.history[after.history.length - 1]!;
    const facts: EventDraft[] = [
      {
        tenant: ctx.tenant,
        type: 'case.triage_answered',
        actor: actorOf(ctx),
        payload: {
          caseId,
          pathwayId: row.pathway_id!,
          pathwayVersion: row.pathway_version!,
          nodeId,
          value: entry.value,
          supersedes: change,
        },
      },
    ];
    const commands: CaseCommand[] = [];
    // A proposed disposition the adviser has not confirmed gives way to the changed answer.
    if (change && row.status === 'disposition_reached') commands.push({ type: 'withdraw_disposition' });
    if (result.status === 'disposition') {
      const d = result.disposition;
      facts.push({
        tenant: ctx.tenant,
        type: 'case.disposition_details',
        actor: actorOf(ctx),
        payload: {
          caseId,
          pathwayId: row.pathway_id!,
          dxCode: d.dxCode,
          label: d.label,
          skillSet: d.skillSet,
          timeframeMinutes: d.timeframeMinutes ?? 0,
          ...(d.ambulanceCategory ? { ambulanceCategory: d.ambulanceCategory } : {}),
          careAdvice: d.careAdvice,
          sample: result.content.sample,
        },
      });
      commands.push(reachDisposition(d.kind, d.timeframeMinutes, d.dxCode));
    }
    if (commands.length > 0) {
      await this.cases.command(ctx, caseId, commands, () => facts);
    } else {
      await this.cases.appendFacts(ctx, caseId, facts, Number(row.version));
    }
    return result;
  }

  /**
   * The adviser confirms the proposed disposition they were shown (`dxCode`): only now is it acted on
   * (an ambulance requested and its request queued to the ambulance service, the case queued for a
   * clinician, a referral, or advice given and the case closed), in one commit.
   */
  async confirm(ctx: RequestContext, caseId: string, dxCode: string): Promise<WalkResult> {
    const row = await this.cases.get(ctx, caseId);
    const state = this.stateOf(row);
    if (row.status !== 'disposition_reached' || !state || state.result.status !== 'disposition') {
      throw new ConflictError(
        row.status === 'in_triage' || row.status === 'answered'
          ? 'there is no disposition to confirm yet: finish triage first'
          : 'the disposition was confirmed already',
      );
    }
    const result = state.result;
    const d = result.disposition;
    if (d.dxCode !== dxCode)
      throw new ConflictError(
        `the disposition is now ${d.dxCode} (${d.label}), not ${dxCode}: an answer changed; review it and confirm again`,
      );
    const category = (d.ambulanceCategory ?? 2) as 1 | 2 | 3 | 4;
    const commands = actOn(d.kind, category);
    const extra: EventDraft[] = [];
    if (d.kind === 'self_care')
      extra.push({
        tenant: ctx.tenant,
        type: 'case.advice_given',
        actor: actorOf(ctx),
        payload: { caseId, advice: d.careAdvice },
      });
    // An ambulance disposition's request to the ambulance service is queued by the cases' ambulance
    // hook in the same commit (the same path as a clinician's upgrade).
    await this.cases.command(ctx, caseId, commands, () => extra);
    return result;
  }
}

/** Proposing a disposition: recorded on the case, acted on only when the adviser confirms it. */
function reachDisposition(kind: string, timeframeMinutes: number | null, code: string): CaseCommand {
  const timeframe = timeframeMinutes ?? undefined;
  // The lifecycle event carries a Pathways-style Dx code only; sample codes stay in the details fact.
  const dxCode = /^Dx\d{2,4}$/.test(code) ? code : undefined;
  // Every kind the lifecycle knows, dental and pharmacy included (they were recorded as 'other',
  // which hid dental dispositions from IUC ADC E12).
  const known: readonly string[] = DISPOSITION_KINDS;
  return {
    type: 'reach_disposition',
    kind: (known.includes(kind) ? kind : 'other') as Extract<
      CaseCommand,
      { type: 'reach_disposition' }
    >['kind'],
    ...(dxCode ? { dxCode } : {}),
    ...(timeframe && kind !== 'self_care' ? { timeframeMinutes: timeframe } : {}),
  };
}

/**
 * Acting on a confirmed disposition: ambulance → an ambulance request with its category; ED/UTC (and
 * other services) → a referral to be sent; speak to / contact primary care → the CAS queue; self-care
 * → the case closed (the advice is recorded beside it).
 */
function actOn(kind: string, category: 1 | 2 | 3 | 4): CaseCommand[] {
  switch (kind) {
    case 'ambulance':
      return [{ type: 'request_ambulance', category }];
    case 'speak_to_primary_care':
    case 'contact_primary_care':
      return [{ type: 'queue_for_clinician' }];
    case 'self_care':
      return [{ type: 'close' }];
    default:
      return [{ type: 'refer' }];
  }
}
