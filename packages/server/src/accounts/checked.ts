import { canonicalBody, type LedgerCrypto, type EventRegistry, type Role } from '@holdfast/core';
import { LedgerIntegrityError } from '../ledger/ledger.ts';
import { rowToStored } from '../ledger/rows.ts';
import type { ProviderKeys } from '../node/provider-keys.ts';
import type { Db, Tx } from '../store/store.ts';

/**
 * What authorisation and sign-in decide on, folded straight from the user's own ledger events
 * rather than read from the `users` table: a direct `UPDATE users SET roles = …` (or a swapped
 * password hash, a planted passkey row) grants nothing, because the table is never believed for these.
 *
 * The events are found by the (unhashed) subject column but only counted when their payload names
 * this user, and each one is re-hashed: an edited account event is refused here at once. Hiding an
 * event by editing its subject column is caught by `verify --projections` and the periodic check.
 * A user has a handful of these events (`user.passkey_used`, which grows with every sign-in, is
 * not read), so this costs one indexed query and a few SHA-256s per request.
 */
export interface CheckedUserFacts {
  username: string;
  roles: Role[];
  siteIds: string[];
  disabled: boolean;
  passwordHash: string;
  totpSecret: string | null;
  recoveryCodeHashes: string[];
  /** credential id → public key, of passkeys registered by ledger events and not since reset. */
  passkeys: Map<string, string>;
  /** The password was set by an administrator: change it before the second factor. */
  mustChangePassword: boolean;
  /**
   * Set by a second-factor reset that issued an enrolment code, until a new factor is enrolled: the
   * code's hash and the recovery codes the user had before the reset (either unlocks enrolment).
   */
  enrolmentGate: EnrolmentGate | null;
}

export interface EnrolmentGate {
  codeHash: string;
  recoveryCodeHashes: string[];
}

/** Version-2 account events carry sealed secrets: opened here into the version-1 field names. */
function unseal(keys: ProviderKeys, tenant: string, userId: string, p: Record<string, unknown>): void {
  if (typeof p.passwordHashSealed === 'string')
    p.passwordHash = keys.open(tenant, p.passwordHashSealed, sealContext(userId, 'passwordHash'));
  if (typeof p.secretSealed === 'string')
    p.secret = keys.open(tenant, p.secretSealed, sealContext(userId, 'totpSecret'));
}

/** What a sealed secret is bound to: moved to another user or field, it does not open. */
export function sealContext(userId: string, field: 'passwordHash' | 'totpSecret'): string {
  return `user:${userId}\u0000${field}`;
}

const SECURITY_EVENT_TYPES = [
  'user.created',
  'user.roles_changed',
  'user.password_set',
  'user.disabled',
  'user.enabled',
  'user.totp_enrolled',
  'user.recovery_code_used',
  'user.passkey_registered',
  'user.mfa_reset',
];

export async function checkedUserFacts(
  db: Db | Tx,
  deps: { crypto: LedgerCrypto; registry: EventRegistry },
  tenant: string,
  userId: string,
  /** Opens the password hash and TOTP secret of version-2 events (sealed under the provider key). */
  keys: ProviderKeys,
): Promise<CheckedUserFacts | null> {
  const subject = `user:${userId}`;
  const rows = await db
    .selectFrom('ledger_events')
    .selectAll()
    .where('tenant', '=', tenant)
    .where('subject', '=', subject)
    .where('type', 'in', SECURITY_EVENT_TYPES)
    .orderBy('hlc')
    .orderBy('node')
    .orderBy('seq')
    .execute();
  let facts: CheckedUserFacts | null = null;
  for (const row of rows) {
    const e = rowToStored(row);
    if (deps.crypto.sha256Hex(canonicalBody(e)) !== e.hash) {
      throw new LedgerIntegrityError(
        `account event ${e.tenant} / ${e.node} seq ${e.seq} does not match its hash: refusing to authorise from it (run holdfast verify)`,
      );
    }
    const p = JSON.parse(e.payloadJson) as Record<string, unknown>;
    if (deps.registry.subjectOf(e.type, e.v, p) !== subject) continue;
    if (e.v >= 2) unseal(keys, tenant, userId, p);
    if (e.type === 'user.created') {
      facts = {
        username: String(p.username),
        roles: p.roles as Role[],
        siteIds: p.siteIds as string[],
        disabled: false,
        passwordHash: String(p.passwordHash),
        totpSecret: null,
        recoveryCodeHashes: [],
        passkeys: new Map(),
        mustChangePassword: false,
        enrolmentGate: null,
      };
      continue;
    }
    if (!facts) continue;
    switch (e.type) {
      case 'user.roles_changed':
        facts.roles = p.roles as Role[];
        facts.siteIds = p.siteIds as string[];
        break;
      case 'user.password_set':
        facts.passwordHash = String(p.passwordHash);
        facts.mustChangePassword = p.mustChange === true;
        break;
      case 'user.disabled':
        facts.disabled = true;
        break;
      case 'user.enabled':
        facts.disabled = false;
        break;
      case 'user.totp_enrolled':
        facts.totpSecret = String(p.secret);
        facts.recoveryCodeHashes = p.recoveryCodeHashes as string[];
        facts.enrolmentGate = null;
        break;
      case 'user.recovery_code_used':
        facts.recoveryCodeHashes = facts.recoveryCodeHashes.filter((h) => h !== p.codeHash);
        break;
      case 'user.passkey_registered':
        if (!facts.passkeys.has(String(p.credentialId)))
          facts.passkeys.set(String(p.credentialId), String(p.publicKey));
        facts.enrolmentGate = null;
        break;
      case 'user.mfa_reset':
        facts.enrolmentGate =
          typeof p.enrolmentCodeHash === 'string'
            ? {
                codeHash: p.enrolmentCodeHash,
                // A second reset keeps the codes of before the first: the user never saw newer ones.
                recoveryCodeHashes: facts.enrolmentGate?.recoveryCodeHashes ?? facts.recoveryCodeHashes,
              }
            : null;
        facts.totpSecret = null;
        facts.recoveryCodeHashes = [];
        facts.passkeys.clear();
        break;
    }
  }
  return facts;
}
