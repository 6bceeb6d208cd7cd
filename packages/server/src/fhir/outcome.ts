import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import type { Problem } from '../http/errors.ts';

/** The FHIR API's root: everything under it answers FHIR (OperationOutcome), never problem+json or HTML. */
export const FHIR_BASE_PATH = '/fhir';
export const FHIR_R4_PATH = '/fhir/R4';
export const FHIR_CONTENT_TYPE = 'application/fhir+json; charset=utf-8';

export function isFhirPath(url: string): boolean {
  const path = url.split('?')[0] ?? '';
  return path === FHIR_BASE_PATH || path.startsWith(`${FHIR_BASE_PATH}/`);
}

/** R4 IssueType for an HTTP status. */
function issueCode(status: number): OperationOutcomeIssue['code'] {
  switch (status) {
    case 400:
      return 'invalid';
    case 401:
      return 'login';
    case 403:
      return 'forbidden';
    case 404:
      return 'not-found';
    case 409:
      return 'conflict';
    case 413:
      return 'too-costly';
    case 414:
      return 'too-long';
    case 415:
      return 'not-supported';
    case 429:
      return 'throttled';
    default:
      return status >= 500 ? 'exception' : 'processing';
  }
}

/**
 * The same error the REST API would answer as problem+json, as an OperationOutcome: one issue per
 * field at fault (its path in `expression`), else one issue with the title and detail.
 */
export function operationOutcomeOf(problem: Problem): OperationOutcome {
  const code = issueCode(problem.status);
  const severity = problem.status >= 500 ? 'fatal' : 'error';
  const issue: OperationOutcomeIssue[] =
    problem.errors && problem.errors.length > 0
      ? problem.errors.map((e) => ({
          severity,
          code,
          details: { text: `${e.path}: ${e.message}` },
          expression: [e.path],
        }))
      : [
          {
            severity,
            code,
            details: { text: problem.detail ? `${problem.title}: ${problem.detail}` : problem.title },
          },
        ];
  return { resourceType: 'OperationOutcome', issue };
}
