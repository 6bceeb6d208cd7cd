import { hasPermission, ValidationError, type Clock } from '@holdfast/core';
import { queueTiming } from '@holdfast/core/queue/priority';
import { z } from 'zod';
import type { AccountsService } from '../accounts/service.ts';
import { breachedDeadlines, casesInStatuses, receivedTimes } from '../cases/reads.ts';
import type { RequestContext } from '../http/context.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { Store } from '../store/store.ts';
import { addDays, compareDays, countPerHour, hoursOfLondonDay, londonDate, type DayHour } from './hourly.ts';

/** Statuses of a call still with the health adviser: answered, being triaged, disposition not acted on. */
const WITH_ADVISER = ['call_received', 'answered', 'in_triage', 'disposition_reached'] as const;
/** The lists behind the case figures. */
const CASE_LISTS = ['adviser', 'queue', 'clinician', 'at_risk', 'breached', 'escalated'] as const;
/** Statuses of a case in the CAS queue, waiting or held by a clinician. */
const IN_QUEUE = ['queued', 'claimed', 'in_consultation'] as const;

/**
 * One open case behind the dashboard's figures (which figure it counts in follows from its status,
 * timing and escalation): no patient or caller details, only what a shift manager acts on.
 */
export interface DashboardCase {
  caseId: string;
  siteId: string;
  status: string;
  /** 'adviser' while the call is with a health adviser; 'queue' or 'clinician' once in the CAS queue. */
  stage: 'adviser' | 'queue' | 'clinician';
  receivedAt: string;
  deadline: string | null;
  timing: 'on_time' | 'at_risk' | 'breached' | null;
  escalated: boolean;
  disposition: string | null;
  claimed: boolean;
}

/** A case's 999 request not yet accepted by the ambulance service (or failed, or overdue). */
export interface OutstandingAmbulanceRequest {
  messageId: string;
  caseId: string | null;
  siteId: string | null;
  state: string;
  queuedAt: string;
  /** Past the ambulance service's window or failed: the adviser must phone. */
  overdue: boolean;
}

