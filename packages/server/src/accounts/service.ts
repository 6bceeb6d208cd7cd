import { createHash, randomBytes, randomUUID } from 'node:crypto';
import {
  ConflictError,
  ForbiddenError,
  rolesReadingConfidences,
  NotFoundError,
  passwordProblem,
  ValidationError,
  type Role,
} from '@holdfast/core';
import { isBreachedPassword } from '../auth/breached.ts';
import { hashPassword } from '../auth/passwords.ts';
import type { SessionStore } from '../auth/sessions.ts';
import { actorOf, type RequestContext } from '../http/context.ts';
import { CommitCache } from '../ledger/commit-cache.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Db, Store, Tx } from '../store/store.ts';
import type { ProviderKeys } from '../node/provider-keys.ts';
import { checkedUserFacts, sealContext } from './checked.ts';
import { accountsDb, toUserRecord, type UserRecord, type UsersTable } from './projection.ts';

export interface NewUser {
  username: string;
  displayName: string;
  roles: Role[];
  siteIds: string[];
  password: string;
  /** Why: recorded when the user is given a clinical role. */
  reason?: string;
  /** Refuse a clinical role without a reason (an administrator's request or command; not seeding). */
  requireClinicalReason?: boolean;
}

/**
 * A clinical role (one that reads clinical notes or safeguarding text: core's `rolesReadingConfidences`)
 * newly granted (not in `before`) needs a reason of at least 3 characters.
 */
export function requireClinicalReason(
  roles: readonly Role[],
  before: readonly Role[],
  reason?: string,
): Role[] {
  const granted = rolesReadingConfidences(roles).filter((r) => !before.includes(r));
  const why = reason?.trim();
  if (granted.length > 0 && (!why || why.length < 3))
    throw new ValidationError([
      {
        path: 'reason',
        message: `say why this user needs the clinical role ${granted.join(', ')} (at least 3 characters)`,
      },
    ]);
  return granted;
}

/** A one-time enrolment code after a second-factor reset: 16 characters in four groups. */
export function newEnrolmentCode(): string {
  const raw = randomBytes(12).toString('base64url').replace(/[-_]/g, 'X').slice(0, 16).toUpperCase();
  return raw.match(/.{4}/g)!.join('-');
}

export function hashEnrolmentCode(code: string): string {
  return createHash('sha256').update(code.replace(/[\s-]/g, '').toUpperCase()).digest('hex');
}

