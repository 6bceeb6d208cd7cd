import { TRIAGE_DISPOSITION_KINDS, type TriageDispositionKind } from './dx-codes.ts';
import type { TriageAnswer } from './engine.ts';
import { ProtocolDefectError } from './errors.ts';
import { analyseQuestion, type QuestionBranch } from './graph.ts';
import { composeProtocol, type ProtocolPack, type TriageProtocol } from './pack.ts';
import { isQuestionNode, protocolNodeById } from './schema.ts';

/**
 * For load simulation and for sizing, not for care: walks pick branches in proportion to the
 * content's `simWeight`s (1 where none is given). Pure: randomness comes in as a function.
 */

function branchesOf(protocol: TriageProtocol, id: string): QuestionBranch[] {
  const node = protocolNodeById(protocol.nodes, id);
  if (!node) throw new ProtocolDefectError(protocol.content.pathwayId, id, 'not a node');
  return isQuestionNode(node) ? analyseQuestion(node).branches : [];
}

/** The chance of ending at each disposition node of one protocol. */
export function dispositionMix(protocol: TriageProtocol): Map<string, number> {
  const memo = new Map<string, Map<string, number>>();
  const onTrail = new Set<string>();
  const from = (id: string): Map<string, number> => {
    const known = memo.get(id);
    if (known) return known;
    if (onTrail.has(id)) throw new ProtocolDefectError(protocol.content.pathwayId, id, 'the walk can loop');
    onTrail.add(id);
    const node = protocolNodeById(protocol.nodes, id);
    if (!node) throw new ProtocolDefectError(protocol.content.pathwayId, id, 'not a node');
    const mix = new Map<string, number>();
    if (node.type === 'disposition') mix.set(id, 1);
    else {
      const branches = branchesOf(protocol, id);
      const total = branches.reduce((sum, b) => sum + b.simWeight, 0);
      for (const branch of branches)
        for (const [end, p] of from(branch.next))
          mix.set(end, (mix.get(end) ?? 0) + (p * branch.simWeight) / total);
    }
    onTrail.delete(id);
    memo.set(id, mix);
    return mix;
  };
  return from(protocol.startNode);
}

export interface PackDispositionMix {
  /** Chance of each disposition kind across the pack, pathways weighted by the manifest's `simWeight`. */
  byKind: Record<TriageDispositionKind, number>;
  /** Chance of each Dx code across the pack. */
  byDxCode: Map<string, number>;
}

export function packDispositionMix(pack: ProtocolPack): PackDispositionMix {
  const byKind = Object.fromEntries(TRIAGE_DISPOSITION_KINDS.map((k) => [k, 0])) as Record<
    TriageDispositionKind,
    number
  >;
  const byDxCode = new Map<string, number>();
  const weights = new Map(pack.manifest.pathways.map((p) => [p.id, p.simWeight ?? 1]));
  const total = pack.pathways.reduce((sum, p) => sum + (weights.get(p.id) ?? 1), 0);
  for (const pathway of pack.pathways) {
    const protocol = composeProtocol(pack.manifest, pack.lifeThreatening, pathway);
    const share = (weights.get(pathway.id) ?? 1) / total;
    for (const [id, p] of dispositionMix(protocol)) {
      const node = protocol.nodes[id];
      if (node?.type !== 'disposition') continue;
      byKind[node.kind] += p * share;
      byDxCode.set(node.dxCode, (byDxCode.get(node.dxCode) ?? 0) + p * share);
    }
  }
  return { byKind, byDxCode };
}

/**
 * One simulated triage: the answers of a walk to a disposition, each branch picked by `random`
 * (a function returning numbers in [0, 1), e.g. a seeded generator) in proportion to its weight.
 */
export function simulateAnswers(protocol: TriageProtocol, random: () => number): TriageAnswer[] {
  const answers: TriageAnswer[] = [];
  let id = protocol.startNode;
  for (let steps = 0; steps <= Object.keys(protocol.nodes).length; steps++) {
    const branches = branchesOf(protocol, id);
    if (branches.length === 0) return answers;
    const total = branches.reduce((sum, b) => sum + b.simWeight, 0);
    let pick = random() * total;
    const branch = branches.find((b) => (pick -= b.simWeight) < 0) ?? branches[branches.length - 1]!;
    answers.push({ nodeId: id, value: branch.example });
    id = branch.next;
  }
  throw new ProtocolDefectError(protocol.content.pathwayId, id, 'the walk loops');
}
