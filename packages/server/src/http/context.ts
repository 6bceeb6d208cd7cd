import type { Role } from '@holdfast/core';

/**
 * Who is asking, fixed by the session: the tenant never comes from the request itself.
 */
export interface RequestContext {
  tenant: string;
  userId: string;
  username: string;
  roles: Role[];
  siteIds: string[];
  sessionId: string;
  address: string;
  /**
   * A system acting on the provider's behalf (a sending system's message, a hold released at
   * sign-out), not a member of staff: the site rules of the access layer do not apply.
   */
  system?: true;
}

export function actorOf(ctx: Pick<RequestContext, 'userId'>): string {
  return `user:${ctx.userId}`;
}
