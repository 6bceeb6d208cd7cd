import { z } from 'zod';
import { ProtocolDefectError, TriageAnswerRejectedError, TriageOutOfOrderError } from './errors.ts';
import { multiChoiceRuleIndex, numericRangeIndex, type AnswerValue } from './graph.ts';
import type { TriageSection, TriageContentInfo, TriageProtocol } from './pack.ts';
import {
  MAX_MULTI_CHOICE_OPTIONS,
  protocolNodeById,
  protocolNodeIdSchema,
  type DispositionNode,
  type MultiChoiceNode,
  type NumericNode,
  type ProtocolNode,
  type QuestionNode,
  type SingleChoiceNode,
} from './schema.ts';

/**
 * The triage engine. Pure: the same protocol and answers give the same result in the browser and on
 * the server, with no clock, randomness or I/O. A triage is the list of answers given, in order;
 * everything else (the question now, the path, the disposition) is worked out from them.
 */

/** One answer: an option id (single choice), option ids (multi choice) or a number (numeric). */
export interface TriageAnswer {
  nodeId: string;
  value: AnswerValue;
}

/** The shape of an answer as it arrives from outside; the engine then checks it against the question. */
export const triageAnswerSchema = z.strictObject({
  nodeId: protocolNodeIdSchema,
  value: z.union([
    z.string().max(64),
    z.array(z.string().max(64)).max(MAX_MULTI_CHOICE_OPTIONS),
    z.number().finite(),
  ]),
});

export interface TriagePathStep {
  nodeId: string;
  section: TriageSection;
  /** The question as asked. */
  question: string;
  /** The answer, normalised: multi-choice option ids in the question's order. */
  value: AnswerValue;
  /** The answer in words: option labels, or the number with its unit. */
  answer: string;
  next: string;
}

type WithoutSimulation<T> = T extends SingleChoiceNode
  ? Omit<T, 'options'> & { options: Omit<T['options'][number], 'simWeight'>[] }
  : T extends MultiChoiceNode
    ? Omit<T, 'rules' | 'defaultSimWeight'> & { rules: Omit<T['rules'][number], 'simWeight'>[] }
    : T extends NumericNode
      ? Omit<T, 'ranges'> & { ranges: Omit<T['ranges'][number], 'simWeight'>[] }
      : T;

/** A question as shown: the node without its simulation weights. */
export type QuestionView = WithoutSimulation<QuestionNode> & { id: string; section: TriageSection };
export type DispositionView = DispositionNode & { id: string; section: TriageSection };

export type WalkResult =
  | { status: 'question'; content: TriageContentInfo; node: QuestionView; path: TriagePathStep[] }
  | {
      status: 'disposition';
      content: TriageContentInfo;
      disposition: DispositionView;
      path: TriagePathStep[];
    };

function requireNode(protocol: TriageProtocol, id: string, from: string): ProtocolNode {
  const node = protocolNodeById(protocol.nodes, id);
  if (!node)
    throw new ProtocolDefectError(protocol.content.pathwayId, from, `points to ${id}, which is not a node`);
  return node;
}

function reject(nodeId: string, reason: TriageAnswerRejectedError['reason'], message: string): never {
  throw new TriageAnswerRejectedError(nodeId, reason, `answer to ${nodeId}: ${message}`);
}

interface Taken {
  value: AnswerValue;
  answer: string;
  next: string;
}

function takeSingleChoice(nodeId: string, node: SingleChoiceNode, value: unknown): Taken {
  if (typeof value !== 'string') reject(nodeId, 'wrong_type', 'give one option id');
  const option = node.options.find((o) => o.id === value);
  if (!option) reject(nodeId, 'option_not_offered', 'that option is not offered by this question');
  return { value: option.id, answer: option.label, next: option.next };
}

