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

/** No valid session, or the session has not passed its second factor. */
export class UnauthenticatedError extends DomainError {
  readonly code = 'unauthenticated';
  constructor(message = 'sign in first') {
    super(message);
  }
}

/** Signed in, but the role does not carry the permission the action needs. */
export class ForbiddenError extends DomainError {
  readonly code = 'forbidden';
  constructor(message = 'your role does not allow this') {
    super(message);
  }
}

/** Nothing with that id in your provider (deliberately the same for another provider's ids). */
export class NotFoundError extends DomainError {
  readonly code = 'not_found';
  constructor(what: string) {
    super(`${what} not found`);
  }
}

export class ConflictError extends DomainError {
  readonly code = 'conflict';
}

/** Too many attempts; `retryAfterSeconds` says when to try again. */
export class TooManyRequestsError extends DomainError {
  readonly code = 'too_many_requests';
  override readonly retryable = true;
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
