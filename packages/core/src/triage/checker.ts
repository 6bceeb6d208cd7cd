import { SAMPLE_DX_CODES, type DxCodeTable } from './dx-codes.ts';
import { analyseQuestion, declaredPointers, type QuestionBranchAnalysis } from './graph.ts';
import type { ProtocolPack } from './pack.ts';
import { checkSafetyRules } from './safety-rules.ts';
import {
  CONTINUE_TO_PATHWAY,
  isQuestionNode,
  protocolNodeById,
  type DispositionNode,
  type LifeThreateningModule,
  type ProtocolNodeGraph,
  type Pathway,
} from './schema.ts';

/**
 * The protocol checker: finds what would strand or mislead a call handler before the content is
 * used. It reports every defect, each at its source (the pointer to nowhere, not every question
 * upstream of it), with the field path inside the document.
 */

export const PROTOCOL_ISSUE_KINDS = [
  /** `startNode` names no node. */
  'missing_start',
  /** A node no answers lead to, or a branch no answer can take. */
  'unreachable',
  /** A `next` naming no node, or numbers within a question's bounds that no range holds. */
  'dead_end',
  /** A disposition's Dx code is not in the table. */
  'unknown_dx',
  /** A disposition disagrees with its Dx code's kind, timeframe or ambulance category. */
  'dx_mismatch',
  /** A question with no options (or no ranges): it cannot be answered. */
  'no_answers',
  /** Answers can lead back to a question already asked. */
  'cycle',
  /** A pathway node id also used by the life-threatening module it is composed with. */
  'duplicate_id',
  // Clinical safety rules (`safety-rules.ts`), over the marks answers carry (`schema.ts`).
  /** An answer that demands an urgency can lead to a less urgent disposition. */
  'below_demanded_urgency',
  /** An answer that demands an ambulance category can lead to a less urgent category. */
  'ambulance_category_lowered',
  /** An answer marked as a red flag can lead to self-care. */
  'self_care_after_red_flag',
  /** The same discriminator leads to a less urgent disposition in one pathway than in another. */
  'discriminator_mismatch',
  /** The life-threatening module can end in something other than an emergency ambulance. */
  'module_not_emergency',
] as const;
export type ProtocolIssueKind = (typeof PROTOCOL_ISSUE_KINDS)[number];

export interface ProtocolIssue {
  /** The pathway (or life-threatening module) the defect is in. */
  pathwayId: string;
  nodeId: string | null;
  kind: ProtocolIssueKind;
  /** Field path inside the document: `nodes.cp_onset.options.1.next`. */
  path: string;
  message: string;
}

export interface ProtocolCheckOptions {
  /** The Dx table dispositions must use; the sample table by default. */
  dxCodes?: DxCodeTable;
}

interface GraphCheckOptions extends ProtocolCheckOptions {
  /** A pointer that leaves the graph legitimately (the life-threatening module's way on). */
  exit?: string;
}

