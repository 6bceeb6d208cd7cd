import { ForbiddenError, hasPermission, type CaseState, type Clock } from '@holdfast/core';
import { orderQueue, queueTiming, formatLondonDateTime } from '@holdfast/core/queue/priority';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../http/context.ts';
import type { Store } from '../store/store.ts';
import { casesDb, type CasesTable } from './projection.ts';
import { queueSitesOf } from './sites.ts';
import { news2NotApplicableView, news2View, SAMPLE_LABEL } from './views.ts';

/** How a case that another system sent is marked on the queue (a 999 ambulance validation). */
export interface QueueMark {
  incidentReference: string;
  category: number;
  /** The deadline the sender asked for (or the default for the category). */
  deadline: string;
  deadlineFrom: string;
  patientMatch: string;
}
export type QueueMarks = (tenant: string, caseIds: readonly string[]) => Promise<Map<string, QueueMark>>;
/** The date of death of those of these patients who have died (the patients module's). */
export type DeceasedPatients = (
  tenant: string,
  patientIds: readonly string[],
) => Promise<Map<string, string>>;

export interface QueueFilters {
  siteId?: string;
  skillSet?: string;
  mine?: boolean;
}

/**
 * Lower is more urgent; it breaks ties between equal deadlines. Escalated (welfare check) first, then
 * NEWS2 high, then medium or a single red 3, then cases whose risk is unknown (no score, a partial
 * score not yet above low, or NEWS2 not applicable), and last a complete score that is low: a score
 * from one observation must never be ranked as reassuring as all seven measured and normal.
 */
export function clinicalPriority(row: CasesTable): number {
  if (Number(row.escalated) === 1) return 0;
  if (row.news2_band === 'high') return 1;
  if (row.news2_band === 'medium' || row.news2_band === 'low_medium') return 2;
  if (row.news2_band === 'low' && row.news2_total !== null) return 4;
  return 3;
}

/**
 * The CAS queue: cases waiting for a clinician or held by one, ordered by deadline then clinical
 * priority, each on time, at risk (less than a fifth of its window left) or breached.
 */
export class QueueService {
  constructor(
    private readonly store: Store,
    private readonly auditor: Auditor,
    private readonly clock: Clock,
    /** Ambulance validation cases, marked with the 999 incident (the inbound module's). */
    private readonly marks: QueueMarks = async () => new Map(),
    /** A row says when its patient has died: a relative may be the one to call back. */
    private readonly deceased: DeceasedPatients = async () => new Map(),
  ) {}

  async list(ctx: RequestContext, filters: QueueFilters) {
    const sites = queueSitesOf(ctx);
    if (filters.siteId && sites !== 'all' && !sites.includes(filters.siteId))
      throw new ForbiddenError(
        'that site is not one of your sites: the queue shows the work of your own sites',
      );
    const rows = await this.store.withTenant(ctx.tenant, async (trx) => {
      let q = casesDb(trx)
        .selectFrom('cases')
        .selectAll()
        .where('tenant', '=', ctx.tenant)
        .where('status', 'in', ['queued', 'claimed', 'in_consultation']);
      if (filters.siteId) q = q.where('site_id', '=', filters.siteId);
      // A user works at their own sites: a user with no site sees no queue (an admin is warned
      // when creating one); working across sites is a permission of its own.
      else if (sites !== 'all') q = q.where('site_id', 'in', sites.length > 0 ? sites : ['']);
      if (filters.skillSet) q = q.where('skill_set', '=', filters.skillSet);
      if (filters.mine) q = q.where('claimed_by', '=', ctx.userId);
      return q.limit(5000).execute();
    });
    const now = this.clock.nowMs();
    const byId = new Map(rows.map((row) => [row.case_id, row]));
    const entries = rows.map((row) => ({
      caseId: row.case_id,
      callReceivedAtMs: Number(row.received_at),
      timeframeMinutes: Math.max(1, Number(row.timeframe_minutes ?? 1)),
      priority: clinicalPriority(row),
    }));
    const ordered = orderQueue(entries).map((entry) => ({ ...entry, row: byId.get(entry.caseId)! }));
    await this.auditor.access(ctx, {
      action: 'search',
      resourceType: 'case',
      breakGlass: false,
      fields: ['queue'],
    });
    const canSeeCaller = hasPermission(ctx.roles, 'cases.read');
    const marks = await this.marks(
      ctx.tenant,
      rows.map((r) => r.case_id),
    );
    const deaths = await this.deceased(ctx.tenant, [
      ...new Set(rows.map((r) => r.patient_id).filter((p): p is string => !!p)),
    ]);
    return {
      now: new Date(now).toISOString(),
      cases: ordered.map(({ row, ...entry }) => {
        const timing = queueTiming(entry, now);
        const state = JSON.parse(row.state) as CaseState;
        const caller = JSON.parse(row.caller) as { name: string; callbackNumber: string };
        return {
          caseId: row.case_id,
          siteId: row.site_id,
          status: state.status,
          claimedBy: state.claimantId,
          escalated: state.escalated,
          failedCallbackAttempts: state.failedCallbackAttempts,
          presentingComplaint: row.complaint,
          ...(canSeeCaller ? { callerName: caller.name, callbackNumber: caller.callbackNumber } : {}),
          disposition: {
            dxCode: row.dx_code,
            label: row.disposition_label,
            skillSet: row.skill_set,
            timeframeMinutes: entry.timeframeMinutes,
            ...(Number(row.sample) === 1 ? { notice: SAMPLE_LABEL } : {}),
          },
          receivedAt: new Date(entry.callReceivedAtMs).toISOString(),
          deadline: new Date(timing.deadlineMs).toISOString(),
          deadlineLondon: formatLondonDateTime(timing.deadlineMs),
          remainingSeconds: Math.round(timing.remainingMs / 1000),
          timing: timing.status,
          news2: news2View(row),
          news2NotApplicable: news2NotApplicableView(row),
          ambulanceValidation: marks.get(row.case_id) ?? null,
          ...(row.patient_id && deaths.has(row.patient_id)
            ? { patientDeceasedAt: deaths.get(row.patient_id)! }
            : {}),
        };
      }),
    };
  }
}
