import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { ReconciliationService } from './service.ts';

/**
 * An item id is `rec-` and the id of the event that collided; the bare event id is accepted too
 * (so any UUID-shaped id is well-formed, and one that names no item is simply not found).
 */
const itemParams = z.strictObject({
  itemId: z
    .string()
    .regex(
      /^(rec-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      'must be a reconciliation item id (rec-…)',
    ),
});
const itemIdOf = (v: string) => (v.startsWith('rec-') ? v : `rec-${v}`);

/** Collisions between nodes that were apart, and the shift manager's decisions on them. */
export function reconciliationRoutes(reconciliation: ReconciliationService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/reconciliation',
      summary: 'Reconciliation items (open by default): collisions from nodes that were apart, oldest first',
      access: { permission: 'reconciliation.read' },
      query: z.strictObject({
        status: z.enum(['open', 'resolved']).default('open'),
        siteId: z.string().uuid('must be a site id').optional(),
      }),
      async handler({ ctx, query }) {
        return { items: await reconciliation.listAll(ctx, query) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/reconciliation/:itemId',
      summary: 'One reconciliation item: the kept and the held events, who was involved, any decision',
      access: { permission: 'reconciliation.read' },
      params: itemParams,
      async handler({ ctx, params }) {
        return reconciliation.getAny(ctx, itemIdOf(params.itemId));
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/reconciliation/:itemId/resolve',
      summary: 'Decide a reconciliation item (recorded in the ledger and applied to the case on every node)',
      access: { permission: 'reconciliation.resolve' },
      params: itemParams,
      body: z.strictObject({
        decision: reconciliation.decisionSchema(),
        reason: z
          .string()
          .trim()
          .min(1, 'say why you decided this')
          .max(2000, 'must be at most 2000 characters'),
      }),
      async handler({ ctx, params, body }) {
        return reconciliation.resolve(ctx, itemIdOf(params.itemId), body);
      },
    }),
  ];
}
