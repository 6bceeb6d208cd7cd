import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.ts';
import { checkLifeThreatening, checkPack, checkPathway, type ProtocolIssue } from '../src/triage/checker.ts';
import { DX_CODES, dxCodeTable } from '../src/triage/dx-codes.ts';
import { analyseQuestion, numericRangeIndex } from '../src/triage/graph.ts';
import { assemblePack } from '../src/triage/pack.ts';
import {
  lifeThreateningModuleSchema,
  protocolNodeById,
  numericNodeSchema,
  parseProtocolDocument,
  pathwaySchema,
  SAMPLE_CONTENT_LABEL,
  type Pathway,
} from '../src/triage/schema.ts';

/**
 * A small sound pathway, and for each defect kind a copy with exactly that defect. Every defective
 * copy still passes the schema: the defects are the checker's to find.
 */

const careAdvice = ['Call 111 again if things get worse.'];
const selfCare = {
  type: 'disposition',
  dxCode: 'SAMPLE-SELFCARE',
  label: 'Self-care',
  skillSet: 'none',
  kind: 'self_care',
  timeframeMinutes: null,
  careAdvice,
};
const gp24 = {
  type: 'disposition',
  dxCode: 'Dx08',
  label: 'GP in 24 hours',
  skillSet: 'clinician',
  kind: 'contact_primary_care',
  timeframeMinutes: 1440,
  careAdvice,
};
const ed = {
  type: 'disposition',
  dxCode: 'SAMPLE-ED-1H',
  label: 'ED in 1 hour',
  skillSet: 'none',
  kind: 'ed_utc',
  timeframeMinutes: 60,
  careAdvice,
};

const sound = {
  kind: 'pathway',
  id: 'sore-knee',
  version: '1.0.0',
  title: 'Sore knee',
  sample: true,
  label: SAMPLE_CONTENT_LABEL,
  presentingComplaint: 'Knee pain',
  startNode: 'swollen',
  nodes: {
    swollen: {
      type: 'single_choice',
      text: 'Is the knee hot and swollen?',
      options: [
        { id: 'yes', label: 'Yes', next: 'temp' },
        { id: 'no', label: 'No', next: 'features' },
      ],
    },
    temp: {
      type: 'numeric',
      text: 'Temperature?',
      unit: '°C',
      min: 34,
      max: 42,
      ranges: [{ max: 37.9, next: 'gp_24h' }, { next: 'ed_1h' }],
    },
    features: {
      type: 'multi_choice',
      text: 'Any of these?',
      options: [
        { id: 'locked', label: 'Locked' },
        { id: 'gave_way', label: 'Gave way' },
      ],
      rules: [{ when: { anyOf: ['locked'] }, next: 'gp_24h' }],
      defaultNext: 'self_care',
    },
    gp_24h: gp24,
    ed_1h: ed,
    self_care: selfCare,
  },
};

type Draft = typeof sound & { nodes: Record<string, unknown>; startNode: string };

const clone = (value: typeof sound): Draft => JSON.parse(JSON.stringify(value)) as Draft;

function variant(change: (draft: Draft) => void): Pathway {
  const draft = clone(sound);
  change(draft);
  return pathwaySchema.parse(draft);
}

function only(issues: ProtocolIssue[]): ProtocolIssue {
  expect(issues).toHaveLength(1);
  return issues[0]!;
}

