import { DomainError, type FieldIssue } from '@holdfast/core';

export interface FhirIssue extends FieldIssue {
  /** Who found it: the R4 structure definitions, or Holdfast's UK Core rules. */
  source: 'r4' | 'uk-core';
}

/** A resource that must not be sent, with every issue found. */
export class InvalidFhirResourceError extends DomainError {
  readonly code = 'invalid_fhir_resource';
  constructor(readonly issues: readonly FhirIssue[]) {
    super(
      `the FHIR resource is not valid and was not sent: ${issues
        .slice(0, 5)
        .map((i) => `${i.path} ${i.message}`)
        .join('; ')}${issues.length > 5 ? `; and ${issues.length - 5} more` : ''}`,
    );
  }
}
