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
}

export function actorOf(ctx: Pick<RequestContext, 'userId'>): string {
  return `user:${ctx.userId}`;
}