describe('protocol checker', () => {
  it('finds nothing wrong with a sound pathway', () => {
    expect(checkPathway(variant(() => {}))).toEqual([]);
  });

  it('finds a missing start node', () => {
    const issue = only(checkPathway(variant((d) => (d.startNode = 'swolen'))));
    expect(issue).toMatchObject({
      kind: 'missing_start',
      pathwayId: 'sore-knee',
      nodeId: null,
      path: 'startNode',
    });
  });

  it('finds an unreachable node', () => {
    const issue = only(
      checkPathway(variant((d) => (d.nodes.orphan = { ...gp24, dxCode: 'Dx07', timeframeMinutes: 720 }))),
    );
    expect(issue).toMatchObject({ kind: 'unreachable', nodeId: 'orphan', path: 'nodes.orphan' });
  });

  it('finds a branch no answer can take', () => {
    const pathway = variant((d) => {
      (d.nodes.features as { rules: unknown[] }).rules.push({
        when: { allOf: ['locked', 'gave_way'] },
        next: 'ed_1h',
      });
    });
    const issue = only(checkPathway(pathway));
    expect(issue).toMatchObject({ kind: 'unreachable', nodeId: 'features', path: 'nodes.features.rules.1' });
    expect(issue.message).toContain('rule 2');
  });

  it('finds a dead end: a next pointing nowhere', () => {
    const pathway = variant((d) => {
      (d.nodes.swollen as { options: unknown[] }).options.push({
        id: 'unsure',
        label: 'Not sure',
        next: 'featurs',
      });
    });
    const issue = only(checkPathway(pathway));
    expect(issue).toMatchObject({
      kind: 'dead_end',
      nodeId: 'swollen',
      path: 'nodes.swollen.options.2.next',
    });
    expect(issue.message).toContain('featurs');
  });

  it('finds a dead end: numbers within the bounds that no range holds', () => {
    const issue = only(
      checkPathway(
        variant((d) => {
          (d.nodes.temp as { ranges: unknown[] }).ranges = [
            { max: 37.9, next: 'gp_24h' },
            { min: 38.5, next: 'ed_1h' },
          ];
        }),
      ),
    );
    expect(issue).toMatchObject({ kind: 'dead_end', nodeId: 'temp', path: 'nodes.temp.ranges' });
    expect(issue.message).toContain('above 37.9 to below 38.5 °C');
  });

  it('finds a dead end: the way on from the life-threatening module used inside a pathway', () => {
    const issue = only(
      checkPathway(
        variant((d) => ((d.nodes.features as { rules: { next: string }[] }).rules[0]!.next = '@pathway')),
      ),
    );
    expect(issue).toMatchObject({
      kind: 'dead_end',
      nodeId: 'features',
      path: 'nodes.features.rules.0.next',
    });
    expect(issue.message).toContain('only for the life-threatening module');
  });

  it('finds an unknown Dx code', () => {
    const issue = only(checkPathway(variant((d) => (d.nodes.gp_24h = { ...gp24, dxCode: 'Dx999' }))));
    expect(issue).toMatchObject({ kind: 'unknown_dx', nodeId: 'gp_24h', path: 'nodes.gp_24h.dxCode' });
  });

  it('checks Dx codes against the table it is given (a licensed pack brings its own)', () => {
    const pathway = variant((d) => (d.nodes.gp_24h = { ...gp24, dxCode: 'LIC-01' }));
    const licensed = dxCodeTable([
      ...DX_CODES,
      {
        code: 'LIC-01',
        meaning: 'Licensed',
        kind: 'contact_primary_care',
        timeframeMinutes: 1440,
        sample: false,
      },
    ]);
    expect(checkPathway(pathway, { dxCodes: licensed })).toEqual([]);
  });

  it('finds a disposition that disagrees with its Dx code', () => {
    const issue = only(checkPathway(variant((d) => (d.nodes.gp_24h = { ...gp24, timeframeMinutes: 720 }))));
    expect(issue).toMatchObject({
      kind: 'dx_mismatch',
      nodeId: 'gp_24h',
      path: 'nodes.gp_24h.timeframeMinutes',
    });
  });

  it('finds a question without answers', () => {
    const pathway = variant((d) => {
      d.nodes.swollen = {
        type: 'single_choice',
        text: 'Is the knee hot and swollen?',
        options: [
          { id: 'yes', label: 'Yes', next: 'temp' },
          { id: 'no', label: 'No', next: 'features' },
          { id: 'unsure', label: 'Not sure', next: 'look' },
        ],
      };
      d.nodes.look = { type: 'single_choice', text: 'Look at the knee', options: [] };
    });
    const issue = only(checkPathway(pathway));
    expect(issue).toMatchObject({ kind: 'no_answers', nodeId: 'look', path: 'nodes.look.options' });
    const numeric = variant((d) => {
      (d.nodes.swollen as { options: unknown[] }).options.push({
        id: 'unsure',
        label: 'Not sure',
        next: 'pulse',
      });
      d.nodes.pulse = { type: 'numeric', text: 'Pulse?', unit: 'beats/min', min: 20, max: 250, ranges: [] };
    });
    expect(only(checkPathway(numeric))).toMatchObject({
      kind: 'no_answers',
      nodeId: 'pulse',
      path: 'nodes.pulse.ranges',
    });
  });

  it('finds a loop', () => {
    const issue = only(
      checkPathway(
        variant((d) => {
          (d.nodes.features as { rules: unknown[] }).rules.push({
            when: { anyOf: ['gave_way'] },
            next: 'swollen',
          });
        }),
      ),
    );
    expect(issue).toMatchObject({ kind: 'cycle', nodeId: 'features', path: 'nodes.features.rules.1' });
    expect(issue.message).toContain('swollen');
  });

  it('finds a life-threatening module with no way on to the pathway', () => {
    const module = lifeThreateningModuleSchema.parse({
      kind: 'life_threatening',
      id: 'lt',
      version: '1.0.0',
      title: 'Life-threatening',
      sample: true,
      label: SAMPLE_CONTENT_LABEL,
      startNode: 'lt_breathing',
      nodes: {
        lt_breathing: {
          type: 'single_choice',
          text: 'Not breathing?',
          options: [
            { id: 'yes', label: 'Yes', next: 'lt_amb' },
            { id: 'no', label: 'No', next: 'lt_amb' },
          ],
        },
        lt_amb: {
          ...ed,
          dxCode: 'SAMPLE-AMB-C1',
          kind: 'ambulance',
          timeframeMinutes: 15,
          ambulanceCategory: 1,
          skillSet: 'paramedic',
        },
      },
    });
    const issue = only(checkLifeThreatening(module));
    expect(issue).toMatchObject({ kind: 'unreachable', pathwayId: 'lt', nodeId: null });
  });

  it('finds a pathway node id that clashes with the life-threatening module', () => {
    const lt = lifeThreateningModuleSchema.parse({
      kind: 'life_threatening',
      id: 'lt',
      version: '1.0.0',
      title: 'Life-threatening',
      sample: true,
      label: SAMPLE_CONTENT_LABEL,
      startNode: 'swollen',
      nodes: {
        swollen: {
          type: 'single_choice',
          text: 'Not breathing?',
          options: [{ id: 'no', label: 'No', next: '@pathway' }],
        },
      },
    });
    const manifest = parseProtocolDocument({
      kind: 'pack',
      id: 'knees',
      version: '1.0.0',
      title: 'Knees',
      sample: true,
      label: SAMPLE_CONTENT_LABEL,
      lifeThreatening: 'lt',
      pathways: [{ id: 'sore-knee' }],
    });
    const assembled = assemblePack([
      { source: 'pack.json', document: manifest },
      { source: 'lt.json', document: lt },
      { source: 'sore-knee.json', document: variant(() => {}) },
    ]);
    if (!assembled.ok) throw new Error('expected the pack to assemble');
    const issue = only(checkPack(assembled.pack));
    expect(issue).toMatchObject({ kind: 'duplicate_id', pathwayId: 'sore-knee', nodeId: 'swollen' });
  });

  it('reports several defects at once', () => {
    const pathway = variant((d) => {
      d.nodes.gp_24h = { ...gp24, dxCode: 'Dx999' };
      (d.nodes.swollen as { options: { next: string }[] }).options[0]!.next = 'nowhere';
    });
    expect(checkPathway(pathway).map((i) => [i.kind, i.nodeId])).toEqual([
      ['dead_end', 'swollen'],
      ['unknown_dx', 'gp_24h'],
      ['unreachable', 'temp'],
      ['unreachable', 'ed_1h'],
    ]);
  });
});