function takeMultiChoice(nodeId: string, node: MultiChoiceNode, value: unknown): Taken {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
    reject(nodeId, 'wrong_type', 'give a list of option ids (empty when none applies)');
  const selected = new Set<string>(value);
  if (selected.size !== value.length) reject(nodeId, 'duplicate_option', 'an option is given twice');
  for (const id of selected)
    if (!node.options.some((o) => o.id === id))
      reject(nodeId, 'option_not_offered', 'an option given is not offered by this question');
  const chosen = node.options.filter((o) => selected.has(o.id));
  const rule = multiChoiceRuleIndex(node, selected);
  return {
    value: chosen.map((o) => o.id),
    answer: chosen.length === 0 ? 'None of these' : chosen.map((o) => o.label).join('; '),
    next: rule === -1 ? node.defaultNext : node.rules[rule]!.next,
  };
}

function takeNumeric(protocol: TriageProtocol, nodeId: string, node: NumericNode, value: unknown): Taken {
  if (typeof value !== 'number' || !Number.isFinite(value)) reject(nodeId, 'wrong_type', 'give a number');
  if (value < node.min || value > node.max)
    reject(nodeId, 'out_of_range', `give a number from ${node.min} to ${node.max} ${node.unit}`);
  if (node.integer && !Number.isInteger(value)) reject(nodeId, 'not_whole_number', 'give a whole number');
  const range = node.ranges[numericRangeIndex(node, value)];
  if (!range) throw new ProtocolDefectError(protocol.content.pathwayId, nodeId, 'no range holds the answer');
  return { value, answer: `${value} ${node.unit}`, next: range.next };
}

/** Checks an answer against its question and says where it leads. */
function take(protocol: TriageProtocol, nodeId: string, node: QuestionNode, value: unknown): Taken {
  switch (node.type) {
    case 'single_choice':
      return takeSingleChoice(nodeId, node, value);
    case 'multi_choice':
      return takeMultiChoice(nodeId, node, value);
    case 'numeric':
      return takeNumeric(protocol, nodeId, node, value);
  }
}

function questionView(id: string, section: TriageSection, node: QuestionNode): QuestionView {
  switch (node.type) {
    case 'single_choice':
      return { ...node, id, section, options: node.options.map(({ simWeight: _, ...o }) => o) };
    case 'multi_choice': {
      const { defaultSimWeight: _, ...rest } = node;
      return { ...rest, id, section, rules: node.rules.map(({ simWeight: _w, ...r }) => r) };
    }
    case 'numeric':
      return { ...node, id, section, ranges: node.ranges.map(({ simWeight: _, ...r }) => r) };
  }
}

function sectionOf(protocol: TriageProtocol, id: string): TriageSection {
  return Object.hasOwn(protocol.sections, id) ? protocol.sections[id]! : 'pathway';
}

/**
 * Walks the protocol from its start with the answers given, in order. Each answer must be for the
 * question reached at its turn. Returns the next question, or the disposition, with the path taken.
 */
export function walk(protocol: TriageProtocol, answers: readonly TriageAnswer[]): WalkResult {
  let nodeId = protocol.startNode;
  let node = requireNode(protocol, nodeId, 'startNode');
  const path: TriagePathStep[] = [];
  const visited = new Set<string>([nodeId]);
  for (const given of answers) {
    if (node.type === 'disposition')
      throw new TriageOutOfOrderError(given.nodeId, null, 'the triage has already reached a disposition');
    if (given.nodeId !== nodeId) throw outOfOrder(protocol, given.nodeId, nodeId, path);
    const taken = take(protocol, nodeId, node, given.value);
    path.push({ nodeId, section: sectionOf(protocol, nodeId), question: node.text, ...taken });
    node = requireNode(protocol, taken.next, nodeId);
    if (visited.has(taken.next))
      throw new ProtocolDefectError(protocol.content.pathwayId, nodeId, 'the walk loops');
    visited.add(taken.next);
    nodeId = taken.next;
  }
  const section = sectionOf(protocol, nodeId);
  if (node.type === 'disposition')
    return {
      status: 'disposition',
      content: protocol.content,
      disposition: { ...node, id: nodeId, section },
      path,
    };
  return { status: 'question', content: protocol.content, node: questionView(nodeId, section, node), path };
}

