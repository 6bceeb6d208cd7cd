import type { ProtocolIssue, ProtocolIssueKind } from './checker.ts';
import type { DxCodeTable } from './dx-codes.ts';
import { analyseQuestion, multiChoiceRuleIndex, type QuestionBranch } from './graph.ts';
import { composeProtocol, type ProtocolPack, type TriageProtocol, type TriageSection } from './pack.ts';
import {
  CONTINUE_TO_PATHWAY,
  isQuestionNode,
  protocolNodeById,
  type DispositionNode,
  type ProtocolNode,
  type QuestionNode,
  type SafetyMarks,
} from './schema.ts';
import { compareUrgency, LIFE_THREATENING_DEMAND, resolveDemand, type UrgencyDemand } from './urgency.ts';

/**
 * The clinical safety rules of the protocol checker. They follow every path a marked answer can
 * start, through the life-threatening module and each pathway composed as the engine walks them,
 * to every disposition it can reach:
 * - an answer that demands an urgency (`lifeThreatening`, `demandsAtLeast`) never leads below it,
 *   and an answer demanding an ambulance category never ends in a less urgent category;
 * - an answer marked as a red flag (or life-threatening, or demanding an urgency) never ends in
 *   self-care;
 * - a discriminator shared by several pathways leads, in each, to the same or a more urgent
 *   disposition than in any other: its least urgent outcome is the same everywhere;
 * - the life-threatening module ends only in an emergency ambulance (category 1 or 2), marked or not.
 * The urgency order is `urgency.ts`'s.
 */

interface MarkedAnswer {
  /** The document the question is in (a pathway, or the life-threatening module). */
  documentId: string;
  /** "pathway chest-pain" or "life-threatening module life-threatening", for messages. */
  where: string;
  nodeId: string;
  /** Field path of the marked answer: `nodes.cp_clot_risk.options.0`. */
  path: string;
  /** `answer "Yes"`, `any answer with "More breathless than usual"`, `range 1 (up to 8 breaths/min)`. */
  describe: string;
  marks: SafetyMarks;
  /** Every node the answer can lead to next. */
  nexts: string[];
}

interface ReachedDisposition {
  id: string;
  node: DispositionNode;
  /** Where the disposition is, when not in the answer's own document. */
  elsewhere: string | null;
}

function marked(marks: SafetyMarks): boolean {
  return (
    marks.redFlag === true ||
    marks.lifeThreatening === true ||
    marks.demandsAtLeast !== undefined ||
    marks.discriminator !== undefined
  );
}

function markedAnswers(nodeId: string, node: ProtocolNode): Omit<MarkedAnswer, 'documentId' | 'where'>[] {
  const at = `nodes.${nodeId}`;
  switch (node.type) {
    case 'single_choice':
      return node.options.flatMap((option, i) =>
        marked(option)
          ? [
              {
                nodeId,
                path: `${at}.options.${i}`,
                describe: `answer "${option.label}"`,
                marks: option,
                nexts: [option.next],
              },
            ]
          : [],
      );
    case 'multi_choice': {
      // Every answer that selects the option, whatever else is selected: the first rule that holds
      // decides, so an earlier, less urgent rule can take the flagged answer away.
      const ids = node.options.map((o) => o.id);
      return node.options.flatMap((option, i) => {
        if (!marked(option)) return [];
        const nexts = new Set<string>();
        for (let mask = 0; mask < 2 ** ids.length; mask++) {
          if (!((mask >> i) & 1)) continue;
          const rule = multiChoiceRuleIndex(node, new Set(ids.filter((_, j) => (mask >> j) & 1)));
          nexts.add(rule === -1 ? node.defaultNext : node.rules[rule]!.next);
        }
        return [
          {
            nodeId,
            path: `${at}.options.${i}`,
            describe: `any answer with "${option.label}"`,
            marks: option,
            nexts: [...nexts],
          },
        ];
      });
    }
    case 'numeric': {
      // A range's marks hold for the numbers that take it (the first range holding a number decides).
      const analysis = analyseQuestion(node);
      const taken = new Set(analysis.branches.map((b) => b.path));
      const describe = new Map(
        [...analysis.branches, ...analysis.neverTaken].map((b) => [b.path, b.describe]),
      );
      return node.ranges.flatMap((range, i) =>
        marked(range)
          ? [
              {
                nodeId,
                path: `${at}.ranges.${i}`,
                describe: `answer in ${describe.get(`ranges.${i}`)}`,
                marks: range,
                nexts: taken.has(`ranges.${i}`) ? [range.next] : [],
              },
            ]
          : [],
      );
    }
    case 'disposition':
      return [];
  }
}

