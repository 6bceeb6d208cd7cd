import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadFormularyDir, SAMPLE_FORMULARY_DIR } from '../../src/prescribing/formulary-files.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A copy of the sample formulary with one medicines file changed by `edit`. */
function brokenCopy(file: string, edit: (json: { medicines: Record<string, unknown>[] }) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-formulary-'));
  dirs.push(dir);
  cpSync(SAMPLE_FORMULARY_DIR, dir, { recursive: true });
  const json = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { medicines: Record<string, unknown>[] };
  edit(json);
  writeFileSync(join(dir, file), JSON.stringify(json));
  return dir;
}

function holdfast(args: string[]) {
  const r = spawnSync(process.execPath, holdfastArgs(...args), {
    encoding: 'utf8',
    env: { ...process.env, CI: '1', NO_COLOR: '1' },
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('formulary files', () => {
  it('the sample formulary loads, marked not clinically validated, with no problems', async () => {
    const result = await loadFormularyDir(SAMPLE_FORMULARY_DIR);
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.formulary.notClinicallyValidated).toBe(true);
    expect(result.formulary.title).toMatch(/not clinically validated/);
    expect(result.formulary.medicines.length).toBeGreaterThanOrEqual(40);
    expect(result.files[0]).toBe('manifest.json');
  });

  it('a problem is named by file, medicine code and the field inside that file', async () => {
    const dir = brokenCopy('medicines-other.json', (json) => {
      json.medicines[2]!.maxDurationDays = 0;
      const rules = json.medicines[3]!.doseRules as { maxDailyMg: number }[];
      rules[0]!.maxDailyMg = 1;
    });
    const result = await loadFormularyDir(dir);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const other = JSON.parse(readFileSync(join(SAMPLE_FORMULARY_DIR, 'medicines-other.json'), 'utf8')) as {
      medicines: { code: string }[];
    };
    // A schema problem: refused before the checker runs, still placed in its own file.
    expect(result.problems).toEqual([
      {
        file: 'medicines-other.json',
        code: other.medicines[2]!.code,
        field: 'medicines.2.maxDurationDays',
        message: 'must be at least 1',
      },
    ]);
  });

  it('a checker problem is named the same way', async () => {
    const dir = brokenCopy('medicines-pain-and-sedation.json', (json) => {
      json.medicines[1]!.code = json.medicines[0]!.code;
    });
    const result = await loadFormularyDir(dir);
    if (result.ok) throw new Error('a duplicate code was accepted');
    expect(result.problems).toHaveLength(1);
    expect(result.problems[0]).toMatchObject({
      file: 'medicines-pain-and-sedation.json',
      field: 'medicines.1.code',
    });
    expect(result.problems[0]!.message).toMatch(/^duplicate_code: /);
  });

  it('a directory without a manifest or medicines is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-formulary-'));
    dirs.push(dir);
    const result = await loadFormularyDir(dir);
    expect(result.ok ? [] : result.problems.map((p) => p.message)).toEqual([
      'no manifest.json in the formulary directory',
      'no medicines*.json files in the formulary directory',
    ]);
  });

  it('holdfast formulary check: 0 and a summary on the sample; 1 and every problem on a broken directory', () => {
    const good = holdfast(['formulary', 'check']);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(
      /not clinically validated .*: 44 medicines \(4 controlled\) in 4 files, no problems/,
    );

    const dir = brokenCopy('medicines-pain-and-sedation.json', (json) => {
      const morphine = json.medicines.find((m) => m.name === 'Morphine sulfate')!;
      morphine.maxDurationDays = 60;
      (morphine.interactions as { with: string }[])[0]!.with = 'no-such-class';
    });
    const bad = holdfast(['formulary', 'check', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /medicines-pain-and-sedation\.json: medicines\.\d+\.maxDurationDays \[\d+\]: controlled_duration: /,
    );
    expect(bad.stderr).toMatch(/medicines\.\d+\.interactions\.0\.with \[\d+\]: unknown_interaction: /);
    expect(bad.stderr).toMatch(/has 2 problem\(s\)/);
  });
});
