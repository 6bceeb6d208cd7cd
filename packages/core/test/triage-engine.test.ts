import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../src/errors.ts';
import {
  activeAnswers,
  answer,
  triageAnswerSchema,
  changeAnswer,
  replayTriage,
  startTriage,
  walk,
  type TriageAnswer,
  type TriageState,
} from '../src/triage/engine.ts';
import {
  ProtocolDefectError,
  TriageAnswerRejectedError,
  TriageOutOfOrderError,
} from '../src/triage/errors.ts';
import { composeProtocol, type TriageProtocol } from '../src/triage/pack.ts';
import {
  lifeThreateningModuleSchema,
  packManifestSchema,
  pathwaySchema,
  SAMPLE_CONTENT_LABEL,
} from '../src/triage/schema.ts';
import { simulateAnswers } from '../src/triage/simulation.ts';

const manifest = packManifestSchema.parse({
  kind: 'pack',
  id: 'test-pack',
  version: '1.0.0',
  title: 'Test pack',
  sample: true,
  label: SAMPLE_CONTENT_LABEL,
  lifeThreatening: 'lt',
  pathways: [{ id: 'fever' }],
});

const careAdvice = ['Call 111 again if things get worse.'];

const lifeThreatening = lifeThreateningModuleSchema.parse({
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
        { id: 'no', label: 'No', next: 'lt_stroke' },
      ],
    },
    lt_stroke: {
      type: 'single_choice',
      text: 'Signs of stroke?',
      options: [
        { id: 'yes', label: 'Yes', next: 'lt_amb_c2' },
        { id: 'no', label: 'No', next: '@pathway' },
      ],
    },
    lt_amb: {
      type: 'disposition',
      dxCode: 'SAMPLE-AMB-C1',
      label: 'Ambulance',
      skillSet: 'paramedic',
      kind: 'ambulance',
      timeframeMinutes: 15,
      ambulanceCategory: 1,
      careAdvice,
    },
    lt_amb_c2: {
      type: 'disposition',
      dxCode: 'SAMPLE-AMB-C2',
      label: 'Ambulance',
      skillSet: 'paramedic',
      kind: 'ambulance',
      timeframeMinutes: 40,
      ambulanceCategory: 2,
      careAdvice,
    },
  },
});

const disposition = (dxCode: string, kind: string, timeframeMinutes: number | null) => ({
  type: 'disposition',
  dxCode,
  label: dxCode,
  skillSet: 'clinician',
  kind,
  timeframeMinutes,
  careAdvice,
});

const pathway = pathwaySchema.parse({
  kind: 'pathway',
  id: 'fever',
  version: '1.2.0',
  title: 'Fever',
  sample: true,
  label: SAMPLE_CONTENT_LABEL,
  presentingComplaint: 'Fever',
  startNode: 'temp',
  nodes: {
    temp: {
      type: 'numeric',
      text: 'Temperature?',
      unit: '°C',
      min: 33,
      max: 43,
      ranges: [{ max: 35.9, next: 'speak_1h' }, { max: 37.9, next: 'days' }, { next: 'signs' }],
    },
    days: {
      type: 'numeric',
      text: 'How many days?',
      unit: 'days',
      min: 0,
      max: 60,
      integer: true,
      ranges: [{ max: 4, next: 'self_care' }, { next: 'contact_24h' }],
    },
    signs: {
      type: 'multi_choice',
      text: 'Any of these?',
      options: [
        { id: 'rash', label: 'Rash' },
        { id: 'confused', label: 'Confused' },
        { id: 'cough', label: 'Cough' },
        { id: 'breathless', label: 'Breathless' },
      ],
      rules: [
        { when: { anyOf: ['rash', 'confused'] }, next: 'ed_1h' },
        { when: { allOf: ['cough', 'breathless'] }, next: 'speak_1h' },
        { when: { anyOf: ['cough'], none: ['breathless'] }, next: 'well' },
      ],
      defaultNext: 'days',
    },
    well: {
      type: 'single_choice',
      text: 'Otherwise well?',
      options: [
        { id: 'yes', label: 'Yes', next: 'self_care' },
        { id: 'no', label: 'No', next: 'contact_24h' },
      ],
    },
    ed_1h: disposition('SAMPLE-ED-1H', 'ed_utc', 60),
    speak_1h: disposition('Dx11', 'speak_to_primary_care', 60),
    contact_24h: disposition('Dx08', 'contact_primary_care', 1440),
    self_care: disposition('SAMPLE-SELFCARE', 'self_care', null),
  },
});

