import { ForbiddenError, hasPermission, type CaseState, type Clock } from '@holdfast/core';
import { orderQueue, queueTiming, formatLondonDateTime } from '@holdfast/core/queue/priority';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../http/context.ts';
import type { Store } from '../store/store.ts';
import { casesDb, type CasesTable } from './projection.ts';
import type { QueuePatientFacts } from '../patients/service.ts';
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
/** What a queue row shows of each case's patient (the patients module's `queueFacts`). */
export type QueuePatients = (
  ctx: Pick<RequestContext, 'tenant' | 'siteIds'>,
  patientIds: readonly string[],
) => Promise<Map<string, QueuePatientFacts>>;
/** Display names of the clinicians holding cases (the accounts module's). */
export type HolderNames = (tenant: string, userIds: readonly string[]) => Promise<Map<string, string>>;

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
    /**
     * Who the patient is (name, age, sex) and their flags: special notes by kind (or withheld),
     * repeat caller, died (a relative may be the one to call back).
     */
    private readonly patients: QueuePatients = async () => new Map(),
    /** "Held by Dr A Khan": a clinician looking for work needs to know whom to ask. */
    private readonly holders: HolderNames = async () => new Map(),
  ) {}

  /**
   * The rota (C12): per site, the clinicians on duty there now, for the sites whose rota covers now
   * (a site with no clinical shift now is absent, and its queue behaves as before rotas).
   */
  private onDuty: ((tenant: string, siteIds: readonly string[]) => Promise<Map<string, Set<string>>>) | null =
    null;

  setRota(onDuty: (tenant: string, siteIds: readonly string[]) => Promise<Map<string, Set<string>>>): void {
    this.onDuty = onDuty;
  }

  async list(ctx: RequestContext, filters: QueueFilters) {
    const sites = queueSitesOf(ctx);
    if (filters.siteId && sites !== 'all' && !sites.includes(filters.siteId))
      throw new ForbiddenError(
        'that site is not one of your sites: the queue shows the work of your own sites',
      );
    let rows = await this.store.withTenant(ctx.tenant, async (trx) => {
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
    // Only clinicians on duty are offered work where a rota covers the site now: others see the
    // cases they hold, not the waiting ones (shift managers, who take no work, see everything).
    let notOnDuty: string[] = [];
    if (this.onDuty && hasPermission(ctx.roles, 'queue.work')) {
      const rota = await this.onDuty(ctx.tenant, [...new Set(rows.map((r) => r.site_id))]);
      notOnDuty = [...rota].filter(([, users]) => !users.has(ctx.userId)).map(([siteId]) => siteId);
      if (notOnDuty.length > 0)
        rows = rows.filter((r) => r.claimed_by === ctx.userId || !notOnDuty.includes(r.site_id));
    }
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
      // The patient facts each row carries are named: an auditor sees what a queue read showed.
      fields: ['queue', 'patient.name', 'patient.age', 'patient.sex', 'patient.specialNoteKinds'],
    });
    const canSeeCaller = hasPermission(ctx.roles, 'cases.read');
    const marks = await this.marks(
      ctx.tenant,
      rows.map((r) => r.case_id),
    );
    const patients = await this.patients(ctx, [
      ...new Set(rows.map((r) => r.patient_id).filter((p): p is string => !!p)),
    ]);
    const holderIds = rows.map((r) => r.claimed_by).filter((id): id is string => !!id);
    const holders = await this.holders(ctx.tenant, [...new Set(holderIds)]);
    return {
      now: new Date(now).toISOString(),
      ...(notOnDuty.length > 0
        ? {
            rota: {
              notOnDutySiteIds: notOnDuty,
              notice:
                'you are not on duty on the rota now at some of your sites: their waiting cases are offered to the clinicians on duty',
            },
          }
        : {}),
      cases: ordered.map(({ row, ...entry }) => {
        const timing = queueTiming(entry, now);
        const state = JSON.parse(row.state) as CaseState;
        const caller = JSON.parse(row.caller) as { name: string; callbackNumber: string };
        const deceasedAt = row.patient_id ? patients.get(row.patient_id)?.deceasedAt : null;
        return {
          caseId: row.case_id,
          siteId: row.site_id,
          status: state.status,
          claimedBy: state.claimantId,
          claimedByName: state.claimantId
            ? (holders.get(state.claimantId) ?? 'a former member of staff')
            : null,
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
          patient: patientOfRow(row.patient_id, patients),
          ...(deceasedAt ? { patientDeceasedAt: deceasedAt } : {}),
        };
      }),
    };
  }
}

/** A row's patient: null when none is identified yet (the row then shows the caller). */
function patientOfRow(
  patientId: string | null,
  patients: Map<string, QueuePatientFacts>,
): (Omit<QueuePatientFacts, 'deceasedAt'> & { patientId: string }) | null {
  const facts = patientId ? patients.get(patientId) : undefined;
  if (!patientId || !facts) return null;
  const { deceasedAt: _died, ...shown } = facts;
  return { patientId, ...shown };
}
