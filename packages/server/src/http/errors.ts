import {
  ConflictError,
  DomainError,
  ForbiddenError,
  ImportRefusedError,
  NotFoundError,
  TooManyRequestsError,
  UnauthenticatedError,
  UnknownEventTypeError,
  ValidationError,
  type FieldIssue,
} from '@holdfast/core';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DISK_FULL_MESSAGE, storeFailureOf } from '../store/failures.ts';
import { CommitOutcomeUnknownError, StoreUnavailableError } from '../store/primary.ts';
import { FHIR_CONTENT_TYPE, isFhirPath, operationOutcomeOf } from '../fhir/outcome.ts';
import { InvalidFhirResourceError } from '../fhir/errors.ts';

/**
 * The one place errors become HTTP: RFC 9457 problem+json with a stable code, a plain-words title,
 * and for bad input the field paths. Unknown errors are logged (without the request body) and answer
 * a generic 500: no stack trace or patient data ever leaves the server.
 */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  code: string;
  errors?: FieldIssue[];
}

function problem(
  status: number,
  code: string,
  title: string,
  detail?: string,
  errors?: FieldIssue[],
): Problem {
  return {
    type: `urn:holdfast:problem:${code}`,
    title,
    status,
    code,
    ...(detail ? { detail } : {}),
    ...(errors ? { errors } : {}),
  };
}

/** The 429 answer, for callers that refuse without raising an error (a flood's refusals stay cheap). */
export function tooManyRequestsProblem(detail: string): Problem {
  return problem(429, 'too_many_requests', 'Too many attempts', detail);
}

export function toProblem(error: unknown): Problem {
  if (error instanceof ValidationError)
    return problem(400, error.code, 'Some of what was sent is not valid', error.message, error.issues);
  if (error instanceof ImportRefusedError)
    return problem(400, error.code, 'The import was refused', error.message, error.issues);
  if (error instanceof UnknownEventTypeError)
    return problem(400, error.code, 'Unknown event type', error.message);
  if (error instanceof UnauthenticatedError) return problem(401, error.code, 'Sign in first', error.message);
  if (error instanceof ForbiddenError)
    return problem(403, error.code, 'Not allowed for your role', error.message);
  // Re-authenticate (or give the enrolment code) and send the same request again.
  if (error instanceof DomainError && error.code === 'reauthentication_required')
    return problem(403, error.code, 'Confirm it is you first', error.message);
  if (error instanceof DomainError && error.code === 'enrolment_code_required')
    return problem(403, error.code, 'Enter your enrolment code first', error.message);
  if (error instanceof NotFoundError) return problem(404, error.code, 'Not found', error.message);
  if (error instanceof ConflictError) return problem(409, error.code, 'Conflict', error.message);
  if (error instanceof TooManyRequestsError) return tooManyRequestsProblem(error.message);
  // Case and triage rules: a command the case's state does not allow is a conflict with that state;
  // an answer the question does not offer is bad input naming the answer.
  if (error instanceof DomainError && error.constructor.name === 'CaseTransitionError') {
    const heldBy = (error as DomainError & { heldBy?: string | null }).heldBy;
    return {
      ...problem(409, error.code, 'Not possible in the case’s current state', error.message),
      ...(heldBy ? { heldBy } : {}),
    };
  }
  if (error instanceof DomainError && error.constructor.name === 'TriageOutOfOrderError')
    return problem(409, error.code, 'Triage step out of order', error.message);
  if (error instanceof DomainError && error.constructor.name === 'TriageAnswerRejectedError') {
    return problem(400, error.code, 'Some of what was sent is not valid', error.message, [
      { path: 'body.value', message: error.message },
    ]);
  }
  // A resource Holdfast made failed its own check before leaving: our fault, never the caller's.
  if (error instanceof InvalidFhirResourceError)
    return problem(
      500,
      error.code,
      'A FHIR resource failed validation and was not sent',
      'the mapping produced an invalid resource; the fields are listed',
      error.issues.map((i) => ({ path: i.path, message: i.message })),
    );
  if (error instanceof DomainError) return problem(400, error.code, error.message);
  // The database went while this was being saved (a failover to the standby, a restart): the
  // client must not be told it was saved, nor that it was not (see store/primary.ts).
  if (error instanceof CommitOutcomeUnknownError)
    return problem(
      503,
      'outcome_unknown',
      'It is not known whether this was saved',
      'the connection to the database was lost while saving: check whether it was saved before entering it again (a retry with the same Idempotency-Key cannot record it twice)',
    );
  if (error instanceof StoreUnavailableError)
    return problem(
      503,
      'store_unavailable',
      'Nothing was saved',
      'the database cannot be reached just now (it may be switching to its standby): send it again in a few seconds',
    );
  // Nothing of the request was stored; the client may send it again once the operator has freed
  // space (with the same Idempotency-Key, a retry cannot record it twice).
  if (storeFailureOf(error)?.kind === 'disk_full')
    return problem(503, 'disk_full', 'Nothing was saved', DISK_FULL_MESSAGE);
  const fe = error as Partial<FastifyError>;
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    switch (fe.code) {
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return problem(413, 'body_too_large', 'The request body is too large', 'send at most 1 MiB');
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return problem(415, 'unsupported_media_type', 'Send JSON', 'use Content-Type: application/json');
      case 'FST_ERR_BAD_URL':
        return problem(
          400,
          'bad_url',
          'The address could not be read',
          'the path is not valid percent-encoded UTF-8',
        );
      case 'FST_ERR_MAX_PARAM_LENGTH':
        return problem(414, 'uri_too_long', 'The address is too long', 'a part of the path is too long');
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return problem(400, 'validation_failed', 'The request body is empty', 'send a JSON object', [
          { path: 'body', message: 'is empty' },
        ]);
      case undefined:
      default:
        return problem(
          fe.statusCode,
          'bad_request',
          'The request could not be read',
          safeMessage(fe.message),
          [{ path: 'body', message: safeMessage(fe.message) }],
        );
    }
  }
  return problem(
    500,
    'internal_error',
    'Something went wrong on our side',
    'the error was logged; try again, and tell the service desk if it keeps happening',
  );
}

