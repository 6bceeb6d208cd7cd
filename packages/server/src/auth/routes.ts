import {
  DomainError,
  requiresPasskey,
  TooManyRequestsError,
  UnauthenticatedError,
  ValidationError,
  ForbiddenError,
} from '@holdfast/core';
import { z } from 'zod';
import type { UserRecord } from '../accounts/projection.ts';
import { clearSessionCookie, setSessionCookie, type AppDeps } from '../http/app.ts';
import type { RequestContext } from '../http/context.ts';
import { authedRoute, publicRoute, type RouteSpec } from '../http/routes.ts';
import { hashEnrolmentCode } from '../accounts/service.ts';
import { equalFailureTime, verifyPassword } from './passwords.ts';
import type { Session } from './sessions.ts';
import type { SignInThrottle } from './throttle.ts';
import {
  hashRecoveryCodes,
  matchRecoveryCode,
  matchTotp,
  newRecoveryCodes,
  newTotpSecret,
  totpUri,
} from './totp.ts';

/**
 * The otpauth URI as an SVG QR code. The QR library (with its PNG encoder, about 60 modules) loads
 * at the first TOTP enrolment rather than at every start of the server.
 */
async function qrSvg(uri: string): Promise<string> {
  const { default: QRCode } = await import('qrcode');
  return QRCode.toString(uri, { type: 'svg', margin: 1 });
}

export interface AuthDeps extends AppDeps {
  throttle: SignInThrottle;
  issuer: string;
  /** Work that ends with the user's sign-out (the cases they hold go back to the queue). */
  onSignedOut?: (ctx: RequestContext) => Promise<void>;
}

/** What the client must do after the password step. */
export type NextStep =
  'change_password' | 'enrolment_code' | 'enrol_totp' | 'totp' | 'enrol_passkey' | 'passkey' | 'done';

/** `unlocked`: this session has given the enrolment code (or an old recovery code) after a reset. */
export function nextStepFor(user: UserRecord, unlocked = false): NextStep {
  if (user.mustChangePassword) return 'change_password';
  if (user.enrolmentGate && !user.totpSecret && user.passkeys === 0 && !unlocked) return 'enrolment_code';
  if (requiresPasskey(user.roles)) return user.passkeys > 0 ? 'passkey' : 'enrol_passkey';
  // A passkey is the stronger factor: once a user has one, a password alone cannot swap it for an app.
  if (user.passkeys > 0) return 'passkey';
  if (user.totpSecret) return 'totp';
  return 'enrol_totp';
}

/** Sign-in failure: the same status, body and (by the dummy hash) time for every cause. */
const FAILED = 'the user name or password is wrong';
/** Re-authentication counts for this long before an MFA change. */
export const REAUTH_WINDOW_MS = 5 * 60_000;

/**
 * 403 `reauthentication_required`: the client asks for the password and second factor again
 * (POST /api/v1/auth/reauthenticate, or the passkey re-authentication routes) and retries.
 */
export class ReauthenticationRequiredError extends DomainError {
  readonly code = 'reauthentication_required';
}

/** 403 `enrolment_code_required`: after a second-factor reset, give the enrolment code first. */
export class EnrolmentCodeRequiredError extends DomainError {
  readonly code = 'enrolment_code_required';
}

/**
 * Changing a second factor, a password, or another user's account (administrators) needs a
 * re-authentication with the second factor in the last REAUTH_WINDOW_MS (a sign-in counts as one).
 */
export function requireRecentReauthentication(session: Session, nowMs: number): void {
  if (session.reauthenticated_at === null || nowMs - session.reauthenticated_at > REAUTH_WINDOW_MS) {
    throw new ReauthenticationRequiredError(
      're-authenticate with your second factor first (POST /api/v1/auth/reauthenticate, or with a passkey POST /api/v1/me/reauthenticate/passkey/options then /verify), then try again',
    );
  }
}

/**
 * Enrolling a factor after an administrator's reset needs the one-time enrolment code (or an old
 * recovery code) given in this session: a password alone must not enrol an attacker's factor.
 * The enrolment-code route marks the partial session with `reauthenticated_at`.
 */
