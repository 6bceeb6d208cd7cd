import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { PERMISSIONS, ROLES } from './roles.ts';

/**
 * Account events. Users, sites and their credentials live in the ledger, so every node of a provider
 * can sign its staff in with the hub gone. Sessions are node-local and not in the ledger.
 */
const id = z.string().uuid();
const username = z
  .string()
  .min(3)
  .max(64)
  .regex(/^[a-z0-9][a-z0-9._@-]*$/, 'lower-case letters, digits and . _ @ - only');
const displayName = z.string().trim().min(1).max(100);
const roles = z.array(z.enum(ROLES)).min(1).max(ROLES.length);
const siteIds = z.array(id).max(50);
/** An argon2id PHC string. */
const passwordHash = z.string().startsWith('$argon2id$').max(300);
/**
 * A secret sealed under the provider's key (AES-256-GCM), as `hfs1.<key id>.<iv>.<ciphertext>.<tag>`
 * in base64url: the ledger (and every store and site it reaches) holds only this; the key is a file
 * beside node.key. Version 2 of the account events carries these; version 1 (plain) stays readable.
 */
const sealed = z
  .string()
  .regex(/^hfs1\.[a-z0-9]{4,32}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{1,600}\.[A-Za-z0-9_-]{22}$/);
/** A recovery code's argon2id hash (version 2; version 1 kept a plain SHA-256). */
const recoveryCodeHash = z.string().startsWith('$argon2id$').max(300);

export const tenantCreated = defineEventType({
  type: 'tenant.created',
  v: 1,
  schema: z.strictObject({ name: z.string().trim().min(1).max(200), odsCode: z.string().max(10).optional() }),
  subjectOf: () => 'tenant',
});

export const siteCreated = defineEventType({
  type: 'site.created',
  v: 1,
  schema: z.strictObject({
    siteId: id,
    name: z.string().trim().min(1).max(200),
    odsCode: z.string().max(10).optional(),
  }),
  subjectOf: (p) => `site:${p.siteId}`,
});

