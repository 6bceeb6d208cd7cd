import { PAPER_RECORD_KINDS, PAPER_RECORD_MAX, parseCaseReference } from '@holdfast/core';
import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { CaseService } from './service.ts';

const text = (max: number) => z.string().trim().max(max);

/**
 * Back-entry after an outage: what was done on paper (the downtime pack's forms, each case with its
 * short reference) is matched to its case by that reference and typed in with the time written on
 * the paper. The case's record then shows it at that time, marked as entered from paper.
 */
export function paperRecordRoutes(cases: CaseService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/by-reference/:reference',
      summary:
        'The cases a short case reference written on paper names (as the downtime pack prints it, e.g. 3F2A-9C1B), among those you may open; 404 when none',
      access: { permission: 'cases.handle' },
      // The short reference in any usual writing, or a whole case id (`parseCaseReference`).
      params: z.strictObject({
        reference: z
          .string()
          .refine((s) => parseCaseReference(s) !== null, 'must be a case reference such as 3F2A-9C1B'),
      }),
      async handler({ ctx, params }) {
        return { cases: await cases.findByReference(ctx, params.reference) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/paper-records',
      summary:
        'Enter something done on paper during an outage into its case, with the time written on the paper; shown in the record at that time, marked as from paper, never changed afterwards',
      access: { permission: 'cases.handle' },
      params: z.strictObject({ caseId: z.string().uuid('must be a case id') }),
      body: z.strictObject({
        kind: z.enum(PAPER_RECORD_KINDS, { message: `must be one of ${PAPER_RECORD_KINDS.join(', ')}` }),
        happenedAt: z.iso.datetime({
          offset: true,
          message: 'must be a date and time with its zone, as written on the paper (2026-12-06T02:14:00Z)',
        }),
        writtenBy: text(120).min(1, 'say who wrote it on the paper'),
        text: text(PAPER_RECORD_MAX).min(1, 'type what the paper says'),
      }),
      async handler({ ctx, params, body, reply }) {
        await cases.enterPaperRecord(ctx, params.caseId, body);
        return reply.code(201).send({ entered: true });
      },
    }),
  ];
}