/** Framework messages can quote input; keep only known-safe descriptions. */
function safeMessage(message: string | undefined): string {
  if (!message) return 'malformed request';
  if (/JSON/i.test(message)) return 'is not valid JSON';
  if (/prototype|constructor/i.test(message)) return 'contains a forbidden key (__proto__ or constructor)';
  return 'malformed request';
}

export function sendProblem(reply: FastifyReply, p: Problem, retryAfterSeconds?: number): FastifyReply {
  if (retryAfterSeconds !== undefined) reply.header('retry-after', String(retryAfterSeconds));
  // The FHIR API answers its errors in FHIR: the same status, as an OperationOutcome.
  if (isFhirPath(reply.request.url))
    return reply.code(p.status).type(FHIR_CONTENT_TYPE).send(operationOutcomeOf(p));
  return reply.code(p.status).type('application/problem+json').send(p);
}

/** How long a client should wait before sending a write again to a node whose disk is full. */
const DISK_FULL_RETRY_AFTER_SECONDS = 30;
/** How long a client should wait while the database fails over (a promotion takes seconds). */
const STORE_UNAVAILABLE_RETRY_AFTER_SECONDS = 2;

export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const p = toProblem(error);
  const route = request.routeOptions.url;
  const storeFailure = storeFailureOf(error);
  if (error instanceof StoreUnavailableError) {
    // Expected while the database fails over; the cause's code and message name no row values.
    const cause = storeFailureOf(error.cause) ?? { message: (error.cause as Error | undefined)?.message };
    request.log.warn({ cause, route, status: p.status, code: p.code }, error.message);
  } else if (storeFailure) {
    // The store's own code and message name the cause (SQLITE_FULL, 53100, a constraint); the
    // driver's other fields are left out, as PostgreSQL's `detail` quotes the row's values.
    request.log.error(
      { cause: { code: storeFailure.code, message: storeFailure.message }, route, status: p.status },
      storeFailure.kind === 'disk_full' ? DISK_FULL_MESSAGE : 'the store refused a write',
    );
  } else if (p.status >= 500) {
    // The error's message and stack go to the log only; never the request body.
    request.log.error({ err: error, route }, 'unhandled error');
  }
  const retryAfter =
    error instanceof TooManyRequestsError
      ? error.retryAfterSeconds
      : p.code === 'disk_full'
        ? DISK_FULL_RETRY_AFTER_SECONDS
        : p.code === 'store_unavailable' || p.code === 'outcome_unknown'
          ? STORE_UNAVAILABLE_RETRY_AFTER_SECONDS
          : undefined;
  return sendProblem(reply, p, retryAfter);
}
