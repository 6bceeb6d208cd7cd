import type { Clock } from '@holdfast/core';
import { z } from 'zod';
import type { Store } from '../store/store.ts';
import { actorOf } from '../http/context.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { Ledger } from '../ledger/ledger.ts';
import { trailCsv, trailPdf, ukTime } from './export.ts';
import { auditDb } from './projection.ts';
import { AUDIT_KINDS, type AuditTrailService, type TrailFilters } from './trail.ts';

const isoInstant = z.iso.datetime({
  offset: true,
  message: 'must be an ISO 8601 date-time, e.g. 2026-11-29T08:00:00Z',
});

/**
 * The trail's filters, in a request body: an NHS number must not travel in a URL (browser history,
 * proxies and access logs keep URLs).
 */
const trailFilters = {
  nhsNumber: z.string().max(40, 'must be at most 40 characters').optional(),
  userName: z
    .string()
    .trim()
    .min(2, 'must be at least 2 characters of a name')
    .max(200, 'must be at most 200 characters')
    .optional(),
  patientId: z.string().uuid('must be a patient id').optional(),
  userId: z.string().uuid('must be a user id').optional(),
  from: isoInstant.optional(),
  to: isoInstant.optional(),
  breakGlass: z.boolean().optional(),
  /** Only these kinds of event: access, sign_in, account (users, roles, factors, passwords), denied, export. */
  kinds: z
    .array(z.enum(AUDIT_KINDS, { message: `must be one of ${AUDIT_KINDS.join(', ')}` }))
    .max(AUDIT_KINDS.length)
    .optional(),
};

/** The filters in words, for the top of an export (ids as they were resolved, the NHS number spaced). */
function describeFilters(f: Omit<TrailFilters, 'limit'>): string {
  const parts: string[] = [];
  if (f.nhsNumber) parts.push(`NHS number ${f.nhsNumber}`);
  if (f.userName) parts.push(`user name "${f.userName}"`);
  if (f.patientId) parts.push(`patient id ${f.patientId}`);
  if (f.userId) parts.push(`user id ${f.userId}`);
  if (f.from) parts.push(`from ${ukTime(f.from)}`);
  if (f.to) parts.push(`until ${ukTime(f.to)}`);
  if (f.breakGlass !== undefined) parts.push(f.breakGlass ? 'break-glass only' : 'no break-glass');
  if (f.kinds?.length) parts.push(`kinds: ${f.kinds.join(', ')}`);
  return parts.length ? parts.join('; ') : 'none (the whole trail)';
}

/** At most this many events go into one export; the export says so when there were more. */
const EXPORT_LIMIT = 5000;

