import { caseListSites } from '@holdfast/core';
import { z } from 'zod';
import type { RequestContext } from '../http/context.ts';
import type {
  OwnedItemView,
  ReconciliationFilters,
  ReconciliationSource,
} from '../reconciliation/service.ts';
import type { DispatchService } from './service.ts';

/**
 * Double allocations as reconciliation items (kind `double_allocation`), listed and decided in the
 * existing reconciliation list: the shift manager keeps one of the item's allocations.
 */
export function dispatchReconciliationSource(dispatch: DispatchService): ReconciliationSource {
  const visible = (ctx: RequestContext, siteId: string | null) => {
    const sites = caseListSites(ctx);
    return sites === 'all' || (siteId !== null && sites.includes(siteId));
  };
  const views = async (ctx: RequestContext) => {
    const { snap, items } = await dispatch.allocationItems(ctx.tenant);
    return items.map((i) => dispatch.itemView(snap, i)).filter((v) => visible(ctx, v.siteId));
  };
  return {
    decisionSchema: z.strictObject({
      action: z.literal('keep_allocation'),
      allocationId: z.string().uuid('must be one of the allocations of this item'),
    }),
    async list(ctx: RequestContext, filters: ReconciliationFilters): Promise<OwnedItemView[]> {
      return (await views(ctx)).filter(
        (v) => v.status === (filters.status ?? 'open') && (!filters.siteId || v.siteId === filters.siteId),
      );
    },
    async get(ctx, itemId) {
      return (await views(ctx)).find((v) => v.itemId === itemId) ?? null;
    },
    async resolve(ctx, itemId, input) {
      const decision = input.decision as { action: string; allocationId?: string };
      const { items } = await dispatch.allocationItems(ctx.tenant);
      if (!items.some((i) => i.itemId === itemId)) return null;
      if (decision.action !== 'keep_allocation' || !decision.allocationId) return dispatch.refuseDecision();
      return dispatch.decideItem(ctx, itemId, decision.allocationId, input.reason);
    },
  };
}
