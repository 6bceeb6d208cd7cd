import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, scryptSync } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { writeFileNoReplace } from './files.ts';

/**
 * The backup's keys. A random per-provider DATA KEY encrypts and addresses every chunk; it is stored
 * in the backup directory only wrapped (AES-256-GCM) by a key held outside the node: scrypt of a
 * passphrase, or a 32-byte key file. Losing the node therefore loses no key, and a copy of the backup
 * directory alone reads nothing.
 */
export const KEY_FILE_NAME = 'backup-key.json';
const KEY_FORMAT = 'holdfast-backup-key/1';
/** scrypt cost: about 0.1-0.3 s per unwrap here; memory 128 * N * r = 64 MiB. */
const SCRYPT = { N: 65_536, r: 8, p: 1 } as const;
const MIN_PASSPHRASE = 12;

export type KeySource =
  { kind: 'passphrase'; passphrase: string; from: string } | { kind: 'key-file'; key: Buffer; from: string };

export class BackupKeyError extends Error {}

/** The message for a key that does not open this backup: the same whatever was wrong with it. */
export const WRONG_KEY_MESSAGE =
  "the passphrase or key file does not unwrap this backup's data key (nothing was read or written): give the passphrase or key file this backup was made with";

/**
 * Where the wrapping key comes from: --key-file, --passphrase-file, or HOLDFAST_BACKUP_PASSPHRASE.
 * A secret is never taken as a command-line argument (it would show in the process list and history).
 */
export function resolveKeySource(
  options: { passphraseFile?: string; keyFile?: string },
  env: NodeJS.ProcessEnv = process.env,
): KeySource {
  if (options.passphraseFile && options.keyFile)
    throw new BackupKeyError('give either --passphrase-file or --key-file, not both');
  if (options.keyFile) {
    const raw = readFileSync(options.keyFile);
    const text = raw.toString('utf8').trim();
    let key: Buffer | null = null;
    if (raw.length === 32) key = raw;
    else if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
    else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, 'base64');
    if (!key || key.length !== 32)
      throw new BackupKeyError(
        `--key-file ${options.keyFile} must hold a 32-byte key: 32 raw bytes, 64 hex characters or base64 (e.g. \`openssl rand -hex 32 > backup.key\`)`,
      );
    return { kind: 'key-file', key, from: `--key-file ${options.keyFile}` };
  }
  let passphrase: string | undefined;
  let from: string;
  if (options.passphraseFile) {
    passphrase = readFileSync(options.passphraseFile, 'utf8').replace(/\r?\n$/, '');
    from = `--passphrase-file ${options.passphraseFile}`;
  } else {
    passphrase = env.HOLDFAST_BACKUP_PASSPHRASE;
    from = 'HOLDFAST_BACKUP_PASSPHRASE';
  }
  if (passphrase === undefined || passphrase === '')
    throw new BackupKeyError(
      'a backup key is needed: give --passphrase-file FILE, --key-file FILE, or set HOLDFAST_BACKUP_PASSPHRASE (never on the command line)',
    );
  if ([...passphrase].length < MIN_PASSPHRASE)
    throw new BackupKeyError(`the passphrase (${from}) must be at least ${MIN_PASSPHRASE} characters`);
  return { kind: 'passphrase', passphrase, from };
}

const b64 = z.string().regex(/^[A-Za-z0-9+/=]+$/);
const keyFileSchema = z.strictObject({
  format: z.literal(KEY_FORMAT),
  tenant: z.string().min(1).max(128),
  /** Random id of this data key: manifests name it, so a manifest from another backup is told apart. */
  keyId: z.string().regex(/^[0-9a-f]{32}$/),
  wrapping: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('passphrase'),
      kdf: z.literal('scrypt'),
      salt: b64,
      N: z.number().int().min(16_384).max(1_048_576),
      r: z.number().int().min(1).max(32),
      p: z.number().int().min(1).max(16),
    }),
    z.strictObject({ kind: z.literal('key-file') }),
  ]),
  iv: b64,
  wrappedKey: b64,
  tag: b64,
});
type KeyFile = z.infer<typeof keyFileSchema>;

