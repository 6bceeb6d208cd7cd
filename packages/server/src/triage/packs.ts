import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ValidationError, type FieldIssue } from '@holdfast/core';
import { checkPack } from '@holdfast/core/triage/checker';
import type { DxCodeTable } from '@holdfast/core/triage/dx-codes';
import {
  assemblePack,
  composeProtocol,
  type PackSourceDocument,
  type ProtocolPack,
  type TriageProtocol,
} from '@holdfast/core/triage/pack';
import { parseProtocolDocument } from '@holdfast/core/triage/schema';

/**
 * Loads triage protocol packs from disk. A pack is a directory of JSON documents (one manifest, one
 * life-threatening module, one file per pathway); licensed content plugs in as another directory.
 * Every file passes the core schema, the pack is put together, and the protocol checker runs: a pack
 * with any defect is refused whole, with every problem named by file and field path.
 */

/** The sample pack shipped in the repository (demonstration content, not clinically validated). */
export const SAMPLE_PACK_DIR = fileURLToPath(new URL('../../../../protocols/sample/', import.meta.url));

const MAX_FILE_BYTES = 2 * 1024 * 1024;

export interface PackFileError {
  /** File name inside the pack directory; empty for the pack as a whole. */
  file: string;
  /** Field path inside the file (`nodes.cp_onset.options.1.next`); empty for the file as a whole. */
  path: string;
  message: string;
}

export interface LoadedPack {
  dir: string;
  pack: ProtocolPack;
  /** One composed protocol (life-threatening module + pathway) per pathway id, in manifest order. */
  protocols: Map<string, TriageProtocol>;
  /** The file each document came from, by document id. */
  files: Map<string, string>;
}

export type PackLoadResult =
  ({ ok: true } & LoadedPack) | { ok: false; dir: string; errors: PackFileError[] };

export interface LoadOptions {
  /** The Dx table dispositions must use; the sample table by default. A licensed pack brings its own. */
  dxCodes?: DxCodeTable;
}

/** Loads one pack directory. Never throws for bad content: the errors come back in the result. */
export async function loadProtocolPack(dir: string, options: LoadOptions = {}): Promise<PackLoadResult> {
  const errors: PackFileError[] = [];
  const fail = (): PackLoadResult => ({ ok: false, dir, errors });

  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => e.isFile() && e.name.endsWith('.json'))
      .map((e) => e.name)
      .sort();
  } catch (error) {
    errors.push({ file: '', path: '', message: `cannot read the pack directory: ${describeFsError(error)}` });
    return fail();
  }
  if (names.length === 0) {
    errors.push({ file: '', path: '', message: 'no .json files in the pack directory' });
    return fail();
  }

  const documents: PackSourceDocument[] = [];
  for (const file of names) {
    const document = await readDocument(join(dir, file), file, errors);
    if (document) documents.push({ source: file, document });
  }
  if (errors.length > 0) return fail();

  const assembled = assemblePack(documents);
  if (!assembled.ok) {
    errors.push(...assembled.problems.map((p) => ({ file: p.source, path: p.path, message: p.message })));
    return fail();
  }
  const { pack } = assembled;
  const files = new Map<string, string>();
  for (const { source, document } of documents) if (document.kind !== 'pack') files.set(document.id, source);
  const manifestFile = documents.find((d) => d.document.kind === 'pack')!.source;
  files.set(pack.manifest.id, manifestFile);

  for (const issue of checkPack(pack, options))
    errors.push({
      file: files.get(issue.pathwayId) ?? '',
      path: issue.path,
      message: `${issue.kind}: ${issue.message}`,
    });
  if (errors.length > 0) return fail();

  const protocols = new Map(
    pack.pathways.map((p) => [p.id, composeProtocol(pack.manifest, pack.lifeThreatening, p)] as const),
  );
  return { ok: true, dir, pack, protocols, files };
}

async function readDocument(path: string, file: string, errors: PackFileError[]) {
  let text: string;
  try {
    const info = await stat(path);
    if (info.size > MAX_FILE_BYTES) {
      errors.push({ file, path: '', message: `larger than ${MAX_FILE_BYTES} bytes` });
      return undefined;
    }
    text = await readFile(path, 'utf8');
  } catch (error) {
    errors.push({ file, path: '', message: `cannot read: ${describeFsError(error)}` });
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    errors.push({ file, path: '', message: `not valid JSON: ${(error as Error).message}` });
    return undefined;
  }
  try {
    return parseProtocolDocument(json);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    errors.push(...error.issues.map((i) => ({ file, path: i.path, message: i.message })));
    return undefined;
  }
}

function describeFsError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code ?? (error as Error).message;
}

/**
 * Loads every pack under `root`: each subdirectory is one pack. Two packs with the same id and version
 * are refused (the second one found, in name order).
 */
export async function loadProtocolPacks(root: string, options: LoadOptions = {}): Promise<PackLoadResult[]> {
  const entries = await readdir(root, { withFileTypes: true });
  const dirs = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  const results: PackLoadResult[] = [];
  const seen = new Map<string, string>();
  for (const name of dirs) {
    const result = await loadProtocolPack(join(root, name), options);
    if (result.ok) {
      const key = `${result.pack.manifest.id}@${result.pack.manifest.version}`;
      const other = seen.get(key);
      if (other) {
        results.push({
          ok: false,
          dir: result.dir,
          errors: [
            {
              file: result.files.get(result.pack.manifest.id) ?? '',
              path: 'version',
              message: `pack ${key} is also in ${other}`,
            },
          ],
        });
        continue;
      }
      seen.set(key, result.dir);
    }
    results.push(result);
  }
  return results;
}

/** Loads one pack or throws a ValidationError whose field paths are `file: path`. */
export async function requireProtocolPack(dir: string, options: LoadOptions = {}): Promise<LoadedPack> {
  const result = await loadProtocolPack(dir, options);
  if (result.ok) return result;
  const issues: FieldIssue[] = result.errors.map((e) => ({
    path: [e.file || '(pack)', e.path].filter(Boolean).join(': '),
    message: e.message,
  }));
  throw new ValidationError(issues, `protocol pack ${dir} refused: ${issues.length} problem(s)`);
}
