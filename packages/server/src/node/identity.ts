import { existsSync, readFileSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { Ed25519Signer } from './crypto.ts';
import { makeOwnerOnlyDir, OWNER_FILE_MODE } from './file-modes.ts';

/**
 * A node's identity on disk: `node.json` (who it is) and `node.key` (its Ed25519 private key, file
 * mode 0600). The private key never enters the database, so a copy of the store cannot sign.
 */
export const nodeFileSchema = z.strictObject({
  node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/),
  tenant: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/),
  role: z.enum(['hub', 'site', 'single']),
  publicKey: z.string(),
  createdAt: z.string(),
  /**
   * A site's hub: where it syncs, and the hub's key as pinned at enrolment. Absent on a hub and on a
   * single node (they have no peer to call).
   */
  hub: z
    .strictObject({
      url: z.string().url(),
      node: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/),
      publicKey: z.string(),
    })
    .optional(),
});
export type NodeFile = z.infer<typeof nodeFileSchema>;

export interface NodeIdentity extends NodeFile {
  signer: Ed25519Signer;
}

export const NODE_FILE = 'node.json';
export const KEY_FILE = 'node.key';

export function identityExists(dataDir: string): boolean {
  return existsSync(join(dataDir, NODE_FILE));
}

export function createIdentity(
  dataDir: string,
  fields: { node: string; tenant: string; role: NodeFile['role']; createdAt: string; hub?: NodeFile['hub'] },
  /** A key pair made beforehand (a site enrols its public key with the hub before it knows its tenant). */
  keyPair?: { signer: Ed25519Signer; privateKeyPem: string },
): NodeIdentity {
  if (identityExists(dataDir))
    throw new Error(`${join(dataDir, NODE_FILE)} exists already: this data directory is initialised`);
  makeOwnerOnlyDir(dataDir);
  const { signer, privateKeyPem } = keyPair ?? Ed25519Signer.generate(fields.node);
  if (signer.node !== fields.node)
    throw new Error(`the key pair was made for node ${signer.node}, not ${fields.node}`);
  const keyPath = join(dataDir, KEY_FILE);
  writeFileSync(keyPath, privateKeyPem, { mode: 0o600, flag: 'wx' });
  chmodSync(keyPath, 0o600); // the umask may have narrowed it further; never wider
  const file: NodeFile = { ...fields, publicKey: signer.publicKey };
  writeFileSync(join(dataDir, NODE_FILE), JSON.stringify(file, null, 2) + '\n', {
    flag: 'wx',
    mode: OWNER_FILE_MODE,
  });
  return { ...file, signer };
}

export function loadIdentity(dataDir: string): NodeIdentity {
  const nodePath = join(dataDir, NODE_FILE);
  if (!existsSync(nodePath)) {
    throw new Error(
      `no node in ${dataDir}: run \`holdfast init\` first (or \`npm start\`, which does it for you)`,
    );
  }
  const parsed = nodeFileSchema.safeParse(JSON.parse(readFileSync(nodePath, 'utf8')));
  if (!parsed.success)
    throw new Error(`${nodePath} is not a valid node file: ${parsed.error.issues[0]?.message ?? ''}`);
  const keyPath = join(dataDir, KEY_FILE);
  const mode = statSync(keyPath).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new Error(`${keyPath} is readable by others (mode ${mode.toString(8)}): run chmod 600 ${keyPath}`);
  }
  const signer = Ed25519Signer.fromPem(parsed.data.node, readFileSync(keyPath, 'utf8'));
  if (signer.publicKey !== parsed.data.publicKey)
    throw new Error(`${keyPath} does not match the public key in ${nodePath}`);
  return { ...parsed.data, signer };
}
