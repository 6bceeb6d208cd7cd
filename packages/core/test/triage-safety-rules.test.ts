import { describe, expect, it } from 'vitest';
import { checkPack, type ProtocolIssue } from '../src/triage/checker.ts';
import { assemblePack, type ProtocolPack } from '../src/triage/pack.ts';
import { parseProtocolDocument, SAMPLE_CONTENT_LABEL } from '../src/triage/schema.ts';
import { compareUrgency, type DispositionUrgency } from '../src/triage/urgency.ts';

/**
 * The clinical safety rules of the protocol checker, each shown refusing a small pack that breaks
 * it. Every pack here passes the schema and the graph checks: the findings are the safety rules'.
 */

const careAdvice = ['Call 111 again if things get worse.'];
const disposition = (dxCode: string, kind: string, timeframeMinutes: number | null, extra = {}) => ({
  type: 'disposition',
  dxCode,
  label: dxCode,
  skillSet: 'none',
  kind,
  timeframeMinutes,
  careAdvice,
  ...extra,
});
const amb = (category: 1 | 2 | 3 | 4) =>
  disposition(`SAMPLE-AMB-C${category}`, 'ambulance', { 1: 15, 2: 40, 3: 120, 4: 180 }[category], {
    ambulanceCategory: category,
  });
const selfCare = disposition('SAMPLE-SELFCARE', 'self_care', null);
const ed1h = disposition('SAMPLE-ED-1H', 'ed_utc', 60);
const callBack1h = disposition('Dx11', 'speak_to_primary_care', 60);

const header = (id: string) => ({
  id,
  version: '1.0.0',
  title: id,
  sample: true,
  label: SAMPLE_CONTENT_LABEL,
});

type Nodes = Record<string, unknown>;

/** A life-threatening module asking one question: "not breathing" yes leads to `yesNext`. */
function lifeThreatening(yes: Record<string, unknown>, extraNodes: Nodes = { lt_amb: amb(1) }) {
  return {
    kind: 'life_threatening',
    ...header('lt'),
    startNode: 'lt_breathing',
    nodes: {
      lt_breathing: {
        type: 'single_choice',
        text: 'Is the person not breathing, or only gasping?',
        options: [
          { id: 'yes', label: 'Yes', next: 'lt_amb', lifeThreatening: true, ...yes },
          { id: 'no', label: 'No', next: '@pathway' },
        ],
      },
      ...extraNodes,
    },
  };
}

function pathway(id: string, startNode: string, nodes: Nodes) {
  return { kind: 'pathway', ...header(id), presentingComplaint: id, startNode, nodes };
}

function pack(module: unknown, ...pathways: ReturnType<typeof pathway>[]): ProtocolPack {
  const manifest = {
    kind: 'pack',
    ...header('small'),
    lifeThreatening: 'lt',
    pathways: pathways.map((p) => ({ id: p.id })),
  };
  const assembled = assemblePack(
    [manifest, module, ...pathways].map((doc, i) => ({
      source: `doc${i}.json`,
      document: parseProtocolDocument(doc),
    })),
  );
  if (!assembled.ok) throw new Error(JSON.stringify(assembled.problems));
  return assembled.pack;
}

/** A pathway whose one question's "yes" carries `marks` and leads to `yesNext`. */
function oneQuestion(marks: Record<string, unknown>, yesNext: string, nodes: Nodes) {
  return pathway('chest-pain', 'cp_q', {
    cp_q: {
      type: 'single_choice',
      text: 'Chest pain and more breathless than usual?',
      options: [
        { id: 'yes', label: 'Yes', next: yesNext, ...marks },
        { id: 'no', label: 'No', next: 'cp_selfcare' },
      ],
    },
    cp_selfcare: selfCare,
    ...nodes,
  });
}

const module = lifeThreatening({});

function only(issues: ProtocolIssue[]): ProtocolIssue {
  expect(issues).toHaveLength(1);
  return issues[0]!;
}

