import { hash } from '@node-rs/argon2';
import { vi } from 'vitest';
import type * as Passwords from '../../src/auth/passwords.ts';

/**
 * Cheap password hashing for tests that are not about hashing (route sweeps, tenant isolation,
 * permissions, passkeys). Every account a test app makes costs an argon2id hash, and every TOTP
 * enrolment ten more (its recovery codes): at OWASP's cost (19 MiB, 2 passes) a seeded world spends
 * seconds of CPU on them. Here they are still argon2id PHC strings, made and checked by the same code
 * (`verify` reads the cost from the string), at the smallest cost: 64 KiB, one pass.
 *
 * Use in a test file, before anything else:
 *
 *     vi.mock('../../src/auth/passwords.ts', async () =>
 *       (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
 *     );
 *
 * Tests about hashing itself (its cost, its timing, the stored format) keep the real parameters:
 * test/http/auth.test.ts, sign-in-timing.test.ts, secrets-at-rest.test.ts. Within a file that mocks,
 * `withRealPasswordHashing` makes the hashes of one test at the real cost again.
 */
export const CHEAP_ARGON2_PARAMS = { memoryCost: 64, timeCost: 1 } as const;

let real = false;

export async function cheapPasswordHashing(): Promise<typeof Passwords> {
  const actual = await vi.importActual<typeof Passwords>('../../src/auth/passwords.ts');
  const cheap = { ...actual.ARGON2_PARAMS, ...CHEAP_ARGON2_PARAMS };
  return {
    ...actual,
    hashPassword: (password: string) =>
      real ? actual.hashPassword(password) : hash(password.normalize('NFC'), cheap),
  };
}

/** Runs `fn` with passwords and recovery codes hashed at the real (production) cost. */
export async function withRealPasswordHashing<T>(fn: () => Promise<T>): Promise<T> {
  real = true;
  try {
    return await fn();
  } finally {
    real = false;
  }
}
