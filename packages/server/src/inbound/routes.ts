import { z } from 'zod';
import type { OperationOutcome, OperationOutcomeIssue } from '@medplum/fhirtypes';
import { FHIR_CONTENT_TYPE, FHIR_R4_PATH } from '../fhir/outcome.ts';
import { publicRoute, type RouteSpec } from '../http/routes.ts';
import { bodyPathOf, InboundRefusal } from './bundles.ts';
import type { InboundService } from './service.ts';

/**
 * `POST /fhir/R4/$process-message`: other systems (not staff) post FHIR message Bundles here. The
 * route is public to the session machinery: the sending system is authenticated inside the handler
 * by its bearer token, before anything of the body is read, and the tenant comes from that
 * credential only. Answers and refusals are FHIR (a response message, or an OperationOutcome naming
 * the fields, never their values).
 */
export function inboundRoutes(inbound: InboundService): RouteSpec[] {
  return [
    publicRoute({
      method: 'POST',
      url: `${FHIR_R4_PATH}/$process-message`,
      summary:
        'Messages in from other systems (bearer token per system): 999 Category 3/4 validation requests, and answers to our messages',
      access: { public: true },
      // The Bundle is read by the service after the sender is known.
      body: z.unknown(),
      async handler({ request, reply, body }) {
        try {
          const credential = inbound.authenticate(request.headers.authorization);
          const answer = await inbound.process(credential, body);
          return reply.code(answer.status).type(FHIR_CONTENT_TYPE).send(answer.bundle);
        } catch (error) {
          if (!(error instanceof InboundRefusal)) throw error;
          if (error.status === 401) reply.header('www-authenticate', 'Bearer');
          return reply.code(error.status).type(FHIR_CONTENT_TYPE).send(refusalOutcome(error));
        }
      },
    }),
  ];
}

const ISSUE_CODES: Record<InboundRefusal['status'], OperationOutcomeIssue['code']> = {
  400: 'invalid',
  401: 'login',
  403: 'forbidden',
  404: 'not-found',
  409: 'conflict',
  422: 'processing',
};

/**
 * A refusal as an OperationOutcome: one issue per field, its element named in `expression` both in
 * FHIRPath (`Bundle.entry[1].resource.status`) and as the rest of our API names body fields
 * (`body.entry.1.resource.status`); headers keep their own name.
 */
function refusalOutcome(error: InboundRefusal): OperationOutcome {
  const code = ISSUE_CODES[error.status];
  if (error.issues.length === 0)
    return {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code, details: { text: error.title } }],
    };
  return {
    resourceType: 'OperationOutcome',
    issue: error.issues.map((i) => ({
      severity: 'error',
      code,
      details: { text: `${i.path}: ${i.message}` },
      expression: i.path.startsWith('Bundle') ? [i.path, bodyPathOf(i.path)] : [i.path],
    })),
  };
}
