import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ValidationError } from '@holdfast/core';
import { walk } from '@holdfast/core/triage/engine';
import {
  loadProtocolPack,
  loadProtocolPacks,
  requireProtocolPack,
  SAMPLE_PACK_DIR,
  type PackLoadResult,
} from '../../src/triage/packs.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A copy of the sample pack in a temporary directory, to break on purpose. */
function samplePackCopy(): string {
  const root = mkdtempSync(join(tmpdir(), 'holdfast-packs-'));
  dirs.push(root);
  const dir = join(root, 'sample');
  cpSync(SAMPLE_PACK_DIR, dir, { recursive: true });
  return dir;
}

type Edit = [path: (string | number)[], value: unknown];

/** Sets (or, for undefined, deletes) the value at each field path of a JSON file. */
function editJson(file: string, ...edits: Edit[]): void {
  const json = JSON.parse(readFileSync(file, 'utf8')) as unknown;
  for (const [path, value] of edits) {
    const parent = path.slice(0, -1).reduce((at: unknown, key) => (at as Record<string, unknown>)[key], json);
    const key = path[path.length - 1]!;
    if (value === undefined) delete (parent as Record<string, unknown>)[key];
    else (parent as Record<string, unknown>)[key] = value;
  }
  writeFileSync(file, JSON.stringify(json, null, 2));
}

function errorsOf(result: PackLoadResult) {
  if (result.ok) throw new Error('expected the pack to be refused');
  return result.errors;
}

describe('protocol pack loader', () => {
  it('loads the sample pack from disk, checked, with every pathway composed', async () => {
    const result = await loadProtocolPack(SAMPLE_PACK_DIR);
    if (!result.ok) throw new Error(JSON.stringify(result.errors, null, 2));
    expect(result.pack.manifest).toMatchObject({ id: 'holdfast-sample', sample: true });
    expect(result.pack.pathways.length).toBeGreaterThanOrEqual(12);
    expect([...result.protocols.keys()]).toEqual(result.pack.manifest.pathways.map((p) => p.id));
    expect(result.files.get('chest-pain')).toBe('chest-pain.json');
    const first = walk(result.protocols.get('chest-pain')!, []);
    expect(first).toMatchObject({ status: 'question', content: { sample: true, pathwayId: 'chest-pain' } });
    expect(first.content.label).toMatch(/not clinically validated/);
  });

  it('names the file and field of a schema error', async () => {
    const dir = samplePackCopy();
    editJson(
      join(dir, 'chest-pain.json'),
      [['nodes', 'cp_character', 'options', 1, 'next'], undefined],
      [['nodes', 'cp_amb', 'ambulanceCategory'], 5],
    );
    const errors = errorsOf(await loadProtocolPack(dir));
    expect(errors.map((e) => [e.file, e.path])).toEqual([
      ['chest-pain.json', 'nodes.cp_character.options.1.next'],
      ['chest-pain.json', 'nodes.cp_amb.ambulanceCategory'],
    ]);
  });

  it('names the file of content that is not JSON', async () => {
    const dir = samplePackCopy();
    writeFileSync(join(dir, 'rash.json'), '{ "kind": "pathway", ');
    const errors = errorsOf(await loadProtocolPack(dir));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ file: 'rash.json', path: '' });
    expect(errors[0]!.message).toMatch(/^not valid JSON/);
  });

  it('names the file and field of each defect the checker finds', async () => {
    const dir = samplePackCopy();
    editJson(join(dir, 'headache.json'), [['nodes', 'hd_onset', 'options', 2, 'next'], 'hd_featurs']);
    editJson(join(dir, 'rash.json'), [['nodes', 'rs_pharmacy', 'dxCode'], 'Dx999']);
    const errors = errorsOf(await loadProtocolPack(dir));
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: 'headache.json', path: 'nodes.hd_onset.options.2.next' }),
        expect.objectContaining({ file: 'headache.json', path: 'nodes.hd_features' }),
        expect.objectContaining({ file: 'rash.json', path: 'nodes.rs_pharmacy.dxCode' }),
      ]),
    );
    expect(errors.find((e) => e.path === 'nodes.hd_onset.options.2.next')!.message).toMatch(/^dead_end: /);
    expect(errors.find((e) => e.file === 'rash.json')!.message).toMatch(/^unknown_dx: /);
  });

  it('refuses a pathway the manifest does not list, and a listed pathway with no file', async () => {
    const dir = samplePackCopy();
    rmSync(join(dir, 'dental-pain.json'));
    editJson(join(dir, 'back-pain.json'), [['id'], 'low-back-pain']);
    const errors = errorsOf(await loadProtocolPack(dir));
    expect(errors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ file: 'back-pain.json', path: 'id' }),
        expect.objectContaining({ file: 'pack.json', message: 'no pathway dental-pain in the pack' }),
        expect.objectContaining({ file: 'pack.json', message: 'no pathway back-pain in the pack' }),
      ]),
    );
  });

  it('refuses a sample pack holding content not marked as sample', async () => {
    const dir = samplePackCopy();
    editJson(join(dir, 'headache.json'), [['sample'], false], [['label'], 'Licensed content']);
    const errors = errorsOf(await loadProtocolPack(dir));
    expect(errors).toEqual([
      { file: 'headache.json', path: 'sample', message: 'a sample pack holds only sample content' },
    ]);
  });

  it('reports a missing or empty directory rather than throwing', async () => {
    const root = mkdtempSync(join(tmpdir(), 'holdfast-packs-'));
    dirs.push(root);
    expect(errorsOf(await loadProtocolPack(join(root, 'absent')))[0]!.message).toContain('ENOENT');
    expect(errorsOf(await loadProtocolPack(root))[0]!.message).toContain('no .json files');
  });

  it('loads every pack under a root, and refuses a second copy of the same pack version', async () => {
    const dir = samplePackCopy();
    const root = join(dir, '..');
    cpSync(dir, join(root, 'sample-copy'), { recursive: true });
    mkdirSync(join(root, 'empty-not-a-pack'));
    const results = await loadProtocolPacks(root);
    expect(results.map((r) => [r.dir.slice(root.length + 1), r.ok])).toEqual([
      ['empty-not-a-pack', false],
      ['sample', true],
      ['sample-copy', false],
    ]);
    const copy = results[2]!;
    expect(!copy.ok && copy.errors[0]).toMatchObject({ file: 'pack.json', path: 'version' });
  });

  it('throws a ValidationError naming file and path when asked to require a pack', async () => {
    const dir = samplePackCopy();
    editJson(join(dir, 'fever-adult.json'), [['nodes', 'fa_temp', 'max'], 'hot']);
    const error = await requireProtocolPack(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]!.path).toBe('fever-adult.json: nodes.fa_temp.max');
    await expect(requireProtocolPack(SAMPLE_PACK_DIR)).resolves.toMatchObject({ dir: SAMPLE_PACK_DIR });
  });
});