export function requireEnrolmentUnlocked(user: UserRecord, session: Session): void {
  if (user.mustChangePassword)
    throw new ForbiddenError('change your temporary password first (POST /api/v1/auth/password/temporary)');
  if (user.enrolmentGate && session.reauthenticated_at === null)
    throw new EnrolmentCodeRequiredError(
      'your second factor was reset: enter the enrolment code your administrator gave you, or one of your old recovery codes (POST /api/v1/auth/enrolment-code)',
    );
}

const signInBody = z.strictObject({
  username: z.string().min(1).max(200),
  password: z.string().min(1).max(1024),
  /** The provider (tenant id), on a node that serves several whose staff share a user name. */
  provider: z.string().min(1).max(128).optional(),
});
const codeBody = z.union([
  z.strictObject({
    code: z.string().regex(/^\d{6}$/, 'must be the 6-digit code from your authenticator app'),
  }),
  z.strictObject({ recoveryCode: z.string().min(6).max(40) }),
]);

/** The password policy names the field `password`; on these routes it is `body.<field>`. */
async function inBodyField<T>(field: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error instanceof ValidationError)
      throw new ValidationError(
        error.issues.map((i) => ({ ...i, path: i.path === 'password' ? `body.${field}` : i.path })),
      );
    throw error;
  }
}

/** Replaces the session by a fresh token at full stage: a new token at every completed sign-in. */
export async function completeSignIn(
  deps: AuthDeps,
  session: Session,
  user: UserRecord,
  reply: Parameters<typeof setSessionCookie>[0],
): Promise<{ csrfToken: string }> {
  if (user.mustChangePassword)
    throw new ForbiddenError('change your temporary password first (POST /api/v1/auth/password/temporary)');
  await deps.sessions.revoke(session.id);
  const { token, session: full } = await deps.sessions.create({
    tenant: user.tenant,
    userId: user.userId,
    stage: 'full',
    address: session.address,
    reauthenticated: true,
  });
  setSessionCookie(reply, token, deps);
  return { csrfToken: full.csrf_token };
}

