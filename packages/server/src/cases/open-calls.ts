import { caseReference, WITH_ADVISER_STATUSES, type Clock } from '@holdfast/core';
import type { AccountsService } from '../accounts/service.ts';
import type { Auditor } from '../audit/auditor.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { Store } from '../store/store.ts';
import { casesDb, type CasesTable } from './projection.ts';

/** A call with no activity for this long is listed for the shift manager (default 20 minutes). */
export const DEFAULT_CALL_OPEN_TOO_LONG_MINUTES = 20;

/** One unfinished call as its adviser sees it in "My open calls": enough to know which call it is. */
export interface MyOpenCall {
  caseId: string;
  caseRef: string;
  siteId: string;
  status: string;
  receivedAt: string;
  /** The case's latest recorded event (an answer, a patient identified, a proposal). */
  lastActivityAt: string;
  callerName: string;
  presentingComplaint: string;
}

/** A call open too long, for the shift manager: who has it and for how long; no patient details. */
export interface CallOpenTooLong {
  caseId: string;
  caseRef: string;
  siteId: string;
  status: string;
  receivedAt: string;
  lastActivityAt: string;
  minutesSinceActivity: number;
  adviserId: string | null;
  adviserName: string | null;
}

/** Wall-clock milliseconds of the row's last event, from its hybrid logical clock. */
function lastActivityMs(row: Pick<CasesTable, 'updated_hlc'>): number {
  return Number(row.updated_hlc.slice(0, 15));
}

/**
 * Calls still with advisers (not yet triaged, being triaged, a proposed disposition not confirmed):
 * each adviser's own, to resume; and those left without activity too long, for the shift manager. A
 * call never drops out of sight: it is on its adviser's list until it is finished or ended with a
 * reason, and on the manager's once it has sat idle.
 */
export class OpenCalls {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly auditor: Auditor,
    private readonly accounts: AccountsService,
    private readonly options: { tenantFilter: boolean; tooLongMinutes: number },
  ) {}

  private async withAdvisers(tenant: string, openedBy?: string): Promise<CasesTable[]> {
    return this.store.withTenant(tenant, async (trx) => {
      let q = casesDb(trx)
        .selectFrom('cases')
        .selectAll()
        .where('status', 'in', [...WITH_ADVISER_STATUSES]);
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      if (openedBy !== undefined) q = q.where('opened_by', '=', openedBy);
      return q.orderBy('received_at').orderBy('case_id').limit(1000).execute();
    });
  }

  /** The signed-in user's own unfinished calls, oldest first (audited: it shows callers' words). */
  async mine(ctx: RequestContext): Promise<{ calls: MyOpenCall[] }> {
    const rows = await this.withAdvisers(ctx.tenant, actorOf(ctx));
    await this.auditor.access(ctx, {
      action: 'search',
      resourceType: 'case',
      breakGlass: false,
      fields: ['my_open_calls'],
    });
    return {
      calls: rows.map((row) => ({
        caseId: row.case_id,
        caseRef: caseReference(row.case_id),
        siteId: row.site_id,
        status: row.status,
        receivedAt: new Date(Number(row.received_at)).toISOString(),
        lastActivityAt: new Date(lastActivityMs(row)).toISOString(),
        callerName: (JSON.parse(row.caller) as { name: string }).name,
        presentingComplaint: row.complaint,
      })),
    };
  }

  /** Calls with advisers with no activity for the configured time, longest idle first. */
  async tooLong(tenant: string): Promise<{ thresholdMinutes: number; calls: CallOpenTooLong[] }> {
    const now = this.clock.nowMs();
    const limitMs = this.options.tooLongMinutes * 60_000;
    const rows = (await this.withAdvisers(tenant)).filter((row) => now - lastActivityMs(row) >= limitMs);
    const adviserIds = rows
      .map((row) => row.opened_by)
      .filter((a): a is string => a !== null && a.startsWith('user:'))
      .map((a) => a.slice(5));
    const names = await this.accounts.displayNames(tenant, [...new Set(adviserIds)]);
    const calls = rows.map((row) => {
      const adviserId = row.opened_by?.startsWith('user:') ? row.opened_by.slice(5) : null;
      return {
        caseId: row.case_id,
        caseRef: caseReference(row.case_id),
        siteId: row.site_id,
        status: row.status,
        receivedAt: new Date(Number(row.received_at)).toISOString(),
        lastActivityAt: new Date(lastActivityMs(row)).toISOString(),
        minutesSinceActivity: Math.floor((now - lastActivityMs(row)) / 60_000),
        adviserId,
        adviserName: adviserId ? (names.get(adviserId) ?? null) : null,
      };
    });
    calls.sort((a, b) => a.lastActivityAt.localeCompare(b.lastActivityAt));
    return { thresholdMinutes: this.options.tooLongMinutes, calls };
  }

  /** How many calls are open too long (the dashboard's figure). */
  async tooLongCount(tenant: string): Promise<number> {
    return (await this.tooLong(tenant)).calls.length;
  }
}
