import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  checkFormulary,
  FormularyError,
  formularyManifestSchema,
  formularyMedicinesFileSchema,
  parseFormulary,
  ValidationError,
  type FieldIssue,
  type Formulary,
} from '@holdfast/core';

/**
 * Loads a formulary from disk: a directory with `manifest.json` and one or more `medicines*.json`
 * (`docs/FORMULARY.md`). Every file passes the core schema, the medicines are put together, and the
 * formulary checker runs: a formulary with any problem is refused whole, every problem named by file,
 * medicine code and field. Reads files only: no node, no ledger.
 */

/** The sample formulary shipped in the repository (demonstration content, not clinically validated). */
export const SAMPLE_FORMULARY_DIR = fileURLToPath(
  new URL('../../../../formularies/sample/', import.meta.url),
);

const MAX_FILE_BYTES = 4 * 1024 * 1024;
const MANIFEST = 'manifest.json';
const MEDICINES_FILE = /^medicines.*\.json$/;

export interface FormularyFileProblem {
  /** File name inside the directory; empty for the directory as a whole. */
  file: string;
  /** The medicine's code, when the problem is one medicine's. */
  code: string | null;
  /** Field path inside the file (`medicines.3.doseRules.0.maxDailyMg`); empty for the whole file. */
  field: string;
  message: string;
}

export type FormularyLoadResult =
  | { ok: true; dir: string; formulary: Formulary; files: string[] }
  | { ok: false; dir: string; problems: FormularyFileProblem[] };

/** Where each medicine of the assembled formulary came from: its file and its index there. */
interface Origin {
  file: string;
  index: number;
}

/** Loads one formulary directory. Never throws for bad content: the problems come back in the result. */
export async function loadFormularyDir(dir: string): Promise<FormularyLoadResult> {
  const problems: FormularyFileProblem[] = [];
  const fail = (): FormularyLoadResult => ({ ok: false, dir, problems });
  const problem = (file: string, field: string, message: string, code: string | null = null) =>
    problems.push({ file, code, field, message });

  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => e.name)
      .sort();
  } catch (error) {
    problem('', '', `cannot read the formulary directory: ${describeFsError(error)}`);
    return fail();
  }
  const medicineFiles = names.filter((n) => MEDICINES_FILE.test(n));
  if (!names.includes(MANIFEST)) problem('', '', `no ${MANIFEST} in the formulary directory`);
  if (medicineFiles.length === 0) problem('', '', 'no medicines*.json files in the formulary directory');
  if (problems.length > 0) return fail();

  const manifestJson = await readJson(join(dir, MANIFEST), MANIFEST, problems);
  const manifest =
    manifestJson === undefined ? undefined : shape(formularyManifestSchema, manifestJson, MANIFEST, problems);
  const medicines: unknown[] = [];
  const origins: Origin[] = [];
  for (const file of medicineFiles) {
    const json = await readJson(join(dir, file), file, problems);
    const parsed = json === undefined ? undefined : shape(formularyMedicinesFileSchema, json, file, problems);
    parsed?.medicines.forEach((m, index) => {
      medicines.push(m);
      origins.push({ file, index });
    });
  }
  if (problems.length > 0 || manifest === undefined) return fail();

  // Field paths of the assembled formulary (`medicines.40.code`) back to the file they came from.
  const locate = (field: string): { file: string; field: string } => {
    const m = /^medicines\.(\d+)(.*)$/.exec(field);
    const origin = m ? origins[Number(m[1])] : undefined;
    if (!m || !origin) return { file: field === 'medicines' ? medicineFiles.join(', ') : MANIFEST, field };
    return { file: origin.file, field: `medicines.${origin.index}${m[2]}` };
  };

  let formulary: Formulary;
  try {
    formulary = parseFormulary({ ...manifest, medicines });
  } catch (error) {
    if (!(error instanceof FormularyError)) throw error;
    for (const issue of error.issues) {
      const at = locate(issue.path);
      const index = /^medicines\.(\d+)/.exec(issue.path)?.[1];
      const code = index === undefined ? null : codeOf(medicines[Number(index)]);
      problem(at.file, at.field, issue.message, code);
    }
    return fail();
  }
  for (const p of checkFormulary(formulary).problems) {
    const at = locate(p.field);
    problem(at.file, at.field, `${p.kind}: ${p.message}`, p.code);
  }
  if (problems.length > 0) return fail();
  return { ok: true, dir, formulary, files: [MANIFEST, ...medicineFiles] };
}

/** Loads a formulary or throws a ValidationError whose field paths are `file: field`. */
export async function requireFormularyDir(dir: string): Promise<Formulary> {
  const result = await loadFormularyDir(dir);
  if (result.ok) return result.formulary;
  const issues: FieldIssue[] = result.problems.map((p) => ({
    path: [p.file || '(formulary)', p.field].filter(Boolean).join(': '),
    message: p.message,
  }));
  throw new ValidationError(issues, `formulary ${dir} refused: ${issues.length} problem(s)`);
}

function codeOf(medicine: unknown): string | null {
  const code = (medicine as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : null;
}

function shape<T>(
  schema: {
    safeParse(
      v: unknown,
    ):
      | { success: true; data: T }
      | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } };
  },
  json: unknown,
  file: string,
  problems: FormularyFileProblem[],
): T | undefined {
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  for (const issue of result.error.issues)
    problems.push({ file, code: null, field: issue.path.map(String).join('.'), message: issue.message });
  return undefined;
}

async function readJson(path: string, file: string, problems: FormularyFileProblem[]): Promise<unknown> {
  const fail = (message: string) => {
    problems.push({ file, code: null, field: '', message });
    return undefined;
  };
  let text: string;
  try {
    if ((await stat(path)).size > MAX_FILE_BYTES) return fail(`larger than ${MAX_FILE_BYTES} bytes`);
    text = await readFile(path, 'utf8');
  } catch (error) {
    return fail(`cannot read: ${describeFsError(error)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    return fail(`not valid JSON: ${(error as Error).message}`);
  }
}

function describeFsError(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
