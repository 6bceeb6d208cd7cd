import { endpointSchema, MESSAGE_KINDS, MESSAGE_STATES, type Endpoint } from '@holdfast/core';
import { z } from 'zod';
import { actorOf } from '../http/context.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { MessagingService } from './service.ts';

const messageParams = z.strictObject({ messageId: z.string().uuid('must be a message id') });
const reasonBody = z.strictObject({
  reason: z
    .string()
    .trim()
    .min(3, 'say why (at least 3 characters)')
    .max(2000, 'must be at most 2000 characters'),
});

/**
 * An endpoint as a request gives it: optional fields are left out, never null (the API's rule for
 * every body), and become null in the stored fact.
 */
const shape = endpointSchema.shape;
const endpointBody = z.strictObject({
  endpointId: shape.endpointId,
  name: shape.name,
  kinds: shape.kinds,
  odsCode: shape.odsCode.unwrap().optional(),
  transport: z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('http'),
      url: z
        .string()
        .url()
        .regex(/^https?:\/\//, 'must be an http(s) URL'),
      clientCertificate: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must name a client certificate configured on the nodes')
        .optional(),
    }),
    z.strictObject({
      type: z.literal('mailbox'),
      mailbox: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a mailbox name'),
    }),
  ]),
  phone: shape.phone.unwrap().optional(),
  acceptWithinSeconds: shape.acceptWithinSeconds,
});

function endpointFrom(body: z.infer<typeof endpointBody>): Endpoint {
  return {
    ...body,
    odsCode: body.odsCode ?? null,
    phone: body.phone ?? null,
    transport:
      body.transport.type === 'http'
        ? { ...body.transport, clientCertificate: body.transport.clientCertificate ?? null }
        : body.transport,
  };
}

/** Messages to other systems, their delivery, and the endpoints they go to. */
export function messagingRoutes(messaging: MessagingService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/messages',
      summary:
        'Messages to other systems with their delivery state (newest first); needsAttention=true lists failed and overdue ones',
      access: { permission: 'messages.read' },
      query: z.strictObject({
        state: z
          .string()
          .transform((v) => v.split(','))
          .pipe(z.array(z.enum(MESSAGE_STATES)))
          .optional(),
        caseId: z.string().uuid('must be a case id').optional(),
        kind: z.enum(MESSAGE_KINDS).optional(),
        needsAttention: z
          .enum(['true', 'false'])
          .transform((v) => v === 'true')
          .optional(),
        limit: z.coerce.number().int().min(1).max(1000).optional(),
      }),
      async handler({ ctx, query }) {
        return { messages: await messaging.list(ctx, query) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/messages/:messageId',
      summary: 'One message and where its delivery stands',
      access: { permission: 'messages.read' },
      params: messageParams,
      async handler({ ctx, params }) {
        return messaging.get(ctx, params.messageId);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/messages/:messageId/retry',
      summary: 'Send a failed message again (with a reason, recorded)',
      access: { permission: 'messages.manage' },
      params: messageParams,
      body: reasonBody,
      async handler({ ctx, params, body }) {
        return messaging.retry(ctx, params.messageId, body.reason);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/messages/:messageId/cancel',
      summary: 'Stop a message the receiver has not answered (with a reason, recorded)',
      access: { permission: 'messages.manage' },
      params: messageParams,
      body: reasonBody,
      async handler({ ctx, params, body }) {
        return messaging.cancel(ctx, params.messageId, body.reason);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/admin/endpoints',
      summary: 'The systems this provider sends messages to',
      access: { permission: 'endpoints.manage' },
      async handler({ ctx }) {
        return { endpoints: await messaging.endpoints(ctx.tenant) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/endpoints',
      summary: 'Add a system this provider sends messages to, or change one (same endpointId)',
      access: { permission: 'endpoints.manage' },
      body: endpointBody,
      async handler({ ctx, body }) {
        return messaging.setEndpoint(ctx.tenant, actorOf(ctx), endpointFrom(body));
      },
    }),
  ];
}
