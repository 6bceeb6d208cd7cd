import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { OWNER_FILE_MODE, refuseIfReadableByOthers } from './file-modes.ts';

/**
 * Provider keys: one AES-256 key (or several, after a rotation) per provider this node serves, kept
 * in `provider-keys.json` beside `node.key` (mode 0600, never in the database). Account events seal
 * password hashes and TOTP secrets under the provider's current key (`hfs1.<key id>.<iv>.<ct>.<tag>`,
 * AES-256-GCM); the key id in the sealed text says which key opens it, so a rotated key adds an id
 * and old events stay readable. The ledger hashes the sealed text, so chains verify without the key.
 *
 * A provider's key is made where the provider is created (`holdfast init`, `holdfast providers
 * add`); a site receives it at enrolment, wrapped under the one-time enrolment token.
 */
export const PROVIDER_KEYS_FILE = 'provider-keys.json';

const keyId = z.string().regex(/^[a-z0-9]{4,32}$/);
const rawKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/);
export const providerKeySetSchema = z.strictObject({ current: keyId, keys: z.record(keyId, rawKey) });
export type ProviderKeySet = z.infer<typeof providerKeySetSchema>;
const fileSchema = z.strictObject({
  version: z.literal(1),
  providers: z.record(z.string(), providerKeySetSchema),
});

export class ProviderKeyMissingError extends Error {
  constructor(tenant: string, id?: string) {
    super(
      `this node holds no provider key${id ? ` ${id}` : ''} for provider ${tenant} (${PROVIDER_KEYS_FILE} in the data directory): account secrets of that provider cannot be read or written here; enrol the node again or copy the file from the hub`,
    );
    this.name = 'ProviderKeyMissingError';
  }
}

export class ProviderKeys {
  private constructor(
    private readonly path: string | null,
    private readonly providers: Map<string, ProviderKeySet>,
  ) {}

  /** The keys of a data directory (none yet if the file does not exist); refuses a readable file. */
  static load(dataDir: string): ProviderKeys {
    const path = join(dataDir, PROVIDER_KEYS_FILE);
    if (!existsSync(path)) return new ProviderKeys(path, new Map());
    refuseIfReadableByOthers(path, 'file');
    const parsed = fileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success) throw new Error(`${path} is not a valid provider key file`);
    return new ProviderKeys(path, new Map(Object.entries(parsed.data.providers)));
  }

  /** Keys held in memory only (tests of code that seals). */
  static inMemory(): ProviderKeys {
    return new ProviderKeys(null, new Map());
  }

  has(tenant: string): boolean {
    return this.providers.has(tenant);
  }

  /** Makes a key for `tenant` if it has none. */
  ensure(tenant: string): void {
    if (this.providers.has(tenant)) return;
    const id = randomBytes(8).toString('hex');
    this.providers.set(tenant, { current: id, keys: { [id]: randomBytes(32).toString('base64url') } });
    this.save();
  }

  /** A new current key for `tenant`; older keys stay to open what they sealed. */
  rotate(tenant: string): string {
    const set = this.providers.get(tenant);
    if (!set) throw new ProviderKeyMissingError(tenant);
    const id = randomBytes(8).toString('hex');
    this.providers.set(tenant, {
      current: id,
      keys: { ...set.keys, [id]: randomBytes(32).toString('base64url') },
    });
    this.save();
    return id;
  }

  /** The key set of `tenant`, to hand to an enrolling site. */
  keySet(tenant: string): ProviderKeySet {
    const set = this.providers.get(tenant);
    if (!set) throw new ProviderKeyMissingError(tenant);
    return { current: set.current, keys: { ...set.keys } };
  }

  /** Takes a key set received at enrolment (merged with any keys already held). */
  adopt(tenant: string, set: ProviderKeySet): void {
    const parsed = providerKeySetSchema.parse(set);
    const held = this.providers.get(tenant);
    this.providers.set(tenant, { current: parsed.current, keys: { ...held?.keys, ...parsed.keys } });
    this.save();
  }

  /** Seals `plain` under the provider's current key, bound to `context` (who and which field). */
  seal(tenant: string, plain: string, context: string): string {
    const set = this.providers.get(tenant);
    if (!set) throw new ProviderKeyMissingError(tenant);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(set.keys[set.current]!, 'base64url'), iv);
    cipher.setAAD(Buffer.from(`${tenant}\u0000${context}`));
    const ct = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const b = (x: Buffer) => x.toString('base64url');
    return `hfs1.${set.current}.${b(iv)}.${b(ct)}.${b(cipher.getAuthTag())}`;
  }

  /** Opens what `seal` made for the same tenant and context; throws if the key is missing or it was altered. */
  open(tenant: string, sealed: string, context: string): string {
    const [tag0, id, iv, ct, tag] = sealed.split('.');
    if (tag0 !== 'hfs1' || !id || !iv || !ct || !tag) throw new Error('not a sealed secret');
    const key = this.providers.get(tenant)?.keys[id];
    if (!key) throw new ProviderKeyMissingError(tenant, id);
    const decipher = createDecipheriv(
      'aes-256-gcm',
      Buffer.from(key, 'base64url'),
      Buffer.from(iv, 'base64url'),
    );
    decipher.setAAD(Buffer.from(`${tenant}\u0000${context}`));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  private save(): void {
    if (!this.path) return;
    const temporary = `${this.path}.tmp`;
    const body = { version: 1, providers: Object.fromEntries(this.providers) };
    writeFileSync(temporary, JSON.stringify(body, null, 2) + '\n', { mode: OWNER_FILE_MODE });
    renameSync(temporary, this.path);
  }
}

/** Wraps a key set for the enrolment answer under a key derived from the one-time enrolment token. */
export function wrapKeySet(set: ProviderKeySet, token: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', tokenKey(token), iv);
  const ct = Buffer.concat([cipher.update(JSON.stringify(set), 'utf8'), cipher.final()]);
  return [iv, ct, cipher.getAuthTag()].map((x) => x.toString('base64url')).join('.');
}

export function unwrapKeySet(wrapped: string, token: string): ProviderKeySet {
  const [iv, ct, tag] = wrapped.split('.');
  if (!iv || !ct || !tag) throw new Error('the provider key in the enrolment answer is malformed');
  const decipher = createDecipheriv('aes-256-gcm', tokenKey(token), Buffer.from(iv, 'base64url'));
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  const plain = Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]);
  return providerKeySetSchema.parse(JSON.parse(plain.toString('utf8')));
}

function tokenKey(token: string): Buffer {
  return Buffer.from(hkdfSync('sha256', token, 'holdfast-enrolment', 'provider-key', 32));
}