describe('protocol schema', () => {
  it('names the field that is wrong', () => {
    const draft = clone(sound);
    (draft.nodes.swollen as { options: { next?: string }[] }).options[0]!.next = undefined;
    (draft.nodes.gp_24h as { kind: string }).kind = 'ambulance';
    const error = (() => {
      try {
        parseProtocolDocument(draft, 'sore-knee.json');
      } catch (e) {
        return e;
      }
    })() as ValidationError;
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.issues.map((i) => i.path)).toEqual([
      'sore-knee.json.nodes.swollen.options.0.next',
      'sore-knee.json.nodes.gp_24h.ambulanceCategory',
    ]);
  });

  it('requires sample content to say it is not clinically validated', () => {
    const result = pathwaySchema.safeParse({ ...sound, label: 'Sample content' });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['label']);
    expect(
      pathwaySchema.safeParse({ ...sound, sample: false, label: 'Licensed content, release 1' }).success,
    ).toBe(true);
  });

  it('refuses multi-choice rules naming options the question does not offer', () => {
    const draft = clone(sound);
    (draft.nodes.features as { rules: unknown[] }).rules = [{ when: { anyOf: ['swollen'] }, next: 'gp_24h' }];
    const result = pathwaySchema.safeParse(draft);
    expect(result.error?.issues[0]?.path).toEqual(['nodes', 'features', 'rules', 0, 'when', 'anyOf', 0]);
  });

  it('never lets a node id reach Object.prototype', () => {
    const draft = clone(sound);
    draft.nodes = { ...(JSON.parse('{"__proto__": {"type": "disposition"}}') as object), ...draft.nodes };
    const parsed = pathwaySchema.parse(draft);
    expect(Object.hasOwn(parsed.nodes, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(parsed.nodes)).toBe(Object.prototype);
    expect(protocolNodeById(parsed.nodes, 'constructor')).toBeUndefined();
    expect(protocolNodeById(parsed.nodes, 'toString')).toBeUndefined();
  });
});