/** The audit trail for auditors: filter by patient, user and time range; newest first, paged. */
export function auditRoutes(
  store: Store,
  options: { tenantFilter: boolean } = { tenantFilter: true },
  named?: { trail: AuditTrailService; ledger: Ledger; clock: Clock },
): RouteSpec[] {
  const namedRoutes: RouteSpec[] = !named
    ? []
    : [
        authedRoute({
          method: 'POST',
          url: '/api/v1/audit/search',
          summary:
            'The audit trail with names and NHS numbers, filtered by NHS number, user name, time range or break-glass (filters in the body: no patient data in URLs); repeated reads grouped',
          access: { permission: 'audit.read' },
          search: true,
          body: z.strictObject({
            ...trailFilters,
            limit: z.number().int().min(1).max(500).default(100),
            before: z
              .string()
              .regex(/^\d{15}-\d{6}$/, 'must be the cursor from a previous page')
              .optional(),
          }),
          async handler({ ctx, body }) {
            const page = await named.trail.page(ctx, body);
            return { rows: page.rows, events: page.events, next: page.next };
          },
        }),
        authedRoute({
          method: 'POST',
          url: '/api/v1/audit/export',
          summary:
            'The filtered audit trail as CSV or PDF (at most 5000 events); the export itself is recorded in the audit trail',
          access: { permission: 'audit.read' },
          body: z.strictObject({ ...trailFilters, format: z.enum(['csv', 'pdf'], 'must be csv or pdf') }),
          async handler({ ctx, body, reply }) {
            const { format, ...filters } = body;
            const page = await named.trail.page(ctx, { ...filters, limit: EXPORT_LIMIT });
            const now = new Date(named.clock.nowMs()).toISOString();
            // Recorded before the file leaves: names and NHS numbers go out in it.
            await named.ledger.append([
              {
                tenant: ctx.tenant,
                type: 'audit.export',
                actor: actorOf(ctx),
                payload: {
                  userId: ctx.userId,
                  roles: ctx.roles,
                  siteIds: ctx.siteIds,
                  format,
                  rows: page.rows.length,
                  filters: Object.fromEntries(
                    Object.entries({
                      patientIds: page.resolved.patientIds ?? undefined,
                      userIds: page.resolved.userIds?.slice(0, 50) ?? undefined,
                      from: filters.from,
                      to: filters.to,
                      breakGlass: filters.breakGlass,
                    }).filter(([, v]) => v !== undefined),
                  ),
                },
              },
            ]);
            const fileName = `audit-trail-${now.slice(0, 19).replace(/[:T]/g, '-')}.${format}`;
            if (format === 'csv')
              return reply
                .type('text/csv; charset=utf-8')
                .header('content-disposition', `attachment; filename="${fileName}"`)
                .header('cache-control', 'no-store')
                .send(trailCsv(page.rows));
            const by = (await named.trail.userName(ctx)) ?? 'an auditor';
            const pdf = await trailPdf(page.rows, {
              title: 'Audit trail',
              filters:
                describeFilters(filters) +
                (page.next
                  ? ` (the newest ${EXPORT_LIMIT} events only: narrow the filters for the rest)`
                  : ''),
              generatedAt: now,
              generatedBy: by,
            });
            return reply
              .type('application/pdf')
              .header('content-disposition', `attachment; filename="${fileName}"`)
              .header('cache-control', 'no-store')
              .send(pdf);
          },
        }),
      ];
  return [
    ...namedRoutes,
    authedRoute({
      method: 'GET',
      url: '/api/v1/audit',
      summary: 'The audit trail of your provider, filtered by patient, user, time range or break-glass',
      access: { permission: 'audit.read' },
      query: z.strictObject({
        patientId: z.string().uuid('must be a patient id').optional(),
        userId: z.string().uuid('must be a user id').optional(),
        from: isoInstant.optional(),
        to: isoInstant.optional(),
        breakGlass: z.enum(['true', 'false']).optional(),
        limit: z.coerce.number().int().min(1).max(500).default(100),
        before: z
          .string()
          .regex(/^\d{15}-\d{6}$/, 'must be the cursor from a previous page')
          .optional(),
      }),
      async handler({ ctx, query }) {
        const hlcOf = (iso: string) => `${String(Date.parse(iso)).padStart(15, '0')}-000000`;
        const rows = await store.withTenant(ctx.tenant, async (trx) => {
          let q = auditDb(trx)
            .selectFrom('audit_log')
            .selectAll()
            .orderBy('hlc', 'desc')
            .orderBy('node')
            .orderBy('seq', 'desc')
            .limit(query.limit);
          if (options.tenantFilter) q = q.where('tenant', '=', ctx.tenant);
          if (query.patientId) q = q.where('resource_id', '=', query.patientId);
          if (query.userId) q = q.where('user_id', '=', query.userId);
          if (query.from) q = q.where('hlc', '>=', hlcOf(query.from));
          if (query.to) q = q.where('hlc', '<', hlcOf(query.to));
          if (query.breakGlass) q = q.where('break_glass', '=', query.breakGlass === 'true' ? 1 : 0);
          if (query.before) q = q.where('hlc', '<', query.before);
          return q.execute();
        });
        return {
          events: rows.map((r) => ({
            at: new Date(Number(r.hlc.slice(0, 15))).toISOString(),
            type: r.type,
            userId: r.user_id,
            roles: JSON.parse(r.roles) as string[],
            siteIds: JSON.parse(r.site_ids) as string[],
            action: r.action,
            resourceType: r.resource_type,
            resourceId: r.resource_id,
            outcome: r.outcome,
            reason: r.reason,
            breakGlass: Number(r.break_glass) === 1,
            detail: JSON.parse(r.detail) as unknown,
            ledger: { node: r.node, seq: Number(r.seq) },
          })),
          next: rows.length === query.limit ? rows[rows.length - 1]!.hlc : null,
        };
      },
    }),
  ];
}
