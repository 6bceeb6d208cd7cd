import { z } from 'zod';
import type { Store } from '../store/store.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { auditDb } from './projection.ts';

const isoInstant = z.iso.datetime({
  offset: true,
  message: 'must be an ISO 8601 date-time, e.g. 2026-11-29T08:00:00Z',
});

/** The audit trail for auditors: filter by patient, user and time range; newest first, paged. */
export function auditRoutes(
  store: Store,
  options: { tenantFilter: boolean } = { tenantFilter: true },
): RouteSpec[] {
  return [
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