describe('protocol checker: clinical safety rules', () => {
  it('accepts a pack whose marked answers all lead as urgently as they demand', () => {
    const p = oneQuestion({ lifeThreatening: true, discriminator: 'chest_pain_breathless' }, 'cp_amb', {
      cp_amb: amb(2),
    });
    expect(checkPack(pack(module, p))).toEqual([]);
  });

  it('still loads and passes a pack written before the marks (none of them given)', () => {
    const unmarked = lifeThreatening({ lifeThreatening: undefined });
    expect(JSON.stringify(unmarked)).not.toMatch(/redFlag|lifeThreatening"|demandsAtLeast|discriminator/);
    expect(checkPack(pack(unmarked, oneQuestion({}, 'cp_selfcare', {})))).toEqual([]);
  });

  it('refuses a life-threatening answer that can lead to a 1-hour call-back, following every path from it', () => {
    const p = oneQuestion({ lifeThreatening: true }, 'cp_now', {
      cp_now: {
        type: 'single_choice',
        text: 'Is the pain there now?',
        options: [
          { id: 'yes', label: 'Yes', next: 'cp_amb' },
          { id: 'no', label: 'No', next: 'cp_speak_1h' },
        ],
      },
      cp_amb: amb(2),
      cp_speak_1h: callBack1h,
    });
    expect(only(checkPack(pack(module, p)))).toEqual({
      kind: 'below_demanded_urgency',
      pathwayId: 'chest-pain',
      nodeId: 'cp_q',
      path: 'nodes.cp_q.options.0',
      message:
        'pathway chest-pain, question cp_q, answer "Yes" demands an emergency ambulance (category 1 or 2) but can lead to cp_speak_1h "Dx11" (Dx11), which is less urgent. An answer must never lead below the urgency it demands',
    });
  });

  it('refuses "not breathing = yes" leading to self-care', () => {
    const issues = checkPack(
      pack(
        lifeThreatening({ next: 'lt_selfcare' }, { lt_selfcare: selfCare }),
        oneQuestion({}, 'cp_selfcare', {}),
      ),
    );
    expect(issues.map((i) => [i.kind, i.pathwayId, i.nodeId, i.path])).toEqual([
      ['self_care_after_red_flag', 'lt', 'lt_breathing', 'nodes.lt_breathing.options.0'],
      ['module_not_emergency', 'lt', 'lt_selfcare', 'nodes.lt_selfcare'],
    ]);
    expect(issues[0]!.message).toBe(
      'life-threatening module lt, question lt_breathing, answer "Yes" is a red flag but can lead to self-care: lt_selfcare "SAMPLE-SELFCARE" (SAMPLE-SELFCARE). An answer marked as a red flag must never end in self-care',
    );
    expect(issues[1]!.message).toBe(
      'life-threatening module lt, disposition lt_selfcare "SAMPLE-SELFCARE" (SAMPLE-SELFCARE) is not an emergency ambulance (category 1 or 2). The life-threatening module must end only in an emergency response',
    );
  });

  it('refuses a life-threatening module ending in anything but an emergency, marked or not', () => {
    const unmarked = lifeThreatening({ next: 'lt_ed', lifeThreatening: undefined }, { lt_ed: ed1h });
    expect(only(checkPack(pack(unmarked, oneQuestion({}, 'cp_selfcare', {}))))).toMatchObject({
      kind: 'module_not_emergency',
      pathwayId: 'lt',
      nodeId: 'lt_ed',
    });
  });

  it('refuses an ambulance category lowered from 2 to 4', () => {
    const p = oneQuestion({ demandsAtLeast: 'SAMPLE-AMB-C2' }, 'cp_amb_c4', { cp_amb_c4: amb(4) });
    const issue = only(checkPack(pack(module, p)));
    expect(issue).toMatchObject({
      kind: 'ambulance_category_lowered',
      pathwayId: 'chest-pain',
      nodeId: 'cp_q',
    });
    expect(issue.message).toBe(
      'pathway chest-pain, question cp_q, answer "Yes" demands SAMPLE-AMB-C2 (Emergency ambulance response, category 2 (emergency)) but can lead to cp_amb_c4 "SAMPLE-AMB-C4" (SAMPLE-AMB-C4): the ambulance category is lowered from 2 to 4. An answer must never lead below the urgency it demands',
    );
    // A life-threatening answer demands category 1 or 2: category 3 is lowered too.
    const c3 = oneQuestion({ lifeThreatening: true }, 'cp_amb_c3', { cp_amb_c3: amb(3) });
    expect(only(checkPack(pack(module, c3))).message).toContain('lowered from 2 to 3');
  });

  it('refuses self-care after a red flag, for every answer selecting a flagged multi-choice option', () => {
    // "Itchy" is tested first: itchy and bleeding together take the itchy rule to self-care.
    const p = pathway('rash', 'rs_features', {
      rs_features: {
        type: 'multi_choice',
        text: 'Any of these?',
        options: [
          { id: 'itchy', label: 'Itchy' },
          { id: 'bleeding', label: 'Bleeding into the skin', redFlag: true },
        ],
        rules: [
          { when: { anyOf: ['itchy'] }, next: 'rs_selfcare' },
          { when: { anyOf: ['bleeding'] }, next: 'rs_speak_1h' },
        ],
        defaultNext: 'rs_selfcare',
      },
      rs_selfcare: selfCare,
      rs_speak_1h: callBack1h,
    });
    const issue = only(checkPack(pack(module, p)));
    expect(issue).toMatchObject({
      kind: 'self_care_after_red_flag',
      pathwayId: 'rash',
      nodeId: 'rs_features',
      path: 'nodes.rs_features.options.1',
    });
    expect(issue.message).toContain(
      'any answer with "Bleeding into the skin" is a red flag but can lead to self-care',
    );
  });

  it('refuses a flagged numeric range whose path reaches self-care two questions on', () => {
    const p = pathway('breathing', 'bd_rate', {
      bd_rate: {
        type: 'numeric',
        text: 'Breaths in one minute?',
        unit: 'breaths/min',
        min: 0,
        max: 80,
        integer: true,
        ranges: [
          { max: 29, next: 'bd_selfcare' },
          { min: 30, next: 'bd_cough', demandsAtLeast: 'SAMPLE-ED-1H' },
        ],
      },
      bd_cough: {
        type: 'single_choice',
        text: 'A cough?',
        options: [
          { id: 'yes', label: 'Yes', next: 'bd_days' },
          { id: 'no', label: 'No', next: 'bd_ed' },
        ],
      },
      bd_days: {
        type: 'numeric',
        text: 'Days?',
        unit: 'days',
        min: 0,
        max: 100,
        ranges: [{ max: 3, next: 'bd_selfcare' }, { next: 'bd_ed' }],
      },
      bd_selfcare: selfCare,
      bd_ed: ed1h,
    });
    const issue = only(checkPack(pack(module, p)));
    expect(issue).toMatchObject({
      kind: 'self_care_after_red_flag',
      pathwayId: 'breathing',
      nodeId: 'bd_rate',
      path: 'nodes.bd_rate.ranges.1',
    });
    expect(issue.message).toContain(
      'question bd_rate, answer in range 2 (30 breaths/min or more) is a red flag but can lead to self-care: bd_selfcare',
    );
  });

  it('refuses the same discriminator leading to a less urgent disposition in another pathway', () => {
    const fall = pathway('fall', 'fi_head', {
      fi_head: {
        type: 'single_choice',
        text: 'Drowsy since the head injury?',
        options: [
          { id: 'yes', label: 'Drowsy', next: 'fi_amb', discriminator: 'head_injury_drowsy' },
          { id: 'no', label: 'No', next: 'fi_selfcare' },
        ],
      },
      fi_amb: amb(2),
      fi_selfcare: selfCare,
    });
    const headache = pathway('headache', 'hd_injury', {
      hd_injury: {
        type: 'single_choice',
        text: 'Drowsy since the head injury?',
        options: [
          { id: 'yes', label: 'Drowsy', next: 'hd_ed_1h', discriminator: 'head_injury_drowsy' },
          { id: 'no', label: 'No', next: 'hd_selfcare' },
        ],
      },
      hd_ed_1h: ed1h,
      hd_selfcare: selfCare,
    });
    const issue = only(checkPack(pack(module, fall, headache)));
    expect(issue).toEqual({
      kind: 'discriminator_mismatch',
      pathwayId: 'headache',
      nodeId: 'hd_injury',
      path: 'nodes.hd_injury.options.0',
      message:
        'pathway headache, question hd_injury, answer "Drowsy" (discriminator head_injury_drowsy) can lead to hd_ed_1h "SAMPLE-ED-1H" (SAMPLE-ED-1H), less urgent than in pathway fall, question fi_head, where it always leads to fi_amb "SAMPLE-AMB-C2" (SAMPLE-AMB-C2) or more urgent. The same discriminator must lead to the same or a more urgent disposition in every pathway',
    });
    // Made consistent, the pack passes.
    const fixed = { ...headache, nodes: { ...headache.nodes, hd_ed_1h: amb(2) } };
    expect(checkPack(pack(module, fall, fixed))).toEqual([]);
  });

  it('follows a module answer into every pathway it leads on to', () => {
    // A red flag that still leads on to the pathway: a pathway ending in self-care breaks the rule.
    const leadsOn = lifeThreatening({ next: '@pathway', lifeThreatening: undefined, redFlag: true });
    const issues = checkPack(pack(leadsOn, oneQuestion({}, 'cp_selfcare', {})));
    expect(issues.map((i) => [i.kind, i.pathwayId, i.nodeId])).toEqual([
      ['unreachable', 'lt', 'lt_amb'],
      ['self_care_after_red_flag', 'lt', 'lt_breathing'],
    ]);
    expect(issues[1]!.message).toContain(
      'cp_selfcare "SAMPLE-SELFCARE" (SAMPLE-SELFCARE) in pathway chest-pain',
    );
  });

  it('refuses a demand naming no Dx code of the table', () => {
    const p = oneQuestion({ demandsAtLeast: 'SAMPLE-AMB-C9' }, 'cp_amb', { cp_amb: amb(2) });
    expect(only(checkPack(pack(module, p)))).toMatchObject({
      kind: 'unknown_dx',
      path: 'nodes.cp_q.options.0.demandsAtLeast',
      message:
        'pathway chest-pain, question cp_q, answer "Yes": demands at least SAMPLE-AMB-C9, which is neither "emergency" nor a Dx code in the table',
    });
  });
});

describe('urgency order', () => {
  it('puts ambulances by category first, then clocks by window (face to face first), then no clock, then self-care', () => {
    const order: DispositionUrgency[] = [
      { kind: 'ambulance', timeframeMinutes: 15, ambulanceCategory: 1 },
      { kind: 'ambulance', timeframeMinutes: 40, ambulanceCategory: 2 },
      { kind: 'ambulance', timeframeMinutes: 180, ambulanceCategory: 4 },
      { kind: 'ed_utc', timeframeMinutes: 60 },
      { kind: 'speak_to_primary_care', timeframeMinutes: 60 },
      { kind: 'contact_primary_care', timeframeMinutes: 120 },
      { kind: 'ed_utc', timeframeMinutes: 240 },
      { kind: 'contact_primary_care', timeframeMinutes: null },
      { kind: 'self_care', timeframeMinutes: null },
    ];
    const shuffled = [...order].reverse();
    expect(shuffled.sort(compareUrgency)).toEqual(order);
    expect(
      compareUrgency(
        { kind: 'pharmacy', timeframeMinutes: null },
        { kind: 'contact_primary_care', timeframeMinutes: null },
      ),
    ).toBe(0);
  });
});