const protocol = composeProtocol(manifest, lifeThreatening, pathway);
const throughLifeThreatening: TriageAnswer[] = [
  { nodeId: 'lt_breathing', value: 'no' },
  { nodeId: 'lt_stroke', value: 'no' },
];

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}

function answerAll(state: TriageState, answers: readonly TriageAnswer[]): TriageState {
  return answers.reduce((s, a) => answer(s, a.nodeId, a.value), state);
}

describe('triage engine: walking', () => {
  it('asks the life-threatening questions first, then the pathway', () => {
    const first = walk(protocol, []);
    expect(first).toMatchObject({
      status: 'question',
      node: { id: 'lt_breathing', section: 'life_threatening' },
    });
    const next = walk(protocol, throughLifeThreatening);
    expect(next).toMatchObject({ status: 'question', node: { id: 'temp', section: 'pathway', unit: '°C' } });
    expect(next.path.map((s) => s.nodeId)).toEqual(['lt_breathing', 'lt_stroke']);
  });

  it('ends at an ambulance disposition with its category on a life-threatening "yes"', () => {
    const result = walk(protocol, [{ nodeId: 'lt_breathing', value: 'yes' }]);
    expect(result).toMatchObject({
      status: 'disposition',
      disposition: { id: 'lt_amb', kind: 'ambulance', ambulanceCategory: 1, dxCode: 'SAMPLE-AMB-C1' },
      path: [{ nodeId: 'lt_breathing', value: 'yes', answer: 'Yes', next: 'lt_amb' }],
    });
  });

  it('returns the disposition and the path taken, with answers in words', () => {
    const result = walk(protocol, [
      ...throughLifeThreatening,
      { nodeId: 'temp', value: 38.6 },
      { nodeId: 'signs', value: ['breathless', 'cough'] },
    ]);
    expect(result.status).toBe('disposition');
    if (result.status !== 'disposition') return;
    expect(result.disposition).toMatchObject({ id: 'speak_1h', dxCode: 'Dx11', timeframeMinutes: 60 });
    expect(result.path.slice(2)).toEqual([
      {
        nodeId: 'temp',
        section: 'pathway',
        question: 'Temperature?',
        value: 38.6,
        answer: '38.6 °C',
        next: 'signs',
      },
      {
        nodeId: 'signs',
        section: 'pathway',
        question: 'Any of these?',
        value: ['cough', 'breathless'], // normalised to the question's order
        answer: 'Cough; Breathless',
        next: 'speak_1h',
      },
    ]);
  });

  it('labels every result with its content and the sample notice', () => {
    for (const answers of [[], throughLifeThreatening, [{ nodeId: 'lt_breathing', value: 'yes' }]]) {
      const result = walk(protocol, answers);
      expect(result.content).toMatchObject({
        packId: 'test-pack',
        pathwayId: 'fever',
        pathwayVersion: '1.2.0',
        lifeThreateningVersion: '1.0.0',
        sample: true,
      });
      expect(result.content.label).toMatch(/not clinically validated/);
    }
  });

  it('does not show simulation weights with a question', () => {
    const weighted = composeProtocol(manifest, lifeThreatening, {
      ...pathway,
      nodes: {
        ...pathway.nodes,
        well: {
          type: 'single_choice',
          text: 'Otherwise well?',
          options: [
            { id: 'yes', label: 'Yes', next: 'self_care', simWeight: 3 },
            { id: 'no', label: 'No', next: 'contact_24h', simWeight: 1 },
          ],
        },
      },
    });
    const result = walk(weighted, [
      ...throughLifeThreatening,
      { nodeId: 'temp', value: 39 },
      { nodeId: 'signs', value: ['cough'] },
    ]);
    expect(result).toMatchObject({ status: 'question', node: { id: 'well' } });
    expect(JSON.stringify(result)).not.toContain('simWeight');
  });

  it('takes numeric ranges inclusively, first match winning', () => {
    const to = (value: number) => {
      const r = walk(protocol, [...throughLifeThreatening, { nodeId: 'temp', value }]);
      return r.status === 'question' ? r.node.id : r.disposition.id;
    };
    expect(to(33)).toBe('speak_1h');
    expect(to(35.9)).toBe('speak_1h');
    expect(to(35.95)).toBe('days');
    expect(to(37.9)).toBe('days');
    expect(to(37.91)).toBe('signs');
    expect(to(43)).toBe('signs');
  });

  it('applies multi-choice rules in order: anyOf, allOf, none, then the default', () => {
    const to = (value: string[]) => {
      const r = walk(protocol, [
        ...throughLifeThreatening,
        { nodeId: 'temp', value: 39 },
        { nodeId: 'signs', value },
      ]);
      return r.status === 'question' ? r.node.id : r.disposition.id;
    };
    expect(to(['confused'])).toBe('ed_1h');
    expect(to(['rash', 'cough', 'breathless'])).toBe('ed_1h');
    expect(to(['cough', 'breathless'])).toBe('speak_1h');
    expect(to(['cough'])).toBe('well');
    expect(to(['breathless'])).toBe('days');
    expect(to([])).toBe('days');
  });
});

