import { caseListSites } from '@holdfast/core';
import type { RequestContext } from '../http/context.ts';

/**
 * The sites whose work a user sees and takes: their own, or every site with `queue.all_sites` (the
 * access policy's `caseListSites`). Reading one case is decided by `CaseService.get` (own site,
 * across sites, or involved), through the access layer (`src/access/sites.ts`).
 */
export function queueSitesOf(ctx: Pick<RequestContext, 'roles' | 'siteIds'>): readonly string[] | 'all' {
  return caseListSites(ctx);
}