/** Checks one graph of nodes (a pathway or the life-threatening module) on its own. */
export function checkNodeGraph(graph: ProtocolNodeGraph, options: GraphCheckOptions = {}): ProtocolIssue[] {
  const dxCodes = options.dxCodes ?? SAMPLE_DX_CODES;
  const issues: ProtocolIssue[] = [];
  const report = (kind: ProtocolIssueKind, nodeId: string | null, path: string, message: string) =>
    issues.push({ pathwayId: graph.id, nodeId, kind, path, message });
  const exists = (id: string) => protocolNodeById(graph.nodes, id) !== undefined;
  const analyses = new Map<string, QuestionBranchAnalysis>();

  for (const [id, node] of Object.entries(graph.nodes)) {
    const at = `nodes.${id}`;
    if (!isQuestionNode(node)) {
      checkDisposition(id, node, dxCodes, report);
      continue;
    }
    const analysis = analyseQuestion(node);
    analyses.set(id, analysis);
    if (node.type === 'numeric' ? node.ranges.length === 0 : node.options.length === 0)
      report(
        'no_answers',
        id,
        `${at}.${node.type === 'numeric' ? 'ranges' : 'options'}`,
        `question ${id} offers no answers`,
      );
    else
      for (const gap of analysis.uncovered)
        report('dead_end', id, `${at}.ranges`, `question ${id}: no range holds ${gap}`);
    for (const pointer of declaredPointers(node)) {
      if (pointer.next === options.exit || exists(pointer.next)) continue;
      const why =
        pointer.next === CONTINUE_TO_PATHWAY
          ? `${CONTINUE_TO_PATHWAY} is only for the life-threatening module`
          : `${pointer.next} is not a node`;
      report('dead_end', id, `${at}.${pointer.path}`, `question ${id} leads to ${pointer.next}: ${why}`);
    }
    for (const branch of analysis.neverTaken)
      report('unreachable', id, `${at}.${branch.path}`, `question ${id}: no answer takes ${branch.describe}`);
  }

  if (!exists(graph.startNode)) {
    report('missing_start', null, 'startNode', `start node ${graph.startNode} is not a node`);
    return issues;
  }

  const takenNext = (id: string) =>
    (analyses.get(id)?.branches ?? []).filter((b) => exists(b.next) || b.next === options.exit);

  // Reachability over branches some answer takes.
  const reached = new Set<string>([graph.startNode]);
  const queue = [graph.startNode];
  let exitReached = false;
  for (let id = queue.shift(); id !== undefined; id = queue.shift())
    for (const branch of takenNext(id)) {
      if (branch.next === options.exit) exitReached = true;
      else if (!reached.has(branch.next)) {
        reached.add(branch.next);
        queue.push(branch.next);
      }
    }
  for (const id of Object.keys(graph.nodes))
    if (!reached.has(id)) report('unreachable', id, `nodes.${id}`, `no answers lead to ${id}`);
  if (options.exit !== undefined && !exitReached)
    report('unreachable', null, 'nodes', `no answers lead on to the pathway (${options.exit})`);

  // Loops: a depth-first search over every node; each edge back onto the current trail is one loop.
  const state = new Map<string, 'on_trail' | 'done'>();
  const visit = (id: string): void => {
    state.set(id, 'on_trail');
    for (const branch of takenNext(id)) {
      if (branch.next === options.exit) continue;
      const seen = state.get(branch.next);
      if (seen === 'on_trail')
        report(
          'cycle',
          id,
          `nodes.${id}.${branch.path}`,
          `question ${id}: ${branch.describe} leads back to ${branch.next}, which can already have been asked`,
        );
      else if (seen === undefined) visit(branch.next);
    }
    state.set(id, 'done');
  };
  for (const id of [graph.startNode, ...Object.keys(graph.nodes)]) if (!state.has(id)) visit(id);
  return issues;
}

function checkDisposition(
  id: string,
  node: DispositionNode,
  dxCodes: DxCodeTable,
  report: (kind: ProtocolIssueKind, nodeId: string, path: string, message: string) => void,
): void {
  const def = dxCodes.get(node.dxCode);
  if (!def) {
    report(
      'unknown_dx',
      id,
      `nodes.${id}.dxCode`,
      `disposition ${id}: Dx code ${node.dxCode} is not in the table`,
    );
    return;
  }
  const say = (field: string, message: string) =>
    report('dx_mismatch', id, `nodes.${id}.${field}`, `disposition ${id}: ${message}`);
  if (def.kind !== node.kind) say('kind', `${def.code} is a ${def.kind} code, not ${node.kind}`);
  if (def.timeframeMinutes !== null && def.timeframeMinutes !== node.timeframeMinutes)
    say(
      'timeframeMinutes',
      `${def.code} has a ${def.timeframeMinutes}-minute timeframe, not ${node.timeframeMinutes}`,
    );
  if (def.ambulanceCategory !== undefined && def.ambulanceCategory !== node.ambulanceCategory)
    say('ambulanceCategory', `${def.code} is ambulance category ${def.ambulanceCategory}`);
}

export function checkPathway(pathway: Pathway, options: ProtocolCheckOptions = {}): ProtocolIssue[] {
  return checkNodeGraph(pathway, options);
}

/** The module's way on (`@pathway`) must be reachable: otherwise no pathway could ever be asked. */
export function checkLifeThreatening(
  module: LifeThreateningModule,
  options: ProtocolCheckOptions = {},
): ProtocolIssue[] {
  return checkNodeGraph(module, { ...options, exit: CONTINUE_TO_PATHWAY });
}

/**
 * Checks every document of a pack, each pathway against the module composed in front of it, and the
 * clinical safety rules over every pathway as the engine walks it (`safety-rules.ts`).
 */
export function checkPack(pack: ProtocolPack, options: ProtocolCheckOptions = {}): ProtocolIssue[] {
  const issues = checkLifeThreatening(pack.lifeThreatening, options);
  for (const pathway of pack.pathways) {
    issues.push(...checkPathway(pathway, options));
    for (const id of Object.keys(pathway.nodes))
      if (protocolNodeById(pack.lifeThreatening.nodes, id))
        issues.push({
          pathwayId: pathway.id,
          nodeId: id,
          kind: 'duplicate_id',
          path: `nodes.${id}`,
          message: `node ${id} is also a node of the life-threatening module ${pack.lifeThreatening.id}`,
        });
  }
  issues.push(...checkSafetyRules(pack, options.dxCodes ?? SAMPLE_DX_CODES));
  return issues;
}
