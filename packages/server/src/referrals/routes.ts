import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { REFERRAL_ALERTS } from './events.ts';
import { SlotsUnavailableError, type ReferralService } from './service.ts';

const caseParams = z.strictObject({ caseId: z.string().uuid('must be a case id') });
const serviceId = z
  .string('name the service (its id in the directory)')
  .uuid('must be a service id from the directory');
const words = (what: string) => z.string().trim().min(1, what).max(2000, 'must be at most 2000 characters');

/** Referrals and bookings of a case, and the shift manager's referral alerts. */
export function referralRoutes(referrals: ReferralService): RouteSpec[] {
  return [
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/referral',
      summary:
        'Refer the case to a service chosen from the directory (recorded with the services offered): a BaRS referral through the outbox, a phone referral, or walk-in advice',
      access: { permission: 'cases.refer' },
      params: caseParams,
      body: z.strictObject({
        serviceId,
        searchId: z.string().trim().min(1).max(100, 'must be at most 100 characters').optional(),
        offered: z.array(serviceId).max(200, 'must list at most 200 services'),
        reasonIfNotFirst: words('say why the first service offered was not chosen').optional(),
        phoneReferral: z
          .strictObject({
            spokeTo: z
              .string()
              .trim()
              .min(1, 'say who took the referral at the service')
              .max(200, 'must be at most 200 characters'),
            reference: z.string().trim().min(1).max(200, 'must be at most 200 characters').optional(),
          })
          .optional(),
      }),
      async handler({ ctx, params, body }) {
        return referrals.refer(ctx, params.caseId, {
          serviceId: body.serviceId,
          searchId: body.searchId ?? null,
          offered: body.offered,
          reasonIfNotFirst: body.reasonIfNotFirst ?? null,
          phoneReferral: body.phoneReferral
            ? { spokeTo: body.phoneReferral.spokeTo, reference: body.phoneReferral.reference ?? null }
            : null,
        });
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/referral',
      summary:
        "Where the case's referral stands: waiting, sent, accepted (with the service's reference), rejected (with its reason), did not attend, phoned, walk in, or failed (send the details by phone); and its booking",
      access: { permission: 'cases.read' },
      params: caseParams,
      async handler({ ctx, params }) {
        return referrals.status(ctx, params.caseId);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/referrals',
      summary:
        'Referral alerts for the shift manager: referrals a service refused, and patients with a safeguarding flag who did not attend',
      access: { permission: 'messages.read' },
      query: z.strictObject({
        needsAttention: z.literal('true', { message: 'must be true (only the alerts are listed)' }),
      }),
      async handler({ ctx }) {
        return { alerts: await referrals.alerts(ctx) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/referrals/:referralId/acknowledge',
      summary: "Acknowledge a referral's alert, saying what was done about it",
      access: { permission: 'messages.manage' },
      params: z.strictObject({ referralId: z.string().uuid('must be a referral id') }),
      body: z.strictObject({
        alert: z.enum(REFERRAL_ALERTS, { message: 'must be rejected or did_not_attend' }),
        reason: words('say what was done about it'),
      }),
      async handler({ ctx, params, body }) {
        return referrals.acknowledge(ctx, params.referralId, body);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/booking/slots',
      summary: "A service's free slots from now, asked of the service (FHIR Slot search)",
      access: { permission: 'cases.refer' },
      params: caseParams,
      query: z.strictObject({ serviceId }),
      async handler({ ctx, params, query, reply }) {
        try {
          return await referrals.slots(ctx, params.caseId, query.serviceId);
        } catch (error) {
          if (!(error instanceof SlotsUnavailableError)) throw error;
          return reply.code(502).send({
            type: 'urn:holdfast:problem:service_unavailable',
            title: 'The service did not answer',
            status: 502,
            code: 'service_unavailable',
            detail: error.message,
          });
        }
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/booking',
      summary:
        'Book one of the service’s free slots: a BaRS booking through the outbox; shown as booked only once the service accepts it',
      access: { permission: 'cases.refer' },
      params: caseParams,
      body: z.strictObject({
        serviceId,
        slotId: z.string().trim().min(1, 'choose a slot').max(64, 'must be at most 64 characters'),
      }),
      async handler({ ctx, params, body, reply }) {
        try {
          return await referrals.book(ctx, params.caseId, body);
        } catch (error) {
          if (!(error instanceof SlotsUnavailableError)) throw error;
          return reply.code(502).send({
            type: 'urn:holdfast:problem:service_unavailable',
            title: 'The service did not answer',
            status: 502,
            code: 'service_unavailable',
            detail: error.message,
          });
        }
      },
    }),
  ];
}