describe('triage engine: typed errors', () => {
  const atTemp = answerAll(startTriage(protocol), throughLifeThreatening);
  const atSigns = answer(atTemp, 'temp', 39);
  const atDays = answer(atTemp, 'temp', 37);

  it('refuses an option the question does not offer', () => {
    const error = thrown(() => answer(startTriage(protocol), 'lt_breathing', 'maybe'));
    expect(error).toBeInstanceOf(TriageAnswerRejectedError);
    expect(error).toMatchObject({
      code: 'triage_answer_rejected',
      reason: 'option_not_offered',
      nodeId: 'lt_breathing',
    });
    expect(error).toBeInstanceOf(DomainError);
    expect(thrown(() => answer(atSigns, 'signs', ['cough', 'sneezing']))).toMatchObject({
      reason: 'option_not_offered',
    });
    expect(thrown(() => answer(atSigns, 'signs', ['cough', 'cough']))).toMatchObject({
      reason: 'duplicate_option',
    });
  });

  it('refuses a number outside the bounds, a fraction where a whole number is asked, and the wrong type', () => {
    expect(thrown(() => answer(atTemp, 'temp', 43.1))).toMatchObject({
      reason: 'out_of_range',
      nodeId: 'temp',
    });
    expect(thrown(() => answer(atTemp, 'temp', 32.9))).toMatchObject({ reason: 'out_of_range' });
    expect(thrown(() => answer(atTemp, 'temp', Number.NaN))).toMatchObject({ reason: 'wrong_type' });
    expect(thrown(() => answer(atTemp, 'temp', '38'))).toMatchObject({ reason: 'wrong_type' });
    expect(thrown(() => answer(atDays, 'days', 2.5))).toMatchObject({ reason: 'not_whole_number' });
    expect(thrown(() => answer(atDays, 'days', 61))).toMatchObject({ reason: 'out_of_range' });
    expect(thrown(() => answer(atSigns, 'signs', 'cough'))).toMatchObject({ reason: 'wrong_type' });
    expect(thrown(() => answer(startTriage(protocol), 'lt_breathing', ['no']))).toMatchObject({
      reason: 'wrong_type',
    });
  });

  it('never repeats the answer given in the message', () => {
    const error = thrown(() => answer(atTemp, 'temp', 47.25)) as Error;
    expect(error.message).not.toContain('47.25');
    expect(error.message).toContain('33 to 43 °C');
  });

  it('refuses an answer out of order', () => {
    const ahead = thrown(() => answer(startTriage(protocol), 'temp', 39));
    expect(ahead).toBeInstanceOf(TriageOutOfOrderError);
    expect(ahead).toMatchObject({
      code: 'triage_out_of_order',
      nodeId: 'temp',
      expectedNodeId: 'lt_breathing',
    });

    const again = thrown(() => answer(atTemp, 'lt_stroke', 'no')) as TriageOutOfOrderError;
    expect(again.expectedNodeId).toBe('temp');
    expect(again.message).toContain('change it instead');

    const unknown = thrown(() => answer(atTemp, 'constructor', 'no')) as TriageOutOfOrderError;
    expect(unknown).toBeInstanceOf(TriageOutOfOrderError);
    expect(unknown.message).toContain('not in this protocol');

    const done = answer(startTriage(protocol), 'lt_breathing', 'yes');
    expect(thrown(() => answer(done, 'lt_stroke', 'no'))).toMatchObject({ expectedNodeId: null });
  });

  it('refuses an answer list out of order in walk', () => {
    expect(thrown(() => walk(protocol, [{ nodeId: 'lt_stroke', value: 'no' }]))).toMatchObject({
      code: 'triage_out_of_order',
      expectedNodeId: 'lt_breathing',
    });
    expect(
      thrown(() =>
        walk(protocol, [
          { nodeId: 'lt_breathing', value: 'yes' },
          { nodeId: 'lt_stroke', value: 'no' },
        ]),
      ),
    ).toMatchObject({ code: 'triage_out_of_order', expectedNodeId: null });
  });

  it('reports broken content it walks into as a protocol defect', () => {
    const days = protocol.nodes.days!;
    const well = protocol.nodes.well!;
    const withNode = (id: string, node: unknown): TriageProtocol => ({
      ...protocol,
      nodes: { ...protocol.nodes, [id]: node as TriageProtocol['nodes'][string] },
    });
    const toDays = [...throughLifeThreatening, { nodeId: 'temp', value: 37 }];
    const gap = withNode('days', { ...days, ranges: [{ max: 4, next: 'self_care' }] });
    expect(thrown(() => walk(gap, [...toDays, { nodeId: 'days', value: 10 }]))).toBeInstanceOf(
      ProtocolDefectError,
    );
    const dangling = withNode('days', { ...days, ranges: [{ next: 'nowhere' }] });
    expect(thrown(() => walk(dangling, [...toDays, { nodeId: 'days', value: 1 }]))).toMatchObject({
      code: 'protocol_defect',
      nodeId: 'days',
    });
    const loop = withNode('well', { ...well, options: [{ id: 'no', label: 'No', next: 'temp' }] });
    const toWell = [
      ...throughLifeThreatening,
      { nodeId: 'temp', value: 39 },
      { nodeId: 'signs', value: ['cough'] },
    ];
    expect(thrown(() => walk(loop, [...toWell, { nodeId: 'well', value: 'no' }]))).toBeInstanceOf(
      ProtocolDefectError,
    );
  });

  it('gives the server a schema for answers arriving from outside', () => {
    expect(triageAnswerSchema.safeParse({ nodeId: 'temp', value: 38.5 }).success).toBe(true);
    expect(triageAnswerSchema.safeParse({ nodeId: 'signs', value: ['cough'] }).success).toBe(true);
    expect(triageAnswerSchema.safeParse({ nodeId: '__proto__', value: 'x' }).success).toBe(false);
    expect(triageAnswerSchema.safeParse({ nodeId: 'temp', value: { $gt: 1 } }).success).toBe(false);
  });
});

