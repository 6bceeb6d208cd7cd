import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkFormulary, parseFormulary, type Formulary } from '@holdfast/core';

/**
 * Loads a formulary directory: `manifest.json` (id, version, title, notClinicallyValidated) and one
 * or more `medicines*.json` arrays. (h18-web's stand-in of CONTRACT-18's loader; h18-core's replaces it.)
 */
export const SAMPLE_FORMULARY_DIR = fileURLToPath(
  new URL('../../../../formularies/sample/', import.meta.url),
);

export async function loadFormularyDir(dir: string): Promise<Formulary> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  const medicines: unknown[] = [];
  for (const name of (await readdir(dir)).filter((n) => /^medicines.*\.json$/.test(n)).sort())
    medicines.push(...(JSON.parse(await readFile(join(dir, name), 'utf8')) as unknown[]));
  const formulary = parseFormulary({ ...manifest, medicines });
  const { problems } = checkFormulary(formulary);
  if (problems.length > 0)
    throw new Error(`formulary ${dir}: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  return formulary;
}
