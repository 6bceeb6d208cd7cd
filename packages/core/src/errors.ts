/**
 * Typed domain errors with stable codes. The server maps them to HTTP in one place; the CLI prints
 * their message. Messages never carry patient data: they name fields, lines and event positions.
 */

export interface FieldIssue {
  /** Dotted path to the offending field, e.g. `payload.nhsNumber` or `line 12: payload.answer`. */
  path: string;
  message: string;
}

export abstract class DomainError extends Error {
  abstract readonly code: string;
  /** A retryable error may succeed if the same request is sent again later. */
  readonly retryable: boolean = false;
}

/** Input that failed its schema; nothing was stored. */
export class ValidationError extends DomainError {
  readonly code = 'validation_failed';
  constructor(
    readonly issues: FieldIssue[],
    summary?: string,
  ) {
    super(summary ?? issues.map((i) => `${i.path}: ${i.message}`).join('; '));
  }
}

export class UnknownEventTypeError extends DomainError {
  readonly code = 'unknown_event_type';
  constructor(
    readonly type: string,
    readonly v: number,
  ) {
    super(`event type ${type} version ${v} is not registered`);
  }
}

/** An imported batch that fails continuity, hashing or signature checks; nothing of it is stored. */
export class ImportRefusedError extends DomainError {
  readonly code = 'import_refused';
  constructor(
    readonly issues: FieldIssue[],
    summary?: string,
  ) {
    super(summary ?? `import refused: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  }
}

/** A broken internal invariant: a bug, not bad input. Fails loudly. */
export class InvariantViolation extends Error {
  constructor(message: string) {
    super(`invariant violated: ${message}`);
  }
}

export function assertInvariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}
