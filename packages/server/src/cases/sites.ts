import { ForbiddenError, hasPermission } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';

/** The sites whose work a user sees and takes: their own, or every site with `queue.all_sites`. */
export function queueSitesOf(ctx: Pick<RequestContext, 'roles' | 'siteIds'>): readonly string[] | 'all' {
  return hasPermission(ctx.roles, 'queue.all_sites') ? 'all' : ctx.siteIds;
}

/**
 * A case is read at its own site: by users of that site, by those who work across sites
 * (`queue.all_sites`), and by those who worked on it (`involved`: the adviser who took the call at
 * another site, a clinician who held it). Anyone else is refused, saying why (the refusal names no
 * patient). A user with no site reads only the cases they worked on.
 */
export function requireCaseReadable(
  ctx: Pick<RequestContext, 'roles' | 'siteIds' | 'userId'>,
  row: { site_id: string },
  involved: readonly string[],
): void {
  const sites = queueSitesOf(ctx);
  if (sites === 'all' || sites.includes(row.site_id) || involved.includes(ctx.userId)) return;
  throw new ForbiddenError(
    ctx.siteIds.length === 0
      ? 'you have no sites yet, so you see no cases: ask your administrator to add your sites'
      : 'this case belongs to a site that is not one of yours',
  );
}
