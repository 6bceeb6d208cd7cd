import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkPack } from '../src/triage/checker.ts';
import { SAMPLE_DX_CODES } from '../src/triage/dx-codes.ts';
import { walk, type TriageAnswer } from '../src/triage/engine.ts';
import { analyseQuestion } from '../src/triage/graph.ts';
import { assemblePack, composeProtocol, type ProtocolPack, type TriageProtocol } from '../src/triage/pack.ts';
import { isQuestionNode, parseProtocolDocument } from '../src/triage/schema.ts';
import { packDispositionMix, simulateAnswers } from '../src/triage/simulation.ts';
// The shipped sample pack. A pathway added to the pack must be added here too (checked below).
import manifest from '../../../protocols/sample/pack.json';
import lifeThreatening from '../../../protocols/sample/life-threatening.json';
import abdominalPain from '../../../protocols/sample/abdominal-pain.json';
import backPain from '../../../protocols/sample/back-pain.json';
import breathingDifficulty from '../../../protocols/sample/breathing-difficulty.json';
import chestPain from '../../../protocols/sample/chest-pain.json';
import dentalPain from '../../../protocols/sample/dental-pain.json';
import fallOrInjury from '../../../protocols/sample/fall-or-injury.json';
import feverAdult from '../../../protocols/sample/fever-adult.json';
import feverChildUnder5 from '../../../protocols/sample/fever-child-under-5.json';
import headache from '../../../protocols/sample/headache.json';
import mentalHealthCrisis from '../../../protocols/sample/mental-health-crisis.json';
import rash from '../../../protocols/sample/rash.json';
import repeatPrescription from '../../../protocols/sample/repeat-prescription.json';
import urinarySymptoms from '../../../protocols/sample/urinary-symptoms.json';
import vomitingDiarrhoea from '../../../protocols/sample/vomiting-diarrhoea.json';

const files: Record<string, unknown> = {
  'pack.json': manifest,
  'life-threatening.json': lifeThreatening,
  'abdominal-pain.json': abdominalPain,
  'back-pain.json': backPain,
  'breathing-difficulty.json': breathingDifficulty,
  'chest-pain.json': chestPain,
  'dental-pain.json': dentalPain,
  'fall-or-injury.json': fallOrInjury,
  'fever-adult.json': feverAdult,
  'fever-child-under-5.json': feverChildUnder5,
  'headache.json': headache,
  'mental-health-crisis.json': mentalHealthCrisis,
  'rash.json': rash,
  'repeat-prescription.json': repeatPrescription,
  'urinary-symptoms.json': urinarySymptoms,
  'vomiting-diarrhoea.json': vomitingDiarrhoea,
};

function loadSamplePack(): ProtocolPack {
  const documents = Object.entries(files).map(([source, json]) => ({
    source,
    document: parseProtocolDocument(json, source),
  }));
  const assembled = assemblePack(documents);
  if (!assembled.ok) throw new Error(JSON.stringify(assembled.problems));
  return assembled.pack;
}

/**
 * Shortest answers from the start to every node, found by breadth-first search over the branches
 * some answer takes (each branch comes with an example answer that takes it).
 */
function answersToEveryNode(protocol: TriageProtocol): Map<string, TriageAnswer[]> {
  const routes = new Map<string, TriageAnswer[]>([[protocol.startNode, []]]);
  const queue = [protocol.startNode];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    const node = protocol.nodes[id]!;
    if (!isQuestionNode(node)) continue;
    for (const branch of analyseQuestion(node).branches) {
      if (routes.has(branch.next)) continue;
      routes.set(branch.next, [...routes.get(id)!, { nodeId: id, value: branch.example }]);
      queue.push(branch.next);
    }
  }
  return routes;
}

const REQUIRED_COMPLAINTS = [
  'chest-pain',
  'breathing-difficulty',
  'abdominal-pain',
  'headache',
  'fever-child-under-5',
  'fever-adult',
  'rash',
  'back-pain',
  'urinary-symptoms',
  'mental-health-crisis',
  'fall-or-injury',
  'vomiting-diarrhoea',
  'dental-pain',
  'repeat-prescription',
];

