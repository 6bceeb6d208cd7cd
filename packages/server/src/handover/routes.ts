import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { HandoverService } from './service.ts';

const caseParams = z.strictObject({ caseId: z.string().uuid('must be a case id') });

/** The 999 handover of a case: where the ambulance request stands, and the phone handover. */
export function handoverRoutes(handover: HandoverService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/ambulance-handover',
      summary:
        'Where the ambulance request stands: waiting, accepted (with the incident reference), rejected, phone now, or handed over by phone',
      access: { permission: 'cases.read' },
      params: caseParams,
      async handler({ ctx, params }) {
        return handover.ambulanceStatus(ctx, params.caseId);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/ambulance-handover/phone',
      summary:
        'Record that the ambulance request was handed over by phone (the electronic request is cancelled in the same commit)',
      access: { permission: 'cases.handle' },
      params: caseParams,
      body: z.strictObject({
        spokeTo: z
          .string()
          .trim()
          .min(1, 'say who took the call at the ambulance service')
          .max(200, 'must be at most 200 characters'),
        reference: z.string().trim().min(1).max(200, 'must be at most 200 characters').optional(),
      }),
      async handler({ ctx, params, body }) {
        return handover.recordPhoneHandover(ctx, params.caseId, {
          spokeTo: body.spokeTo,
          reference: body.reference ?? null,
        });
      },
    }),
  ];
}
