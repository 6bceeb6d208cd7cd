import { ForbiddenError, siteDecision, type SiteDecision, type SubjectKind } from '@holdfast/core';
import type { Auditor } from '../audit/auditor.ts';
import type { RequestContext } from '../http/context.ts';

/**
 * The server side of the access policy (core `accounts/access.ts`): applies its site decision to a
 * subject read from a store, audits a refusal and answers 403 saying why (naming no patient). Every
 * module reaches patients through `PatientService` and cases through `CaseService.get`, which call
 * this; no route applies a site rule of its own.
 */
export type AccessContext = Pick<RequestContext, 'tenant' | 'userId' | 'roles' | 'siteIds'> & {
  system?: true;
};

/** Whether a context is a member of staff's (site rules apply) rather than the tenant alone. */
export function isStaffContext(ctx: object): ctx is AccessContext {
  return 'roles' in ctx && 'siteIds' in ctx && 'userId' in ctx && !('system' in ctx && ctx.system);
}

/**
 * Decides, and refuses when not allowed. `involved` is asked only when the site rule alone does not
 * allow (it reads the case's history).
 */
export async function requireSiteAccess(
  ctx: AccessContext,
  kind: SubjectKind,
  siteId: string,
  options: {
    auditor?: Auditor | null;
    /** What the refusal is recorded against in the audit trail. */
    route: string;
    involved?: () => Promise<boolean>;
    breakGlassReason?: string | undefined;
  },
): Promise<Extract<SiteDecision, { allowed: true }>> {
  let decision = siteDecision(ctx, kind, siteId, { breakGlassReason: options.breakGlassReason });
  if (!decision.allowed && kind === 'case' && options.involved && (await options.involved()))
    decision = siteDecision(ctx, kind, siteId, { involved: true });
  if (decision.allowed) return decision;
  if (options.auditor && 'sessionId' in ctx)
    await options.auditor.denied(
      ctx as RequestContext,
      kind === 'case' ? 'queue.all_sites' : 'patients.break_glass',
      options.route,
    );
  throw new ForbiddenError(decision.reason);
}