// A multi-choice question's branches are worked out over every combination of its options: once.
const analysed = new WeakMap<ProtocolNode, QuestionBranch[]>();
function branchesOf(node: QuestionNode): QuestionBranch[] {
  let branches = analysed.get(node);
  if (!branches) analysed.set(node, (branches = analyseQuestion(node).branches));
  return branches;
}

/** Every disposition reachable from `starts` in a composed protocol, over branches some answer takes. */
function reachableDispositions(
  protocol: TriageProtocol,
  starts: readonly string[],
  answerSection: TriageSection,
): ReachedDisposition[] {
  const seen = new Set<string>();
  const queue = [...starts];
  const found: ReachedDisposition[] = [];
  for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
    if (seen.has(id)) continue;
    seen.add(id);
    const node = protocolNodeById(protocol.nodes, id);
    if (!node) continue; // a dead end: reported by the graph checks
    if (!isQuestionNode(node)) {
      const section = protocol.sections[id];
      const elsewhere =
        section === answerSection
          ? null
          : section === 'pathway'
            ? `pathway ${protocol.content.pathwayId}`
            : `life-threatening module ${protocol.content.lifeThreateningId}`;
      found.push({ id, node, elsewhere });
      continue;
    }
    for (const branch of branchesOf(node)) queue.push(branch.next);
  }
  return found;
}

function describeDisposition(d: ReachedDisposition): string {
  return `${d.id} "${d.node.label}" (${d.node.dxCode})${d.elsewhere ? ` in ${d.elsewhere}` : ''}`;
}

function leastUrgent(dispositions: readonly ReachedDisposition[]): ReachedDisposition | undefined {
  return dispositions.reduce<ReachedDisposition | undefined>(
    (least, d) => (least === undefined || compareUrgency(d.node, least.node) > 0 ? d : least),
    undefined,
  );
}