/** A temporary password an administrator hands over: must be changed at the next sign-in. */
export function newTemporaryPassword(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * Provider organisation and staff accounts. Every method is scoped to the caller's tenant; a
 * provider admin can manage only their own provider's users and sites.
 *
 * `tenantFilter` exists for one test: with it off, queries omit their tenant condition, and on
 * PostgreSQL row-level security alone must keep providers apart.
 */
export class AccountsService {
  constructor(
    private readonly store: Store,
    private readonly ledger: Ledger,
    private readonly sessions: SessionStore,
    /** Seals password hashes and TOTP secrets into account events; opens them when checked. */
    private readonly keys: ProviderKeys,
    readonly options: { tenantFilter: boolean } = { tenantFilter: true },
  ) {
    this.users = new CommitCache(ledger, (type) => type.startsWith('user.'));
  }

  /**
   * Users as `get` checks them, kept until a commit (here or imported) brings any `user.` event of
   * their provider: every signed-in request re-reads its user, and between account changes the
   * answer is the same (the fold of the same ledger events, already re-hashed when read).
   */
  private readonly users: CommitCache<UserRecord | null>;

  /**
   * Sign-in lookup by user name, before any tenant is known (system access). User names are unique
   * within a provider, not across the node: `provider` (a tenant id) picks the provider; without it,
   * a name held by one provider only is that user, and a name held by several is the one whose
   * provider the name ends in (`…@<provider>`), else nobody (the user must name their provider).
   */
  async findForSignIn(username: string, provider?: string): Promise<UserRecord | null> {
    const folded = username.trim().toLowerCase();
    if (folded.length === 0 || folded.length > 64) return null;
    let q = accountsDb(this.store.db).selectFrom('users').selectAll().where('username', '=', folded);
    if (provider !== undefined) q = q.where('tenant', '=', provider);
    const rows = await q.limit(50).execute();
    const suffix = folded.slice(folded.lastIndexOf('@') + 1);
    const row = rows.length === 1 ? rows[0] : rows.find((r) => r.tenant === suffix);
    if (!row) return null;
    const keys = await accountsDb(this.store.db)
      .selectFrom('passkeys')
      .select(['credential_id', 'public_key'])
      .where('tenant', '=', row.tenant)
      .where('user_id', '=', row.user_id)
      .execute();
    const user = await this.checked(this.store.db, row, keys);
    // A user name written into another user's row does not lead to that user.
    return user && user.username === folded ? user : null;
  }

  /**
   * A user of the caller's tenant; the session's user is looked up on every request, and read again
   * after any account event of the provider commits (so disabling or changing roles applies at once).
   */
  async get(tenant: string, userId: string): Promise<UserRecord | null> {
    return this.users.get(tenant, userId, () => this.read(tenant, userId));
  }

  private async read(tenant: string, userId: string): Promise<UserRecord | null> {
    return this.store.withTenant(tenant, async (trx) => {
      let q = accountsDb(trx).selectFrom('users').selectAll().where('user_id', '=', userId);
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      const row = await q.executeTakeFirst();
      if (!row) return null;
      const keys = await accountsDb(trx)
        .selectFrom('passkeys')
        .select(['credential_id', 'public_key'])
        .where('user_id', '=', userId)
        .where('tenant', '=', tenant)
        .execute();
      return this.checked(trx, row, keys);
    });
  }

  /**
   * The user as the table shows them, with every field that a security decision rests on (roles,
   * sites, disabled, password hash, second factors, user name) replaced by the fold of their own
   * ledger events: the table is a read model and can be edited; the ledger is hashed and signed.
   */
  private async checked(
    db: Db | Tx,
    row: UsersTable,
    keys: readonly { credential_id: string; public_key: string }[],
  ): Promise<UserRecord | null> {
    const facts = await checkedUserFacts(db, this.ledger, row.tenant, row.user_id, this.keys);
    if (!facts) return null;
    const passkeys = keys.filter((k) => facts.passkeys.get(k.credential_id) === k.public_key).length;
    return {
      ...toUserRecord(row, passkeys),
      username: facts.username,
      roles: facts.roles,
      siteIds: facts.siteIds,
      disabled: facts.disabled,
      passwordHash: facts.passwordHash,
      totpSecret: facts.totpSecret,
      recoveryCodeHashes: facts.recoveryCodeHashes,
      mustChangePassword: facts.mustChangePassword,
      enrolmentGate: facts.enrolmentGate,
    };
  }

  async list(tenant: string): Promise<UserRecord[]> {
    return this.store.withTenant(tenant, async (trx) => {
      let q = accountsDb(trx).selectFrom('users').selectAll().orderBy('username');
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      const rows = await q.execute();
      let pk = accountsDb(trx).selectFrom('passkeys').select(['user_id']);
      if (this.options.tenantFilter) pk = pk.where('tenant', '=', tenant);
      const keys = await pk.execute();
      return rows.map((r) => toUserRecord(r, keys.filter((k) => k.user_id === r.user_id).length));
    });
  }

  /**
   * Display names of staff, to say who did what in a case's record. Names are not what access rests
   * on, so they are read from the projection, not re-folded from the user's events.
   */
  async displayNames(tenant: string, userIds: readonly string[]): Promise<Map<string, string>> {
    if (userIds.length === 0) return new Map();
    return this.store.withTenant(tenant, async (trx) => {
      let q = accountsDb(trx)
        .selectFrom('users')
        .select(['user_id', 'display_name'])
        .where('user_id', 'in', [...new Set(userIds)]);
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      return new Map((await q.execute()).map((r) => [r.user_id, r.display_name]));
    });
  }

  async sites(tenant: string): Promise<{ siteId: string; name: string }[]> {
    return this.store.withTenant(tenant, async (trx) => {
      let q = accountsDb(trx).selectFrom('sites').select(['site_id', 'name']).orderBy('name');
      if (this.options.tenantFilter) q = q.where('tenant', '=', tenant);
      return (await q.execute()).map((r) => ({ siteId: r.site_id, name: r.name }));
    });
  }

  async createTenant(tenant: string, name: string, actor: string): Promise<void> {
    await this.ledger.append([{ tenant, type: 'tenant.created', actor, payload: { name } }]);
  }

  async createSite(tenant: string, name: string, actor: string): Promise<string> {
    const siteId = randomUUID();
    await this.ledger.append([{ tenant, type: 'site.created', actor, payload: { siteId, name } }]);
    return siteId;
  }

  /** The provider's own name, which no password may be. */
  async providerName(tenant: string): Promise<string | null> {
    return this.store.withTenant(tenant, async (trx) => {
      const row = await accountsDb(trx)
        .selectFrom('tenants')
        .select('name')
        .where('tenant', '=', tenant)
        .executeTakeFirst();
      return row?.name ?? null;
    });
  }

  /** The password policy: length, the breached-password corpus, and no user, person or provider name. */
  async checkPassword(
    tenant: string,
    password: string,
    who: { username: string; displayName: string },
  ): Promise<void> {
    const problem = passwordProblem(password, {
      ...who,
      providerName: (await this.providerName(tenant)) ?? undefined,
      breached: isBreachedPassword,
    });
    if (problem) throw new ValidationError([problem]);
  }

  /** Creates a user with an initial password; they enrol a second factor at first sign-in. */
  async create(tenant: string, fields: NewUser, actor: string): Promise<UserRecord> {
    const username = fields.username.trim().toLowerCase();
    await this.checkPassword(tenant, fields.password, { username, displayName: fields.displayName });
    const reason = fields.reason?.trim();
    if (fields.requireClinicalReason) requireClinicalReason(fields.roles, [], reason);
    const known = new Set((await this.sites(tenant)).map((s) => s.siteId));
    const unknown = fields.siteIds.findIndex((s) => !known.has(s));
    if (unknown >= 0)
      throw new ValidationError([{ path: `siteIds.${unknown}`, message: 'is not a site of your provider' }]);
    await this.checkNameFree(tenant, username);
    const userId = randomUUID();
    await this.ledger.append([
      {
        tenant,
        type: 'user.created',
        actor,
        payload: {
          userId,
          username,
          displayName: fields.displayName,
          roles: fields.roles,
          siteIds: fields.siteIds,
          passwordHashSealed: this.keys.seal(
            tenant,
            await hashPassword(fields.password),
            sealContext(userId, 'passwordHash'),
          ),
          ...(reason && reason.length >= 3 && rolesReadingConfidences(fields.roles).length > 0
            ? { reason }
            : {}),
        },
      },
    ]);
    return (await this.get(tenant, userId))!;
  }

  /**
   * Clinical roles granted in the last `days` days, with who granted them and why: the alert other
   * administrators see on their Users and shift screens (and the audit trail keeps for good).
   */
  async clinicalGrants(
    tenant: string,
    sinceMs: number,
  ): Promise<{ at: string; userId: string; roles: Role[]; reason: string | null; by: string }[]> {
    const rows = await this.store.withTenant(tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select(['hlc', 'type', 'actor', 'payload'])
        .where('tenant', '=', tenant)
        .where('subject', '>=', 'user:')
        .where('subject', '<', 'user;')
        .where('type', 'in', ['user.created', 'user.roles_changed'])
        .where('hlc', '>=', `${String(sinceMs).padStart(15, '0')}-000000`)
        .orderBy('hlc', 'desc')
        .limit(200)
        .execute(),
    );
    return rows.flatMap((r) => {
      const p = (typeof r.payload === 'string' ? JSON.parse(r.payload) : r.payload) as {
        userId: string;
        roles: Role[];
        reason?: string;
      };
      // Only grants that recorded a reason: those are the ones that gave a clinical role.
      if (!p.reason || rolesReadingConfidences(p.roles).length === 0) return [];
      return [
        {
          at: new Date(Number(r.hlc.slice(0, 15))).toISOString(),
          userId: p.userId,
          roles: rolesReadingConfidences(p.roles),
          reason: p.reason,
          by: r.actor,
        },
      ];
    });
  }

  /**
   * A user name is unique within its provider (a name at another provider is neither refused nor


   */
  private async checkNameFree(tenant: string, username: string): Promise<void> {
    const at = username.lastIndexOf('@');
    const suffix = at >= 0 ? username.slice(at + 1) : null;
    // The words name no provider (the answer must not hand one provider's admin another's id).
    if (suffix !== null && suffix !== tenant && (await this.providerExists(suffix)))
      throw new ValidationError([
        { path: 'username', message: "must not end in another provider's @ part: choose another name" },
      ]);
    const taken = await this.store.withTenant(tenant, (trx) =>
      accountsDb(trx)
        .selectFrom('users')
        .select('user_id')
        .where('tenant', '=', tenant)
        .where('username', '=', username)
        .executeTakeFirst(),
    );
    if (taken) throw new ConflictError(`the user name ${username} is taken`);
  }

  /** Whether `tenant` is a provider on this node. */
  async providerExists(tenant: string): Promise<boolean> {
    const row = await accountsDb(this.store.db)
      .selectFrom('tenants')
      .select('tenant')
      .where('tenant', '=', tenant)
      .executeTakeFirst();
    return row !== undefined;
  }

  private async mustGet(ctx: Pick<RequestContext, 'tenant'>, userId: string): Promise<UserRecord> {
    const user = await this.get(ctx.tenant, userId);
    if (!user) throw new NotFoundError('user');
    return user;
  }

  /**
   * Nobody changes their own roles (an administrator could otherwise make themselves a clinician and
   * read clinical notes). Granting a clinical role the user did not have needs a recorded reason;
   * the event, with its reason, is in the audit trail and on the other administrators' alerts.
   */
  async changeRoles(
    ctx: RequestContext,
    userId: string,
    roles: Role[],
    siteIds: string[],
    reason?: string,
  ): Promise<UserRecord> {
    if (userId === ctx.userId)
      throw new ForbiddenError('nobody may change their own roles: ask another administrator');
    const before = await this.mustGet(ctx, userId);
    const granted = requireClinicalReason(roles, before.roles, reason);
    const why = reason?.trim();
    const known = new Set((await this.sites(ctx.tenant)).map((s) => s.siteId));
    const unknown = siteIds.findIndex((s) => !known.has(s));
    if (unknown >= 0)
      throw new ValidationError([{ path: `siteIds.${unknown}`, message: 'is not a site of your provider' }]);
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'user.roles_changed',
        actor: actorOf(ctx),
        payload: { userId, roles, siteIds, ...(granted.length > 0 && why ? { reason: why } : {}) },
      },
    ]);
    return (await this.get(ctx.tenant, userId))!;
  }

  async disable(ctx: { tenant: string; actor: string }, userId: string, reason: string): Promise<void> {
    await this.mustGet(ctx, userId);
    await this.ledger.append([
      { tenant: ctx.tenant, type: 'user.disabled', actor: ctx.actor, payload: { userId, reason } },
    ]);
    await this.sessions.revokeAllFor(ctx.tenant, userId);
  }

  async enable(ctx: { tenant: string; actor: string }, userId: string): Promise<void> {
    await this.mustGet(ctx, userId);
    await this.ledger.append([
      { tenant: ctx.tenant, type: 'user.enabled', actor: ctx.actor, payload: { userId } },
    ]);
  }

  /**
   * Removes every second factor and ends the user's sessions. Returns a one-time enrolment code,
   * shown once to the administrator to hand over out of band: the password alone enrols no new
   * factor, the code (or one of the user's old recovery codes) must be given first.
   */
  async resetMfa(
    ctx: { tenant: string; actor: string },
    userId: string,
    reason: string,
  ): Promise<{ enrolmentCode: string }> {
    await this.mustGet(ctx, userId);
    const enrolmentCode = newEnrolmentCode();
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'user.mfa_reset',
        actor: ctx.actor,
        payload: { userId, reason, enrolmentCodeHash: hashEnrolmentCode(enrolmentCode) },
      },
    ]);
    await this.sessions.revokeAllFor(ctx.tenant, userId);
    return { enrolmentCode };
  }

  /**
   * Sets a password under the policy. `temporary`: set by an administrator, to be changed at the
   * next sign-in (and every session of the user ends).
   */
  async setPassword(
    ctx: { tenant: string; actor: string },
    user: UserRecord,
    password: string,
    options: { temporary?: boolean } = {},
  ): Promise<void> {
    await this.checkPassword(ctx.tenant, password, {
      username: user.username,
      displayName: user.displayName,
    });
    await this.ledger.append([
      {
        tenant: ctx.tenant,
        type: 'user.password_set',
        actor: ctx.actor,
        payload: {
          userId: user.userId,
          passwordHashSealed: this.keys.seal(
            ctx.tenant,
            await hashPassword(password),
            sealContext(user.userId, 'passwordHash'),
          ),
          ...(options.temporary ? { mustChange: true } : {}),
        },
      },
    ]);
    if (options.temporary) await this.sessions.revokeAllFor(ctx.tenant, user.userId);
  }

  /** An administrator's reset: a random temporary password (returned once) to change at next sign-in. */
  async resetPassword(ctx: { tenant: string; actor: string }, userId: string): Promise<{ password: string }> {
    const user = await this.mustGet(ctx, userId);
    let password = newTemporaryPassword();
    // A random 16-character password is never in the corpus; loop only for the theoretical case.
    while (passwordProblem(password, { username: user.username, displayName: user.displayName }))
      password = newTemporaryPassword();
    await this.setPassword(ctx, user, password, { temporary: true });
    return { password };
  }

  async enrolTotp(user: UserRecord, secret: string, recoveryCodeHashes: string[]): Promise<void> {
    await this.ledger.append([
      {
        tenant: user.tenant,
        type: 'user.totp_enrolled',
        actor: `user:${user.userId}`,
        payload: {
          userId: user.userId,
          secretSealed: this.keys.seal(user.tenant, secret, sealContext(user.userId, 'totpSecret')),
          recoveryCodeHashes,
        },
      },
    ]);
  }

  async useRecoveryCode(user: UserRecord, codeHash: string): Promise<void> {
    await this.ledger.append([
      {
        tenant: user.tenant,
        type: 'user.recovery_code_used',
        actor: `user:${user.userId}`,
        payload: { userId: user.userId, codeHash },
      },
    ]);
  }

  async registerPasskey(
    user: UserRecord,
    passkey: {
      credentialId: string;
      publicKey: string;
      counter: number;
      transports: string[];
      label: string;
    },
  ): Promise<void> {
    await this.ledger.append([
      {
        tenant: user.tenant,
        type: 'user.passkey_registered',
        actor: `user:${user.userId}`,
        payload: { userId: user.userId, ...passkey },
      },
    ]);
  }

  async recordPasskeyCounter(user: UserRecord, credentialId: string, counter: number): Promise<void> {
    await this.ledger.append([
      {
        tenant: user.tenant,
        type: 'user.passkey_used',
        actor: `user:${user.userId}`,
        payload: { userId: user.userId, credentialId, counter },
      },
    ]);
  }

  async passkeys(
    tenant: string,
    userId: string,
  ): Promise<{ credentialId: string; publicKey: string; counter: number; transports: string[] }[]> {
    const rows = await accountsDb(this.store.db)
      .selectFrom('passkeys')
      .selectAll()
      .where('tenant', '=', tenant)
      .where('user_id', '=', userId)
      .execute();
    // Only passkeys the ledger registered to this user (a row planted in the table is not one).
    const registered = (await checkedUserFacts(this.store.db, this.ledger, tenant, userId, this.keys))
      ?.passkeys;
    return rows
      .filter((r) => registered?.get(r.credential_id) === r.public_key)
      .map((r) => ({
        credentialId: r.credential_id,
        publicKey: r.public_key,
        counter: Number(r.counter),
        transports: JSON.parse(r.transports) as string[],
      }));
  }
}
