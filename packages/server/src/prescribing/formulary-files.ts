import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFormulary, FormularyError, parseFormulary, type Formulary } from '@holdfast/core';

/**
 * Loads a formulary from a directory: `manifest.json` (id, version, title, notClinicallyValidated)
 * and one or more `medicines*.json` files ({medicines: [...]}), like the triage packs; a provider's
 * own or a licensed formulary plugs in as another directory. Refused whole on any problem.
 */
export const SAMPLE_FORMULARY_DIR = fileURLToPath(
  new URL('../../../../formularies/sample/', import.meta.url),
);

export async function loadFormularyDir(dir: string): Promise<Formulary> {
  const names = (await readdir(dir)).sort();
  if (!names.includes('manifest.json')) throw new FormularyError('manifest.json', 'is missing');
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const medicines: unknown[] = [];
  for (const name of names.filter((n) => /^medicines.*\.json$/.test(n))) {
    const file = JSON.parse(await readFile(join(dir, name), 'utf8')) as { medicines?: unknown };
    if (!Array.isArray(file.medicines)) throw new FormularyError(`${name}.medicines`, 'must be a list');
    medicines.push(...(file.medicines as unknown[]));
  }
  const formulary = parseFormulary({ ...manifest, medicines });
  const problem = checkFormulary(formulary).problems[0];
  if (problem) throw new FormularyError(problem.field, problem.message);
  return formulary;
}