describe('sample protocol pack', () => {
  const pack = loadSamplePack();

  it('holds at least 12 pathways, the required complaints among them, all imported by this test', () => {
    const ids = pack.pathways.map((p) => p.id);
    expect(ids.length).toBeGreaterThanOrEqual(12);
    expect(ids).toEqual(expect.arrayContaining(REQUIRED_COMPLAINTS));
    expect(Object.keys(files).length).toBe(ids.length + 2);
  });

  it('passes the protocol checker', () => {
    expect(checkPack(pack)).toEqual([]);
  });

  it('marks the pack, the life-threatening module and every pathway as sample content, not clinically validated', () => {
    for (const doc of [pack.manifest, pack.lifeThreatening, ...pack.pathways]) {
      expect(doc.sample, doc.id).toBe(true);
      expect(doc.label, doc.id).toMatch(/not clinically validated/i);
    }
  });

  it('uses single-choice, multi-choice and numeric questions, numeric ones with units', () => {
    const types = new Set<string>();
    for (const pathway of pack.pathways)
      for (const node of Object.values(pathway.nodes)) {
        types.add(node.type);
        if (node.type === 'numeric') expect(node.unit.length).toBeGreaterThan(0);
      }
    expect([...types].sort()).toEqual(['disposition', 'multi_choice', 'numeric', 'single_choice']);
  });

  it('gives every disposition a Dx code from the table, a skill set and care advice', () => {
    for (const doc of [pack.lifeThreatening, ...pack.pathways])
      for (const node of Object.values(doc.nodes))
        if (node.type === 'disposition') {
          expect(SAMPLE_DX_CODES.has(node.dxCode), node.dxCode).toBe(true);
          expect(node.careAdvice.length).toBeGreaterThan(0);
        }
  });

  describe.each(pack.pathways.map((p) => [p.id, p] as const))('pathway %s', (_id, pathway) => {
    const protocol = composeProtocol(pack.manifest, pack.lifeThreatening, pathway);
    const routes = answersToEveryNode(protocol);
    const dispositions = Object.entries(protocol.nodes).filter(([, n]) => n.type === 'disposition');
    const own = dispositions.filter(([id]) => protocol.sections[id] === 'pathway');

    it('has several dispositions of its own', () => {
      expect(own.length).toBeGreaterThanOrEqual(3);
    });

    it('is walked to each of its dispositions, each result labelled as sample content', () => {
      for (const [id, node] of dispositions) {
        const answers = routes.get(id);
        expect(answers, `no route to ${id}`).toBeDefined();
        const result = walk(protocol, answers!);
        expect(result.status).toBe('disposition');
        if (result.status !== 'disposition') continue;
        expect(result.disposition).toMatchObject({
          id,
          dxCode: node.type === 'disposition' ? node.dxCode : '',
        });
        expect(result.path.map((s) => s.nodeId)).toEqual(answers!.map((a) => a.nodeId));
        expect(result.content).toMatchObject({ sample: true, pathwayId: pathway.id });
        expect(result.content.label).toMatch(/not clinically validated/i);
      }
    });

    it('asks the life-threatening questions before its own', () => {
      const first = walk(protocol, []);
      expect(first).toMatchObject({ status: 'question', node: { section: 'life_threatening' } });
      const ownStart = routes.get(pathway.startNode)!;
      expect(ownStart.every((a) => protocol.sections[a.nodeId] === 'life_threatening')).toBe(true);
      expect(ownStart.length).toBe(
        Object.values(pack.lifeThreatening.nodes).filter((n) => n.type !== 'disposition').length,
      );
    });
  });

  it('ends every simulated walk of every pathway at a disposition', () => {
    const protocols = pack.pathways.map((p) => composeProtocol(pack.manifest, pack.lifeThreatening, p));
    fc.assert(
      fc.property(
        fc.constantFrom(...protocols),
        fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })),
        (protocol, stream) => {
          const iterator = stream[Symbol.iterator]();
          const answers = simulateAnswers(protocol, () => iterator.next().value as number);
          expect(walk(protocol, answers).status).toBe('disposition');
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('has a disposition mix a simulator can run at national proportions', () => {
    const { byKind } = packDispositionMix(pack);
    const primaryCare = byKind.speak_to_primary_care + byKind.contact_primary_care;
    expect(byKind.ambulance).toBeGreaterThanOrEqual(0.11);
    expect(byKind.ambulance).toBeLessThanOrEqual(0.13);
    expect(byKind.ed_utc).toBeGreaterThanOrEqual(0.07);
    expect(byKind.ed_utc).toBeLessThanOrEqual(0.09);
    expect(primaryCare).toBeGreaterThanOrEqual(0.58);
    expect(primaryCare).toBeLessThanOrEqual(0.66);
    expect(byKind.self_care).toBeGreaterThanOrEqual(0.13);
    expect(byKind.self_care).toBeLessThanOrEqual(0.17);
    const total = Object.values(byKind).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 9);
  });
});
