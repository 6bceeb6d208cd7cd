import { NotFoundError, type CaseCommand } from '@holdfast/core';
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
 * a ledger event; reaching a disposition records it and acts on it in the same commit.
 */
export class TriageService {
  constructor(
    private readonly cases: CaseService,
    readonly pack: LoadedPack,
  ) {}

  pathways() {
    return [...this.pack.protocols.values()].map((p) => ({ ...p.content }));
  }

  protocol(pathwayId: string): TriageProtocol {
    const protocol = this.pack.protocols.get(pathwayId);
    if (!protocol) throw new NotFoundError('pathway');
    return protocol;
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
      commands.push(...actOn(d.kind, d.ambulanceCategory, d.timeframeMinutes, d.dxCode));
      if (d.kind === 'self_care')
        facts.push({
          tenant: ctx.tenant,
          type: 'case.advice_given',
          actor: actorOf(ctx),
          payload: { caseId, advice: d.careAdvice },
        });
    }
    if (commands.length > 0) {
      await this.cases.command(ctx, caseId, commands, () => facts);
    } else {
      await this.cases.appendFacts(ctx, caseId, facts, Number(row.version));
    }
    return result;
  }
}

/**
 * Acting on the disposition: ambulance → an ambulance request with its category; ED/UTC (and other
 * services) → a referral to be sent; speak to / contact primary care → the CAS queue; self-care →
 * advice recorded and the case closed.
 */
function actOn(
  kind: string,
  category: number | undefined,
  timeframeMinutes: number | null,
  code: string,
): CaseCommand[] {
  const timeframe = timeframeMinutes ?? undefined;
  // The lifecycle event carries a Pathways-style Dx code only; sample codes stay in the details fact.
  const dxCode = /^Dx\d{2,4}$/.test(code) ? code : undefined;
  switch (kind) {
    case 'ambulance':
      return [
        {
          type: 'reach_disposition',
          kind: 'ambulance',
          ...(dxCode ? { dxCode } : {}),
          ...(timeframe ? { timeframeMinutes: timeframe } : {}),
        },
        { type: 'request_ambulance', category: (category ?? 2) as 1 | 2 | 3 | 4 },
      ];
    case 'ed_utc':
      return [
        {
          type: 'reach_disposition',
          kind: 'ed_utc',
          ...(dxCode ? { dxCode } : {}),
          ...(timeframe ? { timeframeMinutes: timeframe } : {}),
        },
        { type: 'refer' },
      ];
    case 'speak_to_primary_care':
    case 'contact_primary_care':
      return [
        {
          type: 'reach_disposition',
          kind,
          ...(dxCode ? { dxCode } : {}),
          ...(timeframe ? { timeframeMinutes: timeframe } : {}),
        },
        { type: 'queue_for_clinician' },
      ];
    case 'self_care':
      return [
        { type: 'reach_disposition', kind: 'self_care', ...(dxCode ? { dxCode } : {}) },
        { type: 'close' },
      ];
    default:
      return [
        {
          type: 'reach_disposition',
          kind: 'other',
          ...(dxCode ? { dxCode } : {}),
          ...(timeframe ? { timeframeMinutes: timeframe } : {}),
        },
        { type: 'refer' },
      ];
  }
}
