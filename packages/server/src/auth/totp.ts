import { createHash, randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';
import { hashPassword, verifyPassword } from './passwords.ts';

/** RFC 6238 TOTP: SHA-1, 6 digits, 30 s steps, accepting one step either side of server time. */
export const TOTP_PERIOD_S = 30;
export const TOTP_WINDOW = 1;

export function newTotpSecret(): string {
  return new Secret({ size: 20 }).base32;
}

export function totpUri(secret: string, account: string, issuer: string): string {
  return new TOTP({
    issuer,
    label: account,
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: TOTP_PERIOD_S,
  }).toString();
}

/** The time step the code belongs to, or null if it matches no step within the window. */
export function matchTotp(secret: string, code: string, nowMs: number): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const delta = TOTP.validate({
    token: code,
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: TOTP_PERIOD_S,
    timestamp: nowMs,
    window: TOTP_WINDOW,
  });
  if (delta === null) return null;
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_S) + delta;
}

/** A code for a given time; used by tests and the demo tooling. */
export function totpCode(secret: string, nowMs: number): string {
  return TOTP.generate({
    secret: Secret.fromBase32(secret),
    algorithm: 'SHA1',
    digits: 6,
    period: TOTP_PERIOD_S,
    timestamp: nowMs,
  });
}

/** Ten single-use recovery codes (50 bits each), shown once; only their argon2id hashes are kept. */
export function newRecoveryCodes(): string[] {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  return Array.from({ length: 10 }, () => {
    const bytes = randomBytes(10);
    const chars = [...bytes].map((b) => alphabet[b % alphabet.length]).join('');
    return `${chars.slice(0, 5)}-${chars.slice(5, 10)}`;
  });
}

/** The plain SHA-256 that version-1 enrolments kept (still matched, never written any more). */
export function legacyRecoveryCodeHash(code: string): string {
  return createHash('sha256').update(normaliseRecoveryCode(code)).digest('hex');
}

function normaliseRecoveryCode(code: string): string {
  return code.trim().toLowerCase();
}

/**
 * Recovery codes are kept as argon2id hashes, as passwords are: a copy of the ledger does not give
 * them away to a brute force over their 50 bits the way a plain SHA-256 would.
 */
export function hashRecoveryCodes(codes: readonly string[]): Promise<string[]> {
  return Promise.all(codes.map((c) => hashPassword(normaliseRecoveryCode(c))));
}

/** The stored hash `code` matches (argon2id, or a version-1 SHA-256), or null. */
export async function matchRecoveryCode(code: string, hashes: readonly string[]): Promise<string | null> {
  const plain = normaliseRecoveryCode(code);
  const legacy = legacyRecoveryCodeHash(plain);
  for (const h of hashes) {
    if (h.startsWith('$argon2') ? await verifyPassword(h, plain) : h === legacy) return h;
  }
  return null;
}
