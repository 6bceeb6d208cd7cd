import { DomainError } from '../errors.ts';

/**
 * Triage errors. Messages name nodes and options of the protocol (content, not patient data); they
 * never repeat the answer given.
 */

/** An answer for a node that is not the question being asked now (or a change to one never answered). */
export class TriageOutOfOrderError extends DomainError {
  readonly code = 'triage_out_of_order';
  constructor(
    /** The node the answer was for. */
    readonly nodeId: string,
    /** The question being asked now; null when the walk has reached a disposition. */
    readonly expectedNodeId: string | null,
    message: string,
  ) {
    super(message);
  }
}

export const ANSWER_REJECTIONS = [
  'wrong_type',
  'option_not_offered',
  'duplicate_option',
  'out_of_range',
  'not_whole_number',
] as const;
export type AnswerRejection = (typeof ANSWER_REJECTIONS)[number];

/** An answer the question does not accept: an option it does not offer, a number outside its bounds… */
export class TriageAnswerRejectedError extends DomainError {
  readonly code = 'triage_answer_rejected';
  constructor(
    readonly nodeId: string,
    readonly reason: AnswerRejection,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The protocol itself is broken where the walk went (a pointer to nowhere, a number no range holds,
 * a loop). Packs are checked when loaded, so this means unchecked content reached the engine: a bug,
 * not bad input.
 */
export class ProtocolDefectError extends DomainError {
  readonly code = 'protocol_defect';
  constructor(
    readonly protocolId: string,
    readonly nodeId: string,
    message: string,
  ) {
    super(`protocol ${protocolId}, node ${nodeId}: ${message}`);
  }
}
