import { ChainFaultError } from './chain-check.ts';
import { BackupFormatError, linkProblem, listManifests, readChunk } from './format.ts';
import { openBackupKeys, type KeySource } from './keys.ts';
import { walkManifest, type WalkReport } from './walk.ts';

export interface ManifestVerdict {
  number: number;
  file: string;
  createdAt: string | null;
  events: number | null;
  /** Problems with this manifest: its own file, its link, its chunks, or (when walked) an event. */
  problems: string[];
  /** True when every event and checkpoint it lists was re-checked (the newest usable manifest). */
  walked: boolean;
  walk?: WalkReport;
}

export interface BackupVerifyReport {
  ok: boolean;
  manifests: ManifestVerdict[];
  chunksChecked: number;
  badChunks: string[];
  /** The manifest a restore would use, or null. */
  restorable: number | null;
  /** The first bad file or event found, or null. */
  firstProblem: string | null;
}

/**
 * `holdfast backup verify DIR`: every manifest's signature and chain link; every chunk any manifest
 * lists decrypts and matches its address (each distinct chunk once); and, for the newest manifest
 * whose chunks are all sound (the one a restore would use), every event hash, link and clock and
 * every checkpoint, as restore checks them. Older manifests list a prefix of the same chains, so
 * their events are covered by that walk; `all` walks every sound manifest.
 */
export async function verifyBackup(
  dir: string,
  key: KeySource,
  options: { all?: boolean; onProgress?: (done: number, total: number) => void } = {},
): Promise<BackupVerifyReport> {
  const keys = openBackupKeys(dir, key);
  const manifests = listManifests(dir);
  const chunkState = new Map<string, string | null>();
  const verdicts: ManifestVerdict[] = [];
  let restorable: number | null = null;
  let first: string | null = manifests.length === 0 ? `${dir} holds no manifest` : null;
  for (const m of manifests) {
    const v: ManifestVerdict = {
      number: m.number,
      file: m.file,
      createdAt: m.manifest?.createdAt ?? null,
      events: m.manifest?.totals.events ?? null,
      problems: [],
      walked: false,
    };
    verdicts.push(v);
    if (m.problem) v.problems.push(`${m.file} ${m.problem}`);
    const link = linkProblem(m, manifests);
    if (link) v.problems.push(`${m.file} ${link}`);
    if (m.manifest && m.manifest.keyId !== keys.keyId)
      v.problems.push(`${m.file} was made with another data key`);
    const signer = manifests.find((o) => o.manifest && !o.problem)?.manifest?.publicKey;
    if (m.manifest && !m.problem && signer && m.manifest.publicKey !== signer)
      v.problems.push(`${m.file} is signed by another node key than the newest manifest`);
    if (!m.manifest || m.manifest.keyId !== keys.keyId || m.problem) {
      first ??= v.problems[0]!;
      continue;
    }
    for (const c of m.manifest.chunks) {
      if (!chunkState.has(c.address)) {
        try {
          readChunk(dir, keys, c.address);
          chunkState.set(c.address, null);
        } catch (error) {
          chunkState.set(c.address, (error as Error).message);
        }
      }
      const problem = chunkState.get(c.address);
      if (problem) v.problems.push(problem);
    }
    const chunksSound = !v.problems.some((p) => !p.startsWith(m.file));
    if (chunksSound && (restorable === null || options.all)) {
      try {
        v.walk = await walkManifest(dir, keys, m.manifest, { progress: options.onProgress });
        v.walked = true;
        restorable ??= m.number;
      } catch (error) {
        if (!(error instanceof BackupFormatError) && !(error instanceof ChainFaultError)) throw error;
        v.problems.push(error.message);
      }
    }
    first ??= v.problems[0] ?? null;
  }
  const badChunks = [...chunkState].flatMap(([, p]) => (p ? [p] : []));
  return {
    ok: manifests.length > 0 && verdicts.every((v) => v.problems.length === 0),
    manifests: verdicts,
    chunksChecked: chunkState.size,
    badChunks,
    restorable,
    firstProblem: first,
  };
}
