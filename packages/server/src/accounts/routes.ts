import { noSitesWarning, ROLES } from '@holdfast/core';
import { z } from 'zod';
import type { UserRecord } from './projection.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import type { AppDeps } from '../http/app.ts';
import { authedRoute, publicRoute, type RouteSpec } from '../http/routes.ts';
import { addProvider, PROVIDER_ID } from './providers.ts';
import { requireRecentReauthentication } from '../auth/routes.ts';
import { ForbiddenError, NotFoundError, UnauthenticatedError, ValidationError } from '@holdfast/core';

/** Service checks name fields of the input; on the API those fields live in the body. */
async function inBody<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ValidationError(error.issues.map((i) => ({ ...i, path: `body.${i.path}` })));
    throw error;
  }
}

/** What an administrator sees of a user: never a password hash, TOTP secret or recovery code. */
export function publicUser(u: UserRecord) {
  return {
    userId: u.userId,
    username: u.username,
    displayName: u.displayName,
    roles: u.roles,
    siteIds: u.siteIds,
    disabled: u.disabled,
    secondFactors: {
      totp: u.totpSecret !== null,
      passkeys: u.passkeys,
      recoveryCodesLeft: u.recoveryCodeHashes.length,
    },
  };
}

const userIdParams = z.strictObject({ userId: z.string().uuid('must be a user id') });
const roles = z.array(z.enum(ROLES)).min(1, 'give at least one role').max(ROLES.length);
const siteIds = z.array(z.string().uuid('must be a site id')).max(50);
const reason = z.string().trim().min(3, 'say why (at least 3 characters)').max(500);

/**
 * Clinical roles granted in the last 14 days (who, which role, by whom, why): the alert that lets
 * the people who are not the granting administrator notice a grant (the other administrators on
 * the Users screen, the shift manager on the dashboard).
 */
async function clinicalGrantAlerts(deps: AppDeps, ctx: RequestContext) {
  const since = deps.clock.nowMs() - 14 * 24 * 60 * 60_000;
  const grants = await deps.accounts.clinicalGrants(ctx.tenant, since);
  const names = await deps.accounts.displayNames(ctx.tenant, [
    ...grants.map((g) => g.userId),
    ...grants.flatMap((g) => (g.by.startsWith('user:') ? [g.by.slice(5)] : [])),
  ]);
  return {
    clinicalRoleGrants: grants.map((g) => ({
      at: g.at,
      user: { userId: g.userId, name: names.get(g.userId) ?? null },
      roles: g.roles,
      reason: g.reason,
      grantedBy: g.by.startsWith('user:') ? (names.get(g.by.slice(5)) ?? g.by) : g.by,
      byYou: g.by === actorOf(ctx),
    })),
  };
}