describe('triage engine: history and changed answers', () => {
  it('re-walks from a changed answer and keeps the old answers in the history', () => {
    let state = answerAll(startTriage(protocol), [
      ...throughLifeThreatening,
      { nodeId: 'temp', value: 39 },
      { nodeId: 'signs', value: ['cough'] },
    ]);
    expect(state.result).toMatchObject({ status: 'question', node: { id: 'well' } });

    state = changeAnswer(state, 'temp', 37);
    expect(state.result).toMatchObject({ status: 'question', node: { id: 'days' } });
    expect(state.result.path.map((s) => [s.nodeId, s.value])).toEqual([
      ['lt_breathing', 'no'],
      ['lt_stroke', 'no'],
      ['temp', 37],
    ]);
    expect(state.history).toEqual([
      { seq: 1, nodeId: 'lt_breathing', value: 'no', change: false, superseded: false },
      { seq: 2, nodeId: 'lt_stroke', value: 'no', change: false, superseded: false },
      { seq: 3, nodeId: 'temp', value: 39, change: false, superseded: true },
      { seq: 4, nodeId: 'signs', value: ['cough'], change: false, superseded: true },
      { seq: 5, nodeId: 'temp', value: 37, change: true, superseded: false },
    ]);

    state = answer(state, 'days', 2);
    expect(state.result).toMatchObject({ status: 'disposition', disposition: { id: 'self_care' } });

    // A change to a life-threatening answer re-walks to an ambulance at once.
    state = changeAnswer(state, 'lt_stroke', 'yes');
    expect(state.result).toMatchObject({
      status: 'disposition',
      disposition: { id: 'lt_amb_c2', ambulanceCategory: 2 },
    });
    expect(state.history.filter((e) => !e.superseded).map((e) => e.seq)).toEqual([1, 7]);
    expect(state.history).toHaveLength(7);
  });

  it('asks the later questions again rather than reusing their old answers', () => {
    const state = answerAll(startTriage(protocol), [
      ...throughLifeThreatening,
      { nodeId: 'temp', value: 39 },
      { nodeId: 'signs', value: [] },
      { nodeId: 'days', value: 7 },
    ]);
    expect(state.result).toMatchObject({ status: 'disposition', disposition: { id: 'contact_24h' } });
    const changed = changeAnswer(state, 'signs', ['breathless']); // still leads to `days`
    expect(changed.result).toMatchObject({ status: 'question', node: { id: 'days' } });
  });

  it('refuses to change an answer that is not on the current path, and leaves the state as it was', () => {
    const state = answerAll(startTriage(protocol), throughLifeThreatening);
    expect(thrown(() => changeAnswer(state, 'temp', 38))).toMatchObject({
      code: 'triage_out_of_order',
      expectedNodeId: 'temp',
    });
    const changed = changeAnswer(state, 'lt_breathing', 'yes');
    expect(thrown(() => changeAnswer(changed, 'lt_stroke', 'yes'))).toBeInstanceOf(TriageOutOfOrderError);
    expect(thrown(() => changeAnswer(state, 'lt_breathing', 'perhaps'))).toBeInstanceOf(
      TriageAnswerRejectedError,
    );
    expect(state.history).toHaveLength(2);
  });

  it('rebuilds the same state from the answer events', () => {
    let state = answerAll(startTriage(protocol), [...throughLifeThreatening, { nodeId: 'temp', value: 39 }]);
    state = changeAnswer(state, 'temp', 35);
    state = changeAnswer(state, 'lt_stroke', 'no');
    state = answerAll(state, [
      { nodeId: 'temp', value: 40 },
      { nodeId: 'signs', value: ['rash'] },
    ]);
    const events = state.history.map((e) => ({ nodeId: e.nodeId, value: e.value }));
    expect(replayTriage(protocol, events)).toEqual(state);
    expect(walk(protocol, activeAnswers(state.history))).toEqual(state.result);
  });
});