export function authRoutes(deps: AuthDeps): RouteSpec[] {
  return [
    publicRoute({
      method: 'POST',
      url: '/api/v1/auth/sign-in',
      summary: 'Password step: starts a session that can only complete the second factor',
      access: { public: true },
      body: signInBody,
      async handler({ body, request, reply }) {
        const startedMs = performance.now();
        const address = request.ip.slice(0, 64);
        const key = body.username.trim().toLowerCase();
        // Throttle before hashing (and before looking the name up): a spray must not cost us an
        // argon2 run, or a store read, per attempt.
        const verdict = deps.throttle.begin(`pw:${key}`, address);
        if (!verdict.allowed) {
          // The first refusal of a lock window is audited; the rest are counted, so a spray cannot
          // fill the ledger with one event per attempt.
          const user = verdict.firstRefusal ? await deps.accounts.findForSignIn(key, body.provider) : null;
          if (user)
            await deps.auditor.signIn({
              tenant: user.tenant,
              userId: user.userId,
              step: 'password',
              outcome: verdict.reason,
              address,
            });
          throw new TooManyRequestsError(
            'too many failed sign-ins: wait and try again',
            verdict.retryAfterSeconds,
          );
        }
        const user = await deps.accounts.findForSignIn(key, body.provider);
        const ok = await verifyPassword(user?.passwordHash ?? null, body.password);
        if (!user || !ok || user.disabled) {
          if (user)
            await deps.auditor.signIn({
              tenant: user.tenant,
              userId: user.userId,
              step: 'password',
              outcome: 'failure',
              address,
            });
          // A known name costs a ledger read and an audit append more than an unknown one: every
          // failure answers no sooner than a fixed time after the request began, so time tells nothing.
          await equalFailureTime(startedMs);
          throw new UnauthenticatedError(FAILED);
        }
        const notice = deps.throttle.succeeded(`pw:${key}`, address);
        await deps.auditor.signIn({
          tenant: user.tenant,
          userId: user.userId,
          step: 'password',
          outcome: 'success',
          address,
        });
        // A new token at every sign-in: a token planted before sign-in (fixation) is never upgraded.
        const { token, session } = await deps.sessions.create({
          tenant: user.tenant,
          userId: user.userId,
          stage: 'password',
          address,
        });
        setSessionCookie(reply, token, deps);
        return {
          next: nextStepFor(user),
          csrfToken: session.csrf_token,
          // The owner hears of guessing at their name since they last signed in (see auth/throttle.ts).
          ...(notice
            ? {
                notice: {
                  failedSignIns: notice.failures,
                  refusedSignIns: notice.refused,
                  addresses: notice.addresses,
                  since: new Date(notice.since).toISOString(),
                },
              }
            : {}),
        };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/totp/enrol',
      summary: 'First sign-in: a new TOTP secret, shown once, as text, otpauth URI and QR code',
      access: { secondFactor: true },
      async handler({ session, user }) {
        if (user.totpSecret || user.passkeys > 0)
          throw new ForbiddenError('a second factor is enrolled already: use it to sign in');
        if (requiresPasskey(user.roles))
          throw new ForbiddenError('your role must use a passkey as its second factor');
        requireEnrolmentUnlocked(user, session);
        const secret = newTotpSecret();
        await deps.sessions.update(session.id, { pending_totp_secret: secret });
        const uri = totpUri(secret, user.username, deps.issuer);
        return { secret, otpauthUri: uri, qrSvg: await qrSvg(uri) };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/totp/confirm',
      summary: 'Confirms enrolment with a first code; returns ten single-use recovery codes, shown once',
      access: { secondFactor: true },
      body: z.strictObject({
        code: z.string().regex(/^\d{6}$/, 'must be the 6-digit code from your authenticator app'),
      }),
      async handler({ body, session, user, reply, ctx }) {
        // A factor enrolled since the secret was issued (another tab, another node) wins.
        if (user.totpSecret || user.passkeys > 0)
          throw new ForbiddenError('a second factor is enrolled already: use it to sign in');
        requireEnrolmentUnlocked(user, session);
        const secret = session.pending_totp_secret;
        if (!secret)
          throw new ValidationError([
            { path: 'code', message: 'start enrolment first (POST /api/v1/auth/totp/enrol)' },
          ]);
        const step = matchTotp(secret, body.code, deps.clock.nowMs());
        if (step === null || !(await deps.sessions.useTotpStep(user.tenant, user.userId, step))) {
          await deps.auditor.signIn({
            tenant: user.tenant,
            userId: user.userId,
            step: 'totp',
            outcome: 'failure',
            address: ctx.address,
          });
          throw new ValidationError([
            {
              path: 'code',
              message: 'does not match: check the clock on your device and enter the current code',
            },
          ]);
        }
        const codes = newRecoveryCodes();
        await deps.accounts.enrolTotp(user, secret, await hashRecoveryCodes(codes));
        await deps.auditor.signIn({
          tenant: user.tenant,
          userId: user.userId,
          step: 'totp',
          outcome: 'success',
          address: ctx.address,
        });
        return { recoveryCodes: codes, ...(await completeSignIn(deps, session, user, reply)) };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/totp/verify',
      summary: 'Second factor: a TOTP code (each accepted once) or a single-use recovery code',
      access: { secondFactor: true },
      body: codeBody,
      async handler({ body, session, user, reply, ctx }) {
        if (!user.totpSecret) throw new ForbiddenError('no authenticator app is enrolled: enrol one first');
        if (requiresPasskey(user.roles))
          throw new ForbiddenError(
            'your role signs in with a passkey; if you have none, ask another administrator to reset your second factor',
          );
        const key = `mfa:${user.tenant}:${user.userId}`;
        const verdict = deps.throttle.begin(key, ctx.address);
        if (!verdict.allowed) {
          if (verdict.firstRefusal)
            await deps.auditor.signIn({
              tenant: user.tenant,
              userId: user.userId,
              step: 'totp',
              outcome: verdict.reason,
              address: ctx.address,
            });
          throw new TooManyRequestsError(
            'too many wrong codes: wait and try again',
            verdict.retryAfterSeconds,
          );
        }
        let ok = false;
        let step: 'totp' | 'recovery_code' = 'totp';
        if ('code' in body) {
          const matched = matchTotp(user.totpSecret, body.code, deps.clock.nowMs());
          ok = matched !== null && (await deps.sessions.useTotpStep(user.tenant, user.userId, matched));
        } else {
          step = 'recovery_code';
          const hash = await matchRecoveryCode(body.recoveryCode, user.recoveryCodeHashes);
          // Compare-and-set, as for TOTP steps: of sessions sending one code at once, one wins.
          ok = hash !== null && (await deps.sessions.useRecoveryCodeOnce(user.tenant, user.userId, hash));
          if (ok && hash !== null) await deps.accounts.useRecoveryCode(user, hash);
        }
        if (!ok) {
          await deps.auditor.signIn({
            tenant: user.tenant,
            userId: user.userId,
            step,
            outcome: 'failure',
            address: ctx.address,
          });
          throw new UnauthenticatedError('the code is wrong or was used already');
        }
        deps.throttle.succeeded(key, ctx.address);
        await deps.auditor.signIn({
          tenant: user.tenant,
          userId: user.userId,
          step,
          outcome: 'success',
          address: ctx.address,
        });
        return completeSignIn(deps, session, user, reply);
      },
    }),

    authedRoute({
      method: 'GET',
      url: '/api/v1/auth/session',
      summary: 'The signed-in user, their roles and sites, and the CSRF token',
      access: { permission: 'session.self' },
      async handler({ user, session }) {
        return {
          user: {
            userId: user.userId,
            username: user.username,
            displayName: user.displayName,
            roles: user.roles,
            siteIds: user.siteIds,
          },
          csrfToken: session.csrf_token,
          idleExpiresAt: new Date(session.last_seen_at + deps.sessions.policy.idleTimeoutMs).toISOString(),
          absoluteExpiresAt: new Date(session.absolute_expires_at).toISOString(),
        };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/sign-out',
      summary: 'Ends this session',
      access: { permission: 'session.self' },
      async handler({ session, ctx, reply }) {
        await deps.sessions.revoke(session.id);
        await deps.onSignedOut?.(ctx);
        await deps.auditor.signIn({
          tenant: ctx.tenant,
          userId: ctx.userId,
          step: 'sign_out',
          outcome: 'success',
          address: ctx.address,
        });
        clearSessionCookie(reply, deps);
        return reply.code(204).send();
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/reauthenticate',
      summary: 'Password and a current code again, before changing a second factor',
      access: { permission: 'session.self' },
      body: z.strictObject({
        password: z.string().min(1).max(1024),
        code: z
          .string()
          .regex(/^\d{6}$/)
          .optional(),
      }),
      async handler({ body, session, user, ctx }) {
        // Re-authentication is two factors again. Without an authenticator app the second one is
        // the passkey: use the passkey re-authentication routes instead.
        if (!user.totpSecret) {
          throw new ForbiddenError(
            'you sign in with a passkey: re-authenticate with it (POST /api/v1/me/reauthenticate/passkey/options, then /verify)',
          );
        }
        const key = `reauth:${user.tenant}:${user.userId}`;
        const verdict = deps.throttle.begin(key, ctx.address);
        if (!verdict.allowed)
          throw new TooManyRequestsError('too many attempts: wait and try again', verdict.retryAfterSeconds);
        const passwordOk = await verifyPassword(user.passwordHash, body.password);
        const step = body.code ? matchTotp(user.totpSecret, body.code, deps.clock.nowMs()) : null;
        const codeOk = step !== null && (await deps.sessions.useTotpStep(user.tenant, user.userId, step));
        if (!passwordOk || !codeOk) {
          throw new UnauthenticatedError('the password or code is wrong');
        }
        deps.throttle.succeeded(key, ctx.address);
        await deps.sessions.update(session.id, { reauthenticated_at: deps.clock.nowMs() });
        return { reauthenticatedUntil: new Date(deps.clock.nowMs() + REAUTH_WINDOW_MS).toISOString() };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/enrolment-code',
      summary:
        'After an administrator reset your second factor: the one-time enrolment code they gave you, or one of your old recovery codes, before enrolling a new factor',
      access: { secondFactor: true },
      body: z.union([
        z.strictObject({ enrolmentCode: z.string().trim().min(8).max(40) }),
        z.strictObject({ recoveryCode: z.string().min(6).max(40) }),
      ]),
      async handler({ body, session, user, ctx }) {
        const gate = user.enrolmentGate;
        if (!gate || user.totpSecret || user.passkeys > 0)
          throw new ForbiddenError('no enrolment code is needed: sign in with your second factor');
        const key = `enrol:${user.tenant}:${user.userId}`;
        const verdict = deps.throttle.begin(key, ctx.address);
        if (!verdict.allowed)
          throw new TooManyRequestsError(
            'too many wrong codes: wait and try again',
            verdict.retryAfterSeconds,
          );
        const ok =
          'enrolmentCode' in body
            ? hashEnrolmentCode(body.enrolmentCode) === gate.codeHash
            : (await matchRecoveryCode(body.recoveryCode, gate.recoveryCodeHashes)) !== null;
        if (!ok) {
          await deps.auditor.signIn({
            tenant: user.tenant,
            userId: user.userId,
            step: 'recovery_code',
            outcome: 'failure',
            address: ctx.address,
          });
          throw new UnauthenticatedError('the code is wrong: ask your administrator for the enrolment code');
        }
        deps.throttle.succeeded(key, ctx.address);
        await deps.sessions.update(session.id, { reauthenticated_at: deps.clock.nowMs() });
        return { next: nextStepFor(user, true) };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/auth/password/temporary',
      summary:
        'Sign-in with a temporary password an administrator set: choose your own before the second factor',
      access: { secondFactor: true },
      body: z.strictObject({ newPassword: z.string().min(1).max(1024) }),
      async handler({ body, user, session }) {
        if (!user.mustChangePassword)
          throw new ForbiddenError('your password is not a temporary one: change it from your account page');
        if (await verifyPassword(user.passwordHash, body.newPassword))
          throw new ValidationError([
            { path: 'body.newPassword', message: 'must differ from the temporary password' },
          ]);
        await inBodyField('newPassword', () =>
          deps.accounts.setPassword(
            { tenant: user.tenant, actor: `user:${user.userId}` },
            user,
            body.newPassword,
          ),
        );
        return {
          next: nextStepFor({ ...user, mustChangePassword: false }, session.reauthenticated_at !== null),
        };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/me/password',
      summary:
        'Change your password: the current one, and a re-authentication with your second factor in the last 5 minutes',
      access: { permission: 'session.self' },
      body: z.strictObject({
        currentPassword: z.string().min(1).max(1024),
        newPassword: z.string().min(1).max(1024),
      }),
      async handler({ body, user, session, ctx, reply }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        const key = `reauth:${user.tenant}:${user.userId}`;
        const verdict = deps.throttle.begin(key, ctx.address);
        if (!verdict.allowed)
          throw new TooManyRequestsError('too many attempts: wait and try again', verdict.retryAfterSeconds);
        if (!(await verifyPassword(user.passwordHash, body.currentPassword)))
          throw new UnauthenticatedError('the current password is wrong');
        deps.throttle.succeeded(key, ctx.address);
        await inBodyField('newPassword', () =>
          deps.accounts.setPassword(
            { tenant: user.tenant, actor: `user:${user.userId}` },
            user,
            body.newPassword,
          ),
        );
        return reply.code(204).send();
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/me/totp/replace',
      summary: 'Replace your authenticator app (needs re-authentication in the last 5 minutes)',
      access: { permission: 'session.self' },
      async handler({ session, user }) {
        requireRecentReauthentication(session, deps.clock.nowMs());
        if (requiresPasskey(user.roles))
          throw new ForbiddenError('your role must use a passkey as its second factor');
        const secret = newTotpSecret();
        await deps.sessions.update(session.id, { pending_totp_secret: secret });
        const uri = totpUri(secret, user.username, deps.issuer);
        return {
          secret,
          otpauthUri: uri,
          qrSvg: await qrSvg(uri),
          confirmWith: 'POST /api/v1/me/totp/confirm',
        };
      },
    }),

    authedRoute({
      method: 'POST',
      url: '/api/v1/me/totp/confirm',
      summary: 'Confirms a replacement authenticator app with its first code',
      access: { permission: 'session.self' },
      body: z.strictObject({
        code: z.string().regex(/^\d{6}$/, 'must be the 6-digit code from your authenticator app'),
      }),
      async handler({ body, session, user }) {
        const secret = session.pending_totp_secret;
        if (!secret)
          throw new ValidationError([{ path: 'code', message: 'start with POST /api/v1/me/totp/replace' }]);
        const step = matchTotp(secret, body.code, deps.clock.nowMs());
        if (step === null || !(await deps.sessions.useTotpStep(user.tenant, user.userId, step))) {
          throw new ValidationError([
            { path: 'code', message: 'does not match: enter the current code from the new app' },
          ]);
        }
        const codes = newRecoveryCodes();
        await deps.accounts.enrolTotp(user, secret, await hashRecoveryCodes(codes));
        await deps.sessions.update(session.id, { pending_totp_secret: null });
        return { recoveryCodes: codes };
      },
    }),
  ];
}