export function checkSafetyRules(pack: ProtocolPack, dxCodes: DxCodeTable): ProtocolIssue[] {
  const issues: ProtocolIssue[] = [];
  const reported = new Set<string>();
  const report = (
    answer: Pick<MarkedAnswer, 'documentId' | 'nodeId' | 'path'>,
    kind: ProtocolIssueKind,
    message: string,
  ) => {
    // Module answers are followed once per pathway: the same finding is reported once.
    const key = `${answer.documentId}\u0000${answer.path}\u0000${message}`;
    if (reported.has(key)) return;
    reported.add(key);
    issues.push({ pathwayId: answer.documentId, nodeId: answer.nodeId, kind, path: answer.path, message });
  };

  const moduleWhere = `life-threatening module ${pack.lifeThreatening.id}`;
  const collect = (documentId: string, where: string, nodes: Record<string, ProtocolNode>): MarkedAnswer[] =>
    Object.entries(nodes).flatMap(([id, node]) =>
      markedAnswers(id, node).map((a) => ({ ...a, documentId, where })),
    );
  const moduleAnswers = collect(pack.lifeThreatening.id, moduleWhere, pack.lifeThreatening.nodes);

  // Unknown Dx codes in `demandsAtLeast` are reported once, where they are written.
  const demandOf = new Map<MarkedAnswer, UrgencyDemand | null>();
  const resolve = (answer: MarkedAnswer): UrgencyDemand | null => {
    if (demandOf.has(answer)) return demandOf.get(answer)!;
    let demand: UrgencyDemand | null = answer.marks.lifeThreatening ? LIFE_THREATENING_DEMAND : null;
    const named = answer.marks.demandsAtLeast;
    if (named !== undefined) {
      const resolved = resolveDemand(named, dxCodes);
      if (!resolved)
        report(
          { ...answer, path: `${answer.path}.demandsAtLeast` },
          'unknown_dx',
          `${answer.where}, question ${answer.nodeId}, ${answer.describe}: demands at least ${named}, which is neither "emergency" nor a Dx code in the table`,
        );
      // Of two demands (life-threatening and a named one), the more urgent holds.
      else if (!demand || compareUrgency(resolved.urgency, demand.urgency) < 0) demand = resolved;
    }
    demandOf.set(answer, demand);
    return demand;
  };

  /** The least urgent outcome of each discriminator's answers, per answer. */
  const discriminatorFloors: { answer: MarkedAnswer; floor: ReachedDisposition }[] = [];

  const checkAnswer = (
    protocol: TriageProtocol,
    answer: MarkedAnswer,
    section: TriageSection,
    pathwayStart: string,
  ) => {
    const nexts = answer.nexts.map((next) => (next === CONTINUE_TO_PATHWAY ? pathwayStart : next));
    const reached = reachableDispositions(protocol, nexts, section);
    const demand = resolve(answer);
    const redFlag = answer.marks.redFlag === true || demand !== null;
    const question = `${answer.where}, question ${answer.nodeId}, ${answer.describe}`;
    for (const d of reached) {
      if (d.node.kind === 'self_care') {
        if (redFlag)
          report(
            answer,
            'self_care_after_red_flag',
            `${question} is a red flag but can lead to self-care: ${describeDisposition(d)}. An answer marked as a red flag must never end in self-care`,
          );
        continue;
      }
      if (!demand || compareUrgency(d.node, demand.urgency) <= 0) continue;
      const demandedCategory = demand.urgency.ambulanceCategory;
      if (d.node.kind === 'ambulance' && demandedCategory !== undefined)
        report(
          answer,
          'ambulance_category_lowered',
          `${question} demands ${demand.describe} but can lead to ${describeDisposition(d)}: the ambulance category is lowered from ${demandedCategory} to ${d.node.ambulanceCategory}. An answer must never lead below the urgency it demands`,
        );
      else
        report(
          answer,
          'below_demanded_urgency',
          `${question} demands ${demand.describe} but can lead to ${describeDisposition(d)}, which is less urgent. An answer must never lead below the urgency it demands`,
        );
    }
    const floor = leastUrgent(reached);
    if (
      answer.marks.discriminator !== undefined &&
      floor &&
      !discriminatorFloors.some((f) => f.answer === answer)
    )
      discriminatorFloors.push({ answer, floor });
  };

  for (const pathway of pack.pathways) {
    // A node id shared with the module is a defect the graph checks report; it cannot be composed.
    if (Object.keys(pathway.nodes).some((id) => protocolNodeById(pack.lifeThreatening.nodes, id))) continue;
    const protocol = composeProtocol(pack.manifest, pack.lifeThreatening, pathway);
    for (const answer of moduleAnswers) checkAnswer(protocol, answer, 'life_threatening', pathway.startNode);
    for (const answer of collect(pathway.id, `pathway ${pathway.id}`, pathway.nodes))
      checkAnswer(protocol, answer, 'pathway', pathway.startNode);
  }

  // The module is asked before every pathway because what it finds is life-threatening.
  for (const [id, node] of Object.entries(pack.lifeThreatening.nodes))
    if (node.type === 'disposition' && !(node.kind === 'ambulance' && (node.ambulanceCategory ?? 4) <= 2))
      issues.push({
        pathwayId: pack.lifeThreatening.id,
        nodeId: id,
        kind: 'module_not_emergency',
        path: `nodes.${id}`,
        message: `${moduleWhere}, disposition ${id} "${node.label}" (${node.dxCode}) is not an emergency ambulance (category 1 or 2). The life-threatening module must end only in an emergency response`,
      });

  const byDiscriminator = new Map<string, typeof discriminatorFloors>();
  for (const entry of discriminatorFloors) {
    const id = entry.answer.marks.discriminator!;
    byDiscriminator.set(id, [...(byDiscriminator.get(id) ?? []), entry]);
  }
  for (const [id, entries] of byDiscriminator) {
    const strongest = entries.reduce((best, e) =>
      compareUrgency(e.floor.node, best.floor.node) < 0 ? e : best,
    );
    for (const { answer, floor } of entries)
      if (compareUrgency(floor.node, strongest.floor.node) > 0)
        report(
          answer,
          'discriminator_mismatch',
          `${answer.where}, question ${answer.nodeId}, ${answer.describe} (discriminator ${id}) can lead to ${describeDisposition(floor)}, less urgent than in ${strongest.answer.where}, question ${strongest.answer.nodeId}, where it always leads to ${describeDisposition(strongest.floor)} or more urgent. The same discriminator must lead to the same or a more urgent disposition in every pathway`,
        );
  }
  return issues;
}
