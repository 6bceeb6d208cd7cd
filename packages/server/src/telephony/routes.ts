import { UnauthenticatedError } from '@holdfast/core';
import { z } from 'zod';
import { publicRoute, type RouteSpec } from '../http/routes.ts';
import { parsePart } from '../http/app.ts';
import { telephonyEventBody, type TelephonyEventBody, type TelephonyService } from './service.ts';

/**
 * `POST /api/v1/telephony/call-events`: the provider's telephony (CTI) posts each call event here —
 * offered to the queue, answered, abandoned — with its time and the caller's line. Not staff: the
 * route is public to the session machinery and the system is authenticated by its bearer token inside
 * the handler, before the body is read (as messages in are, inbound/routes.ts); the tenant comes from
 * the credential only. Bad input is a 400 naming the field (problem+json), never repeating its value.
 */
export function telephonyRoutes(telephony: TelephonyService): RouteSpec[] {
  return [
    publicRoute({
      method: 'POST',
      url: '/api/v1/telephony/call-events',
      summary:
        'Call events from the provider’s telephony (bearer token per system): offered, answered or abandoned, with the time and the caller’s line; a repeat stores nothing',
      access: { public: true },
      // Read by the service once the system is known.
      body: z.unknown(),
      async handler({ request, reply, body }) {
        try {
          const credential = telephony.authenticate(request.headers.authorization);
          // Checked once the system is known, as every route's body is (fields named, unknown ones too).
          const event = parsePart(telephonyEventBody, body, 'body') as TelephonyEventBody;
          const answer = await telephony.record(credential, event);
          return reply.code(answer.status).send(answer.body);
        } catch (error) {
          if (error instanceof UnauthenticatedError) reply.header('www-authenticate', 'Bearer');
          throw error;
        }
      },
    }),
  ];
}
