import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { PemService } from './service.ts';

const isoInstant = (field: string) =>
  z.iso.datetime({ offset: true, error: `${field} must be a date and time, e.g. 2026-12-01T00:00:00Z` });

/** The Post Event Message of a case as a PDF, and the report of practices not (yet) told. */
export function pemRoutes(pem: PemService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/pem.pdf',
      summary:
        "The closed case's Post Event Message as a PDF (the same sections as the FHIR document), for a practice that cannot take the structured message",
      access: { permission: 'cases.read' },
      params: z.strictObject({ caseId: z.string().uuid('must be a case id') }),
      async handler({ ctx, params, reply }) {
        const pdf = await pem.pdf(ctx, params.caseId);
        return reply
          .type('application/pdf')
          .header('content-disposition', 'attachment; filename="post-event-message.pdf"')
          .send(pdf);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/reports/pem',
      summary:
        'Post Event Messages queued in the period and not yet accepted by the practice (with due time and whether overdue), and closed cases with no registered practice or no endpoint for it',
      access: { permission: 'reports.read' },
      query: z.strictObject({ from: isoInstant('from'), to: isoInstant('to') }),
      async handler({ ctx, query }) {
        return pem.report(ctx, Date.parse(query.from), Date.parse(query.to));
      },
    }),
  ];
}
