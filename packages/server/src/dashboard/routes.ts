import { hasPermission, ValidationError, type Clock } from '@holdfast/core';
import { queueTiming } from '@holdfast/core/queue/priority';
import { z } from 'zod';
import type { AccountsService } from '../accounts/service.ts';
import { casesDb } from '../cases/projection.ts';
import type { RequestContext } from '../http/context.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { Store } from '../store/store.ts';

/** Statuses of a call still with the health adviser: answered, being triaged, disposition not acted on. */
const WITH_ADVISER = ['call_received', 'answered', 'in_triage', 'disposition_reached'] as const;
/** Statuses of a case in the CAS queue, waiting or held by a clinician. */
const IN_QUEUE = ['queued', 'claimed', 'in_consultation'] as const;

export interface SiteSummary {
  siteId: string;
  name: string;
  callsWaiting: number;
  queued: number;
  withClinician: number;
  atRisk: number;
  breached: number;
  escalated: number;
}

/**
 * Screens' helpers for the browser app: the provider's sites by name (every signed-in user picks a
 * site for a call or a filter; names are not patient data), and the shift manager's dashboard —
 * counts per site and the escalated cases, without patient details.
 */
export function dashboardRoutes(deps: {
  store: Store;
  accounts: AccountsService;
  clock: Clock;
  tenantFilter: boolean;
  /**
   * This node's lasting sync alarms for the tenant (sync/status.ts): a shift manager must see at
   * once when the hub will take none of this server's work.
   */
  syncAlarms?: (
    tenant: string,
  ) => Promise<{ kind: string; raisedAt: string; message: string; advice: string }[]>;
  /** How many messages to other systems failed or are overdue (null: not for this user to see). */
  messagesNeedingAttention?: (ctx: RequestContext) => Promise<number | null>;
  /** Referral alerts not yet acknowledged (a refusal, a did-not-attend with safeguarding); null: not for this user. */
  referralAlerts?: (ctx: RequestContext) => Promise<number | null>;
}): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/sites',
      summary: "Your provider's sites by name, yours marked, to choose a site for a call or a filter",
      access: { permission: 'session.self' },
      async handler({ ctx }) {
        const sites = await deps.accounts.sites(ctx.tenant);
        return { sites: sites.map((s) => ({ ...s, mine: ctx.siteIds.includes(s.siteId) })) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/dashboard',
      summary:
        'Shift dashboard: per site, calls with advisers, cases queued and with clinicians, at risk, breached and escalated; the escalated cases; this server’s sync alarms',
      access: { permission: 'reports.read' },
      query: z.strictObject({ siteId: z.string().uuid('must be a site id').optional() }),
      async handler({ ctx, query }) {
        const now = deps.clock.nowMs();
        const [sites, rows] = await Promise.all([
          deps.accounts.sites(ctx.tenant),
          deps.store.withTenant(ctx.tenant, async (trx) => {
            let q = casesDb(trx)
              .selectFrom('cases')
              .select([
                'case_id',
                'site_id',
                'status',
                'received_at',
                'timeframe_minutes',
                'escalated',
                'failed_callbacks',
                'disposition_label',
                'claimed_by',
              ])
              .where('status', 'in', [...WITH_ADVISER, ...IN_QUEUE]);
            if (deps.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
            if (query.siteId) q = q.where('site_id', '=', query.siteId);
            return q.execute();
          }),
        ]);
        // Another provider's site is refused by name, not answered with an empty dashboard.
        if (query.siteId && !sites.some((s) => s.siteId === query.siteId))
          throw new ValidationError([{ path: 'query.siteId', message: 'is not a site of your provider' }]);
        const bySite = new Map<string, SiteSummary>();
        for (const s of sites)
          if (!query.siteId || s.siteId === query.siteId)
            bySite.set(s.siteId, {
              siteId: s.siteId,
              name: s.name,
              callsWaiting: 0,
              queued: 0,
              withClinician: 0,
              atRisk: 0,
              breached: 0,
              escalated: 0,
            });
        const escalations = [];
        for (const row of rows) {
          const site = bySite.get(row.site_id);
          if (!site) continue;
          if ((WITH_ADVISER as readonly string[]).includes(row.status)) {
            site.callsWaiting++;
            continue;
          }
          if (row.status === 'queued') site.queued++;
          else site.withClinician++;
          const timing = queueTiming(
            {
              callReceivedAtMs: Number(row.received_at),
              timeframeMinutes: Math.max(1, Number(row.timeframe_minutes ?? 1)),
            },
            now,
          );
          if (timing.status === 'at_risk') site.atRisk++;
          if (timing.status === 'breached') site.breached++;
          if (Number(row.escalated) === 1) {
            site.escalated++;
            escalations.push({
              caseId: row.case_id,
              siteId: row.site_id,
              status: row.status,
              failedCallbackAttempts: Number(row.failed_callbacks),
              disposition: row.disposition_label,
              claimed: row.claimed_by !== null,
              deadline: new Date(timing.deadlineMs).toISOString(),
              timing: timing.status,
            });
          }
        }
        escalations.sort((a, b) => a.deadline.localeCompare(b.deadline));
        const syncAlarms = (await deps.syncAlarms?.(ctx.tenant)) ?? [];
        const messagesNeedingAttention = (await deps.messagesNeedingAttention?.(ctx)) ?? null;
        const referralAlerts = (await deps.referralAlerts?.(ctx)) ?? null;
        return {
          now: new Date(now).toISOString(),
          syncAlarms,
          messagesNeedingAttention,
          referralAlerts,
          sites: [...bySite.values()],
          escalations,
          canOpenCases: hasPermission(ctx.roles, 'cases.read'),
        };
      },
    }),
  ];
}