describe('triage engine: properties', () => {
  const seededRandom = fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }));

  function randomFrom(stream: Iterable<number>): () => number {
    const iterator = stream[Symbol.iterator]();
    return () => iterator.next().value as number;
  }

  it('gives the same result for the same input, and the same after a JSON round trip (browser and server)', () => {
    fc.assert(
      fc.property(seededRandom, (stream) => {
        const answers = simulateAnswers(protocol, randomFrom(stream));
        const here = walk(protocol, answers);
        const there = walk(
          JSON.parse(JSON.stringify(protocol)) as TriageProtocol,
          JSON.parse(JSON.stringify(answers)),
        );
        expect(there).toEqual(here);
        expect(walk(protocol, answers)).toEqual(here);
        expect(here.status).toBe('disposition');
      }),
      { numRuns: 300 },
    );
  });

  it('after any mix of answers and changes, the result is the walk of the active answers, and replay rebuilds it', () => {
    fc.assert(
      fc.property(seededRandom, fc.array(fc.nat(), { maxLength: 6 }), (stream, changes) => {
        const random = randomFrom(stream);
        let state = answerAll(startTriage(protocol), simulateAnswers(protocol, random));
        for (const pick of changes) {
          const path = state.result.path;
          if (path.length === 0) break;
          const step = path[pick % path.length]!;
          // A fresh simulated walk gives a valid answer for any question: take its answer for this one, if any.
          const alternative = simulateAnswers(protocol, random).find((a) => a.nodeId === step.nodeId);
          if (!alternative) continue;
          state = changeAnswer(state, step.nodeId, alternative.value);
          expect(state.result.path.find((s) => s.nodeId === step.nodeId)?.value).toEqual(alternative.value);
        }
        expect(state.result).toEqual(walk(protocol, activeAnswers(state.history)));
        const events = state.history.map((e) => ({ nodeId: e.nodeId, value: e.value }));
        expect(replayTriage(protocol, events)).toEqual(state);
      }),
      { numRuns: 300 },
    );
  });
});