/** Keys derived from the data key: one to encrypt chunks, one to address them (HMAC). */
export interface BackupKeys {
  keyId: string;
  tenant: string;
  encryptionKey: Buffer;
  addressKey: Buffer;
}

function deriveKeys(dataKey: Buffer, keyId: string, tenant: string): BackupKeys {
  const derive = (info: string) => Buffer.from(hkdfSync('sha256', dataKey, Buffer.from(keyId), info, 32));
  return {
    keyId,
    tenant,
    encryptionKey: derive('holdfast-backup chunk encryption'),
    addressKey: derive('holdfast-backup chunk address'),
  };
}

function wrappingKey(source: KeySource, wrapping: KeyFile['wrapping']): Buffer {
  if (wrapping.kind === 'key-file') {
    if (source.kind !== 'key-file')
      throw new BackupKeyError(
        "this backup's data key is wrapped by a key file: give --key-file FILE (not a passphrase)",
      );
    return source.key;
  }
  if (source.kind !== 'passphrase')
    throw new BackupKeyError(
      "this backup's data key is wrapped by a passphrase: give --passphrase-file FILE or HOLDFAST_BACKUP_PASSPHRASE (not a key file)",
    );
  return scryptSync(source.passphrase.normalize('NFC'), Buffer.from(wrapping.salt, 'base64'), 32, {
    N: wrapping.N,
    r: wrapping.r,
    p: wrapping.p,
    maxmem: 256 * 1024 * 1024,
  });
}

function aad(file: Pick<KeyFile, 'tenant' | 'keyId'>): Buffer {
  return Buffer.from(`${KEY_FORMAT}\n${file.tenant}\n${file.keyId}`);
}

export function keyFileExists(dir: string): boolean {
  return existsSync(join(dir, KEY_FILE_NAME));
}

/** Opens the data key of the backup in `dir`; a key that does not unwrap it is a BackupKeyError. */
export function openBackupKeys(dir: string, source: KeySource): BackupKeys {
  const path = join(dir, KEY_FILE_NAME);
  if (!existsSync(path))
    throw new BackupKeyError(`${dir} is not a Holdfast backup: it has no ${KEY_FILE_NAME}`);
  let file: KeyFile;
  try {
    file = keyFileSchema.parse(JSON.parse(readFileSync(path, 'utf8')));
  } catch {
    throw new BackupKeyError(`${path} is damaged or not a Holdfast backup key file`);
  }
  const kek = wrappingKey(source, file.wrapping);
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, Buffer.from(file.iv, 'base64'));
    decipher.setAAD(aad(file));
    decipher.setAuthTag(Buffer.from(file.tag, 'base64'));
    const dataKey = Buffer.concat([
      decipher.update(Buffer.from(file.wrappedKey, 'base64')),
      decipher.final(),
    ]);
    if (dataKey.length !== 32) throw new Error('short key');
    return deriveKeys(dataKey, file.keyId, file.tenant);
  } catch {
    throw new BackupKeyError(WRONG_KEY_MESSAGE);
  }
}

/** The data key of a new backup directory: generated, wrapped, and written once (never replaced). */
export function createBackupKeys(dir: string, source: KeySource, tenant: string): BackupKeys {
  const dataKey = randomBytes(32);
  const keyId = randomBytes(16).toString('hex');
  const wrapping: KeyFile['wrapping'] =
    source.kind === 'key-file'
      ? { kind: 'key-file' }
      : { kind: 'passphrase', kdf: 'scrypt', salt: randomBytes(16).toString('base64'), ...SCRYPT };
  const kek = wrappingKey(source, wrapping);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', kek, iv);
  cipher.setAAD(aad({ tenant, keyId }));
  const wrapped = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  const file: KeyFile = {
    format: KEY_FORMAT,
    tenant,
    keyId,
    wrapping,
    iv: iv.toString('base64'),
    wrappedKey: wrapped.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
  writeFileNoReplace(join(dir, KEY_FILE_NAME), JSON.stringify(file, null, 2) + '\n');
  return deriveKeys(dataKey, keyId, tenant);
}