/** Staff signed in to this node now, by role (sessions are node-local: other nodes' staff are not counted). */
export interface StaffOnDuty {
  role: string;
  count: number;
}

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
  /** Calls with advisers idle longer than the configured time (the list: GET /api/v1/calls/open-too-long). */
  callsOpenTooLong?: (tenant: string) => Promise<number>;
  /** Ambulance requests not yet accepted (null: not for this user to see). */
  ambulanceRequestsOutstanding?: (ctx: RequestContext) => Promise<OutstandingAmbulanceRequest[] | null>;
  /** Users with a live, fully signed-in session on this node, by role. */
  staffOnDuty?: (tenant: string) => Promise<{ people: number; byRole: StaffOnDuty[] }>;
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
      query: z.strictObject({
        siteId: z.string().uuid('must be a site id').optional(),
        /**
         * The figure whose cases to list (the one the manager opened). Only that list is sent: with
         * thousands of open cases, sending every list on every live re-read made each read slow.
         */
        list: z.enum(CASE_LISTS, `must be one of ${CASE_LISTS.join(', ')}`).optional(),
      }),
      async handler({ ctx, query }) {
        const now = deps.clock.nowMs();
        const [sites, rows] = await Promise.all([
          deps.accounts.sites(ctx.tenant),
          deps.store.withTenant(ctx.tenant, (trx) =>
            casesInStatuses(trx, ctx.tenant, [...WITH_ADVISER, ...IN_QUEUE], {
              tenantFilter: deps.tenantFilter,
              siteId: query.siteId,
            }),
          ),
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
        const cases: DashboardCase[] = [];
        // Counting is all most reads need: the case objects of a list are built (with their dates
        // in words) only for the one list the manager opened, so a live re-read over thousands of
        // open cases stays cheap.
        const wanted = (
          stage: DashboardCase['stage'],
          timing: DashboardCase['timing'],
          escalated: boolean,
        ) => {
          switch (query.list) {
            case undefined:
              return false;
            case 'adviser':
            case 'queue':
            case 'clinician':
              return stage === query.list;
            case 'at_risk':
            case 'breached':
              return timing === query.list;
            case 'escalated':
              return escalated;
          }
        };
        for (const row of rows) {
          const site = bySite.get(row.site_id);
          if (!site) continue;
          if ((WITH_ADVISER as readonly string[]).includes(row.status)) {
            site.callsWaiting++;
            if (wanted('adviser', null, false))
              cases.push({
                caseId: row.case_id,
                siteId: row.site_id,
                status: row.status,
                stage: 'adviser',
                receivedAt: new Date(Number(row.received_at)).toISOString(),
                deadline: null,
                timing: null,
                escalated: false,
                disposition: row.disposition_label,
                claimed: false,
              });
            continue;
          }
          const stage = row.status === 'queued' ? 'queue' : 'clinician';
          if (stage === 'queue') site.queued++;
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
          const escalated = Number(row.escalated) === 1;
          if (wanted(stage, timing.status, escalated))
            cases.push({
              caseId: row.case_id,
              siteId: row.site_id,
              status: row.status,
              stage,
              receivedAt: new Date(Number(row.received_at)).toISOString(),
              deadline: new Date(timing.deadlineMs).toISOString(),
              timing: timing.status,
              escalated,
              disposition: row.disposition_label,
              claimed: row.claimed_by !== null,
            });
          if (escalated) {
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
        // The list behind the opened figure, most urgent first: oldest deadline, then oldest call.
        cases.sort(
          (a, b) =>
            (a.deadline ?? '9').localeCompare(b.deadline ?? '9') || a.receivedAt.localeCompare(b.receivedAt),
        );
        const [
          syncAlarms,
          messagesNeedingAttention,
          ambulanceRequests,
          staff,
          callsOpenTooLong,
          referralAlerts,
        ] = await Promise.all([
          deps.syncAlarms?.(ctx.tenant) ?? [],
          deps.messagesNeedingAttention?.(ctx) ?? null,
          deps.ambulanceRequestsOutstanding?.(ctx) ?? null,
          deps.staffOnDuty?.(ctx.tenant) ?? null,
          deps.callsOpenTooLong?.(ctx.tenant) ?? 0,
          deps.referralAlerts?.(ctx) ?? null,
        ]);
        const inSiteFilter = (siteId: string | null) => !query.siteId || siteId === query.siteId;
        return {
          now: new Date(now).toISOString(),
          syncAlarms,
          messagesNeedingAttention,
          callsOpenTooLong,
          ambulanceRequestsOutstanding: ambulanceRequests?.filter((r) => inSiteFilter(r.siteId)) ?? null,
          staffOnDuty: staff?.byRole ?? null,
          staffSignedIn: staff?.people ?? null,
          referralAlerts,
          sites: [...bySite.values()],
          cases,
          escalations,
          canOpenCases: hasPermission(ctx.roles, 'cases.read'),
        };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/dashboard/hourly',
      summary:
        'Calls and breaches per UK hour of a day (today by default) against the same weekday a week earlier',
      access: { permission: 'reports.read' },
      query: z.strictObject({
        date: z
          .string()
          .refine((d) => {
            const noon = Date.parse(`${d}T12:00:00Z`);
            // A date that does not exist (30 February) is refused, not rolled into March.
            return (
              /^\d{4}-\d{2}-\d{2}$/.test(d) &&
              !Number.isNaN(noon) &&
              new Date(noon).toISOString().startsWith(d)
            );
          }, 'must be a date as YYYY-MM-DD')
          .optional(),
        siteId: z.string().uuid('must be a site id').optional(),
      }),
      async handler({ ctx, query }) {
        const now = deps.clock.nowMs();
        if (query.siteId && !(await deps.accounts.sites(ctx.tenant)).some((s) => s.siteId === query.siteId))
          throw new ValidationError([{ path: 'query.siteId', message: 'is not a site of your provider' }]);
        const date = query.date ?? londonDate(now);
        const compareWith = addDays(date, -7);
        const count = async (hours: DayHour[]) => {
          const from = hours[0]!.startMs;
          const to = hours[hours.length - 1]!.endMs;
          const scope = { tenantFilter: deps.tenantFilter, siteId: query.siteId };
          const [received, breached] = await deps.store.withTenant(ctx.tenant, (trx) =>
            Promise.all([
              receivedTimes(trx, ctx.tenant, from, to, scope),
              // A breach: the case's deadline passed (by now) while it was still open.
              breachedDeadlines(trx, ctx.tenant, from, Math.min(to, now + 1), scope),
            ]),
          );
          return { hours, calls: countPerHour(hours, received), breaches: countPerHour(hours, breached) };
        };
        const [today, lastWeek] = await Promise.all([
          count(hoursOfLondonDay(date)),
          count(hoursOfLondonDay(compareWith)),
        ]);
        return {
          date,
          compareWith,
          now: new Date(now).toISOString(),
          hours: compareDays(today, lastWeek, now),
        };
      },
    }),
  ];
}