export const userCreated = defineEventType({
  type: 'user.created',
  v: 1,
  schema: z.strictObject({
    userId: id,
    username,
    displayName,
    roles,
    siteIds,
    passwordHash,
    /** Why, when the new user is given a clinical role (required then, by the service). */
    reason: z.string().trim().min(3).max(500).optional(),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

/** Version 2: the password hash sealed under the provider key. */
export const userCreatedV2 = defineEventType({
  type: 'user.created',
  v: 2,
  schema: z.strictObject({
    userId: id,
    username,
    displayName,
    roles,
    siteIds,
    passwordHashSealed: sealed,
    /** Why, when the new user is given a clinical role (required then, by the service). */
    reason: z.string().trim().min(3).max(500).optional(),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userRolesChanged = defineEventType({
  type: 'user.roles_changed',
  v: 1,
  schema: z.strictObject({
    userId: id,
    roles,
    siteIds,
    /** Why, when a clinical role is granted (required then, by the service). */
    reason: z.string().trim().min(3).max(500).optional(),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userPasswordSet = defineEventType({
  type: 'user.password_set',
  v: 1,
  schema: z.strictObject({
    userId: id,
    passwordHash,
    /** A temporary password set by an administrator: it must be changed at the next sign-in. */
    mustChange: z.boolean().optional(),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userPasswordSetV2 = defineEventType({
  type: 'user.password_set',
  v: 2,
  schema: z.strictObject({
    userId: id,
    passwordHashSealed: sealed,
    /** A temporary password set by an administrator: it must be changed at the next sign-in. */
    mustChange: z.boolean().optional(),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userDisabled = defineEventType({
  type: 'user.disabled',
  v: 1,
  schema: z.strictObject({ userId: id, reason: z.string().trim().min(3).max(500) }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userEnabled = defineEventType({
  type: 'user.enabled',
  v: 1,
  schema: z.strictObject({ userId: id }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userTotpEnrolled = defineEventType({
  type: 'user.totp_enrolled',
  v: 1,
  schema: z.strictObject({
    userId: id,
    secret: z.string().regex(/^[A-Z2-7]{32,64}$/),
    recoveryCodeHashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).length(10),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userRecoveryCodeUsed = defineEventType({
  type: 'user.recovery_code_used',
  v: 1,
  schema: z.strictObject({ userId: id, codeHash: z.string().regex(/^[0-9a-f]{64}$/) }),
  subjectOf: (p) => `user:${p.userId}`,
});

/** Version 2: the TOTP secret sealed under the provider key; recovery codes under argon2id. */
export const userTotpEnrolledV2 = defineEventType({
  type: 'user.totp_enrolled',
  v: 2,
  schema: z.strictObject({
    userId: id,
    secretSealed: sealed,
    recoveryCodeHashes: z.array(recoveryCodeHash).length(10),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userRecoveryCodeUsedV2 = defineEventType({
  type: 'user.recovery_code_used',
  v: 2,
  schema: z.strictObject({
    userId: id,
    codeHash: z.union([z.string().regex(/^[0-9a-f]{64}$/), recoveryCodeHash]),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userPasskeyRegistered = defineEventType({
  type: 'user.passkey_registered',
  v: 1,
  schema: z.strictObject({
    userId: id,
    credentialId: z.string().regex(/^[A-Za-z0-9_-]{16,1400}$/),
    publicKey: z.string().regex(/^[A-Za-z0-9_-]{16,2000}$/),
    counter: z.number().int().min(0),
    transports: z.array(z.string().max(20)).max(10),
    label: z.string().max(100),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

/** A passkey's signature counter after a sign-in; a counter that goes backwards reveals a clone. */
export const userPasskeyUsed = defineEventType({
  type: 'user.passkey_used',
  v: 1,
  schema: z.strictObject({
    userId: id,
    credentialId: z.string().regex(/^[A-Za-z0-9_-]{16,1400}$/),
    counter: z.number().int().min(0),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

export const userMfaReset = defineEventType({
  type: 'user.mfa_reset',
  v: 1,
  schema: z.strictObject({
    userId: id,
    reason: z.string().trim().min(3).max(500),
    /**
     * SHA-256 of the one-time enrolment code shown to the administrator: after a reset the password
     * alone enrols no new factor; the code (handed over out of band) or an old recovery code must.
     */
    enrolmentCodeHash: z
      .string()
      .regex(/^[0-9a-f]{64}$/)
      .optional(),
  }),
  subjectOf: (p) => `user:${p.userId}`,
});

/** Every sign-in attempt, successful or not. No password or code is ever recorded. */
export const auditSignIn = defineEventType({
  type: 'audit.sign_in',
  v: 1,
  schema: z.strictObject({
    /** Only when the user name matched an account; never the typed name of a failed attempt. */
    userId: id.optional(),
    step: z.enum(['password', 'totp', 'recovery_code', 'passkey', 'sign_out']),
    outcome: z.enum(['success', 'failure', 'throttled', 'locked']),
    address: z.string().max(64),
  }),
  subjectOf: (p) => (p.userId ? `audit-user:${p.userId}` : null),
});

/** A request refused for want of a permission. */
export const auditDenied = defineEventType({
  type: 'audit.denied',
  v: 1,
  schema: z.strictObject({
    userId: id,
    roles,
    siteIds,
    permission: z.enum(PERMISSIONS),
    route: z.string().max(200),
    /**
     * Repeats of the same denial coalesced into this one event (server/src/audit/denials.ts): how
     * many, and the first and last of them. Absent on a single denial.
     */
    count: z.number().int().min(1).optional(),
    firstAt: z.iso.datetime().optional(),
    lastAt: z.iso.datetime().optional(),
  }),
});

/** A read or write of patient data: who, in which role and site, what, and why. */
export const auditAccess = defineEventType({
  type: 'audit.access',
  v: 1,
  schema: z.strictObject({
    userId: id,
    roles,
    siteIds,
    action: z.enum(['read', 'write', 'search']),
    resourceType: z.enum(['patient', 'case']),
    resourceId: id.optional(),
    /** Stated reason: required for break-glass access. */
    reason: z.string().max(500).optional(),
    breakGlass: z.boolean(),
    fields: z.array(z.string().max(60)).max(50),
  }),
});

/**
 * A downtime pack was made: patient data of every listed case left the system on paper. Made for a
 * signed-in user (`request`), by an operator's command (`command`) or by the node's timer (`timer`).
 */
export const auditDowntimePack = defineEventType({
  type: 'audit.downtime_pack',
  v: 1,
  schema: z.strictObject({
    trigger: z.enum(['request', 'command', 'timer']),
    userId: id.optional(),
    roles: roles.optional(),
    /** The operator's login name, for a command. */
    operator: z.string().max(100).optional(),
    siteIds: siteIds,
    caseIds: z.array(id).max(10_000),
  }),
});

/**
 * An auditor exported the audit trail (CSV or PDF): names and NHS numbers left the system in a file.
 * The filters are recorded as ids (never the NHS number or name typed), with how many rows went out.
 */
export const auditExport = defineEventType({
  type: 'audit.export',
  v: 1,
  schema: z.strictObject({
    userId: id,
    roles,
    siteIds,
    format: z.enum(['csv', 'pdf']),
    rows: z.number().int().min(0),
    filters: z.strictObject({
      patientIds: z.array(id).max(10).optional(),
      userIds: z.array(id).max(50).optional(),
      from: z.string().max(40).optional(),
      to: z.string().max(40).optional(),
      breakGlass: z.boolean().optional(),
    }),
  }),
});

export const ACCOUNT_EVENT_TYPES = [
  tenantCreated,
  siteCreated,
  userCreated,
  userCreatedV2,
  userRolesChanged,
  userPasswordSet,
  userPasswordSetV2,
  userDisabled,
  userEnabled,
  userTotpEnrolled,
  userTotpEnrolledV2,
  userRecoveryCodeUsed,
  userRecoveryCodeUsedV2,
  userPasskeyRegistered,
  userPasskeyUsed,
  userMfaReset,
  auditSignIn,
  auditDenied,
  auditAccess,
  auditDowntimePack,
  auditExport,
];
