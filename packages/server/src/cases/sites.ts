import { hasPermission } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';

/** The sites whose work a user sees and takes: their own, or every site with `queue.all_sites`. */
export function queueSitesOf(ctx: Pick<RequestContext, 'roles' | 'siteIds'>): readonly string[] | 'all' {
  return hasPermission(ctx.roles, 'queue.all_sites') ? 'all' : ctx.siteIds;
}