describe('branch analysis', () => {
  it('finds an example answer for each branch of a whole-number question', () => {
    const node = numericNodeSchema.parse({
      type: 'numeric',
      text: 'Age?',
      unit: 'years',
      min: 0,
      max: 120,
      integer: true,
      ranges: [
        { max: 0.5, next: 'a' },
        { min: 0.2, max: 4.9, next: 'b' },
        { min: 5, max: 15, next: 'c' },
        { min: 10, max: 12, next: 'never' },
        { next: 'd' },
      ],
    });
    const analysis = analyseQuestion(node);
    expect(analysis.branches.map((b) => [b.next, b.example])).toEqual([
      ['a', 0],
      ['b', 1],
      ['c', 5],
      ['d', 16],
    ]);
    expect(analysis.neverTaken.map((b) => b.next)).toEqual(['never']);
    expect(analysis.uncovered).toEqual([]);
  });

  it('finds the smallest answer that takes each multi-choice branch', () => {
    const pathway = variant(() => {});
    const features = pathway.nodes.features!;
    if (features.type !== 'multi_choice') throw new Error('expected a multi-choice node');
    expect(analyseQuestion(features).branches.map((b) => b.example)).toEqual([['locked'], []]);
  });

  it('agrees with the engine on every numeric question: examples take their branch, gaps are found', () => {
    const bound = fc.integer({ min: -40, max: 40 }).map((n) => n / 4);
    const range = fc.record({
      min: fc.option(bound, { nil: undefined }),
      max: fc.option(bound, { nil: undefined }),
    });
    fc.assert(
      fc.property(
        bound,
        bound,
        fc.boolean(),
        fc.array(range, { maxLength: 5 }),
        fc.array(
          fc.integer({ min: -400, max: 400 }).map((n) => n / 40),
          { maxLength: 40 },
        ),
        (a, b, integer, rawRanges, probes) => {
          const ranges = rawRanges
            .map((r, i) => ({ ...r, next: `n${i}` }))
            .filter((r) => r.min === undefined || r.max === undefined || r.min <= r.max);
          const [min, max] = a <= b ? [a, b] : [b, a];
          const parsed = numericNodeSchema.safeParse({
            type: 'numeric',
            text: 'x',
            unit: 'u',
            min,
            max,
            integer,
            ranges,
          });
          if (!parsed.success) return; // e.g. no whole number between min and max
          const node = parsed.data;
          const analysis = analyseQuestion(node);
          for (const branch of analysis.branches) {
            const value = branch.example as number;
            expect(value).toBeGreaterThanOrEqual(min);
            expect(value).toBeLessThanOrEqual(max);
            if (integer) expect(Number.isInteger(value)).toBe(true);
            expect(`ranges.${numericRangeIndex(node, value)}`).toBe(branch.path);
          }
          const taken = new Set(analysis.branches.map((br) => br.path));
          for (const probe of [min, max, ...probes]) {
            if (probe < min || probe > max || (integer && !Number.isInteger(probe))) continue;
            const index = numericRangeIndex(node, probe);
            if (index === -1) expect(analysis.uncovered).not.toEqual([]);
            else expect(taken.has(`ranges.${index}`)).toBe(true);
          }
          expect(analysis.branches.length + analysis.neverTaken.length).toBe(ranges.length);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