function outOfOrder(
  protocol: TriageProtocol,
  nodeId: string,
  expected: string | null,
  path: readonly TriagePathStep[],
): TriageOutOfOrderError {
  const asking =
    expected === null ? 'the triage has reached a disposition' : `the question now is ${expected}`;
  if (path.some((s) => s.nodeId === nodeId))
    return new TriageOutOfOrderError(
      nodeId,
      expected,
      `${nodeId} is already answered (change it instead); ${asking}`,
    );
  if (!protocolNodeById(protocol.nodes, nodeId))
    return new TriageOutOfOrderError(nodeId, expected, `that node is not in this protocol; ${asking}`);
  return new TriageOutOfOrderError(nodeId, expected, `${nodeId} is not the question being asked; ${asking}`);
}

/** One answer event. Changing an answer supersedes it and every answer after it; nothing is removed. */
export interface TriageHistoryEntry {
  /** 1, 2, 3… in the order the answers were given. */
  seq: number;
  nodeId: string;
  value: AnswerValue;
  /** This answer changed an earlier answer to the same question. */
  change: boolean;
  /** A later change re-walked from this answer or an earlier one: it is not on the current path. */
  superseded: boolean;
}

export interface TriageState {
  readonly protocol: TriageProtocol;
  /** Every answer given, superseded ones included. Persist this (or the answer events) — not the state. */
  readonly history: readonly TriageHistoryEntry[];
  readonly result: WalkResult;
}

/** The answers on the current path, in order. */
export function activeAnswers(history: readonly TriageHistoryEntry[]): TriageAnswer[] {
  return history.filter((e) => !e.superseded).map((e) => ({ nodeId: e.nodeId, value: e.value }));
}

export function startTriage(protocol: TriageProtocol): TriageState {
  return { protocol, history: [], result: walk(protocol, []) };
}

/** Answers the question being asked now. Anything else is out of order. */
export function answer(state: TriageState, nodeId: string, value: AnswerValue): TriageState {
  const { result } = state;
  const expected = result.status === 'question' ? result.node.id : null;
  if (nodeId !== expected) throw outOfOrder(state.protocol, nodeId, expected, result.path);
  const walked = walk(state.protocol, [...activeAnswers(state.history), { nodeId, value }]);
  const step = walked.path[walked.path.length - 1]!;
  return {
    protocol: state.protocol,
    history: [
      ...state.history,
      { seq: state.history.length + 1, nodeId, value: step.value, change: false, superseded: false },
    ],
    result: walked,
  };
}

/**
 * Changes the answer to a question on the current path and walks on from there. The old answer and
 * every answer after it stay in the history, marked superseded; the questions after it are asked
 * again, because their meaning may depend on the changed answer.
 */
export function changeAnswer(state: TriageState, nodeId: string, value: AnswerValue): TriageState {
  const active = state.history.filter((e) => !e.superseded);
  const at = active.findIndex((e) => e.nodeId === nodeId);
  if (at === -1) {
    const expected = state.result.status === 'question' ? state.result.node.id : null;
    const why = protocolNodeById(state.protocol.nodes, nodeId)
      ? `${nodeId} has not been answered on the current path`
      : 'that node is not in this protocol';
    throw new TriageOutOfOrderError(nodeId, expected, `cannot change: ${why}`);
  }
  const walked = walk(state.protocol, [
    ...active.slice(0, at).map((e) => ({ nodeId: e.nodeId, value: e.value })),
    { nodeId, value },
  ]);
  const superseded = new Set(active.slice(at).map((e) => e.seq));
  return {
    protocol: state.protocol,
    history: [
      ...state.history.map((e) => (superseded.has(e.seq) ? { ...e, superseded: true } : e)),
      {
        seq: state.history.length + 1,
        nodeId,
        value: walked.path[at]!.value,
        change: true,
        superseded: false,
      },
    ],
    result: walked,
  };
}

/**
 * Rebuilds a triage from its answer events in the order they were given: an answer for the question
 * being asked is an answer; one for a question already on the path is a change.
 */
export function replayTriage(protocol: TriageProtocol, events: readonly TriageAnswer[]): TriageState {
  let state = startTriage(protocol);
  for (const event of events) {
    const current = state.result.status === 'question' ? state.result.node.id : null;
    state =
      event.nodeId !== current && state.result.path.some((s) => s.nodeId === event.nodeId)
        ? changeAnswer(state, event.nodeId, event.value)
        : answer(state, event.nodeId, event.value);
  }
  return state;
}