/** Provider administration: users, roles, sites and sessions of the administrator's own provider only. */
export function accountRoutes(deps: AppDeps): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/admin/users',
      summary: "Your provider's users",
      access: { permission: 'users.manage' },
      async handler({ ctx }) {
        return { users: (await deps.accounts.list(ctx.tenant)).map(publicUser) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/admin/alerts',
      summary:
        'Clinical roles granted in the last 14 days: who was given which, by whom, and why (each administrator sees the others’ grants)',
      access: { permission: 'users.manage' },
      async handler({ ctx }) {
        return clinicalGrantAlerts(deps, ctx);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/dashboard/clinical-role-grants',
      summary:
        'The same alert on the shift dashboard: clinical roles granted in the last 14 days, to whom, by whom and why (staff names, no patient data)',
      access: { permission: 'reports.read' },
      async handler({ ctx }) {
        return clinicalGrantAlerts(deps, ctx);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/users',
      summary: 'Create a user with an initial password; they enrol a second factor at first sign-in',
      access: { permission: 'users.manage' },
      body: z.strictObject({
        username: z
          .string()
          .trim()
          .toLowerCase()
          .min(3)
          .max(64)
          .regex(/^[a-z0-9][a-z0-9._@-]*$/, 'use lower-case letters, digits and . _ @ - only'),
        displayName: z.string().trim().min(1).max(100),
        roles,
        siteIds,
        password: z.string().max(1024),
        /** Required when a role is clinical: recorded, in the audit trail and on other admins' alerts. */
        reason: reason.optional(),
      }),
      async handler({ ctx, body, reply, session }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        const user = await inBody(() =>
          deps.accounts.create(ctx.tenant, { ...body, requireClinicalReason: true }, actorOf(ctx)),
        );
        // Created all the same (an administrator may add the sites next), but never silently.
        const warning = noSitesWarning(user.roles, user.siteIds);
        return reply.code(201).send({ user: publicUser(user), warnings: warning ? [warning] : [] });
      },
    }),
    authedRoute({
      method: 'PUT',
      url: '/api/v1/admin/users/:userId/roles',
      summary: "Set a user's roles and sites (applies to their next request)",
      access: { permission: 'users.manage' },
      params: userIdParams,
      body: z.strictObject({ roles, siteIds, reason: reason.optional() }),
      async handler({ ctx, params, body, session }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        const user = await inBody(() =>
          deps.accounts.changeRoles(ctx, params.userId, body.roles, body.siteIds, body.reason),
        );
        const warning = noSitesWarning(body.roles, body.siteIds);
        return { user: publicUser(user), warnings: warning ? [warning] : [] };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/users/:userId/disable',
      summary: 'Disable a user and end their sessions at once',
      access: { permission: 'users.manage' },
      params: userIdParams,
      body: z.strictObject({ reason }),
      async handler({ ctx, params, body, reply, session }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        await deps.accounts.disable({ tenant: ctx.tenant, actor: actorOf(ctx) }, params.userId, body.reason);
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/users/:userId/enable',
      summary: 'Enable a disabled user',
      access: { permission: 'users.manage' },
      params: userIdParams,
      async handler({ ctx, params, reply, session }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        await deps.accounts.enable({ tenant: ctx.tenant, actor: actorOf(ctx) }, params.userId);
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/users/:userId/reset-mfa',
      summary:
        "Remove a user's second factors; answers a one-time enrolment code, shown once, to hand over out of band (they need it to enrol again); needs a reason, audited",
      access: { permission: 'users.manage' },
      params: userIdParams,
      body: z.strictObject({ reason }),
      async handler({ ctx, params, body, session }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        if (params.userId === ctx.userId)
          throw new ForbiddenError('ask another administrator to reset your own second factor');
        const { enrolmentCode } = await deps.accounts.resetMfa(
          { tenant: ctx.tenant, actor: actorOf(ctx) },
          params.userId,
          body.reason,
        );
        return { enrolmentCode };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/users/:userId/reset-password',
      summary:
        'Set a one-time temporary password (answered once, to hand over out of band); the user must change it at next sign-in; their sessions end',
      access: { permission: 'users.manage' },
      params: userIdParams,
      async handler({ ctx, params, session }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        if (params.userId === ctx.userId)
          throw new ForbiddenError('change your own password from your account page');
        return deps.accounts.resetPassword({ tenant: ctx.tenant, actor: actorOf(ctx) }, params.userId);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/admin/sites',
      summary: "Your provider's sites",
      access: { permission: 'sites.manage' },
      async handler({ ctx }) {
        return { sites: await deps.accounts.sites(ctx.tenant) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/sites',
      summary: 'Add a site',
      access: { permission: 'sites.manage' },
      body: z.strictObject({ name: z.string().trim().min(1).max(200) }),
      async handler({ ctx, body, reply }) {
        const siteId = await deps.accounts.createSite(ctx.tenant, body.name, actorOf(ctx));
        return reply.code(201).send({ site: { siteId, name: body.name } });
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/admin/sessions',
      summary: "Live sessions of your provider's users",
      access: { permission: 'sessions.manage' },
      async handler({ ctx }) {
        const sessions = await deps.sessions.listLive(ctx.tenant);
        return {
          sessions: sessions.map((s) => ({
            sessionId: s.id,
            userId: s.user_id,
            stage: s.stage,
            startedAt: new Date(s.created_at).toISOString(),
            lastSeenAt: new Date(s.last_seen_at).toISOString(),
            address: s.address,
          })),
        };
      },
    }),
    authedRoute({
      method: 'DELETE',
      url: '/api/v1/admin/sessions/:sessionId',
      summary: 'End a session at once',
      access: { permission: 'sessions.manage' },
      params: z.strictObject({ sessionId: z.string().uuid('must be a session id') }),
      async handler({ ctx, params, reply }) {
        const live = await deps.sessions.listLive(ctx.tenant);
        if (!live.some((s) => s.id === params.sessionId)) throw new NotFoundError('session');
        await deps.sessions.revoke(params.sessionId);
        return reply.code(204).send();
      },
    }),
  ];
}

/**
 * The node operator's routes (a supplier hosting several providers): authenticated by the operator
 * token that reads /metrics (`Authorization: Bearer`, configured as its SHA-256), never by a session.
 * A provider's user, administrator or not, is refused: adding a provider is the supplier's act.
 */
export function operatorRoutes(
  deps: AppDeps,
  operator: { isOperator(header: string | undefined): boolean; configured: boolean },
): RouteSpec[] {
  return [
    publicRoute({
      method: 'POST',
      url: '/api/v1/operator/providers',
      summary:
        "Add a provider to this node (operator token only): its own chain begun with this node's key, its own key for account secrets; as `holdfast providers add`",
      access: { public: true },
      body: z.strictObject({
        id: z
          .string()
          .regex(
            PROVIDER_ID,
            'must be 2-63 lower-case letters, digits or - (starting with a letter or digit)',
          ),
        name: z.string().trim().min(1).max(200),
      }),
      async handler({ request, body, reply }) {
        if (!operator.isOperator(request.headers.authorization))
          throw new UnauthenticatedError(
            operator.configured
              ? 'adding a provider needs the operator token: send Authorization: Bearer <token> (a provider user cannot add providers)'
              : 'operator routes are off: set operatorTokenSha256 (HOLDFAST_OPERATOR_TOKEN_SHA256) to use them with that token',
          );
        try {
          await addProvider(deps.node, deps.accounts, {
            tenant: body.id,
            name: body.name,
            actor: `operator:${deps.node.identity.node}`,
          });
        } catch (error) {
          if (error instanceof ValidationError)
            throw new ValidationError(
              error.issues.map((i) => ({ ...i, path: i.path === 'tenant' ? 'body.id' : `body.${i.path}` })),
            );
          throw error;
        }
        return reply.code(201).send({
          provider: { id: body.id, name: body.name },
          next: `add its first administrator: holdfast users add --provider ${body.id} --roles provider_admin …`,
        });
      },
    }),
  ];
}