/** Every pack shipped in the repository: each directory under `protocols/`. */
const SHIPPED_PACKS_ROOT = join(SAMPLE_PACK_DIR, '..');

describe('shipped protocol packs', () => {
  it('every shipped pack passes the protocol checker, clinical safety rules included, with zero findings', async () => {
    const results = await loadProtocolPacks(SHIPPED_PACKS_ROOT);
    expect(results.length).toBeGreaterThanOrEqual(1);
    for (const result of results) {
      expect(result.ok ? [] : result.errors, result.dir).toEqual([]);
      if (!result.ok) continue;
      // The rules have something to hold: the module's answers are marked life-threatening, and
      // discriminators are shared between pathways.
      const { lifeThreatening, pathways } = result.pack;
      const moduleOptions = Object.values(lifeThreatening.nodes).flatMap((n) =>
        n.type === 'single_choice' ? n.options : [],
      );
      const toDispositions = moduleOptions.filter(
        (o) => lifeThreatening.nodes[o.next]?.type === 'disposition',
      );
      expect(toDispositions.length, result.dir).toBeGreaterThan(0);
      expect(toDispositions.every((o) => o.lifeThreatening === true)).toBe(true);
      const pathwaysByDiscriminator = new Map<string, Set<string>>();
      for (const pathway of pathways)
        for (const node of Object.values(pathway.nodes)) {
          const answers =
            node.type === 'disposition' ? [] : node.type === 'numeric' ? node.ranges : node.options;
          for (const a of answers)
            if (a.discriminator)
              pathwaysByDiscriminator.set(
                a.discriminator,
                (pathwaysByDiscriminator.get(a.discriminator) ?? new Set()).add(pathway.id),
              );
        }
      expect(
        [...pathwaysByDiscriminator.values()].some((ids) => ids.size >= 2),
        result.dir,
      ).toBe(true);
    }
  });

  it('refuses the sample pack when a fixed defect comes back: chest pain with breathlessness to a 1-hour call-back', async () => {
    const dir = samplePackCopy();
    // Version 0.1.0 asked about coughing blood first, and sent breathlessness to a call-back.
    editJson(join(dir, 'chest-pain.json'), [
      ['nodes', 'cp_clot_risk', 'rules'],
      [
        { when: { anyOf: ['blood', 'leg'] }, next: 'cp_ed_1h' },
        { when: { anyOf: ['breathless'] }, next: 'cp_speak_1h' },
        { when: { anyOf: ['fever'] }, next: 'cp_speak_2h' },
      ],
    ]);
    const errors = errorsOf(await loadProtocolPack(dir));
    expect(errors.map((e) => [e.file, e.path, e.message.split(':')[0]])).toEqual([
      ['chest-pain.json', 'nodes.cp_clot_risk.options.0', 'below_demanded_urgency'],
      ['chest-pain.json', 'nodes.cp_clot_risk.options.0', 'below_demanded_urgency'],
    ]);
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringContaining(
        'can lead to cp_speak_1h "A clinician will call you back within 1 hour" (Dx11)',
      ),
      expect.stringContaining('can lead to cp_ed_1h'),
    ]);
  });

  it('refuses the sample pack when the head-injury drowsiness of the headache pathway goes back to the emergency department', async () => {
    const dir = samplePackCopy();
    editJson(join(dir, 'headache.json'), [['nodes', 'hd_injury', 'rules', 0, 'next'], 'hd_ed_1h']);
    const errors = errorsOf(await loadProtocolPack(dir));
    expect(errors.map((e) => [e.file, e.path, e.message.split(':')[0]])).toEqual([
      ['headache.json', 'nodes.hd_amb_injury', 'unreachable'],
      ['headache.json', 'nodes.hd_injury.options.0', 'below_demanded_urgency'],
      ['headache.json', 'nodes.hd_injury.options.1', 'below_demanded_urgency'],
      ['headache.json', 'nodes.hd_injury.options.0', 'discriminator_mismatch'],
      ['headache.json', 'nodes.hd_injury.options.1', 'discriminator_mismatch'],
    ]);
  });
});
