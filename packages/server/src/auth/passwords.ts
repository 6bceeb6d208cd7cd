import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { TooManyRequestsError } from '@holdfast/core';
import { hash, verify } from '@node-rs/argon2';

/** Algorithm.Argon2id of @node-rs/argon2 (a const enum, which isolated modules cannot import). */
const ARGON2ID = 2;

/**
 * argon2id with OWASP's minimum: 19 MiB memory, 2 iterations, 1 lane. Parameters are stored in the
 * PHC string, so they can be raised later without invalidating existing hashes.
 */
export const ARGON2_PARAMS = {
  algorithm: ARGON2ID,
  memoryCost: 19_456,
  timeCost: 2,
  parallelism: 1,
} as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password.normalize('NFC'), ARGON2_PARAMS);
}

/**
 * A hash of a random password, verified against when the user name is unknown, so that an unknown
 * user costs the same time as a wrong password.
 */
let dummyHash: Promise<string> | null = null;
function dummy(): Promise<string> {
  dummyHash ??= hash(randomBytes(24).toString('base64url'), ARGON2_PARAMS);
  return dummyHash;
}

/**
 * At most this many password checks run at once (each takes 19 MiB and a core for tens of ms), and
 * at most QUEUE_LIMIT wait: a flood of sign-ins then queues or is refused at once instead of
 * starving the event loop that serves everyone already signed in.
 */
const CONCURRENT_HASHES = Math.max(1, Math.min(4, availableParallelism() - 1));
const QUEUE_LIMIT = 32;
let running = 0;
const waiting: (() => void)[] = [];

async function withHashSlot<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= CONCURRENT_HASHES) {
    if (waiting.length >= QUEUE_LIMIT)
      throw new TooManyRequestsError('too many sign-ins at once: try again in a moment', 1);
    await new Promise<void>((resolve) => waiting.push(resolve));
  } else {
    running++;
  }
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

/** Verifies `password` against `phc`, or against a dummy hash when there is no account. */
export function verifyPassword(phc: string | null, password: string): Promise<boolean> {
  return withHashSlot(() => verifyUnlimited(phc, password));
}

async function verifyUnlimited(phc: string | null, password: string): Promise<boolean> {
  if (phc === null) {
    await verify(await dummy(), password.normalize('NFC'));
    return false;
  }
  try {
    return await verify(phc, password.normalize('NFC'));
  } catch {
    return false;
  }
}

/** Warm the dummy hash at start so the first unknown-user attempt is not faster than the rest. */
export async function warmPasswordHashing(): Promise<void> {
  await dummy();
}

/**
 * Every failed password step answers no sooner than this after the request began. Both paths do the
 * same argon2 work (the dummy hash), but a known name also costs a ledger read and an audit append:
 * without a floor, the difference (tens of milliseconds) tells an attacker which names exist.
 */
export const SIGN_IN_FAILURE_FLOOR_MS = 200;

/** Waits until SIGN_IN_FAILURE_FLOOR_MS after `startedMs` (a performance.now() reading). */
export async function equalFailureTime(startedMs: number): Promise<void> {
  const left = SIGN_IN_FAILURE_FLOOR_MS - (performance.now() - startedMs);
  if (left > 0) await new Promise((resolve) => setTimeout(resolve, left));
}
