import { APPOINTMENT_KINDS, LOCAL_DATE, LOCAL_TIME, slotTemplateSchema } from '@holdfast/core';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { BOOKING_ID } from './events.ts';
import { BookingRefusedError, type BookingService } from './service.ts';

const words = (what: string, max = 2000) =>
  z.string(what).trim().min(1, what).max(max, `must be at most ${max} characters`);
const centreId = z
  .string('must be a centre id')
  .regex(BOOKING_ID, 'must be a centre id (lower-case letters, digits and -)');
const centreParams = z.strictObject({ centreId });
const caseParams = z.strictObject({ caseId: z.string().uuid('must be a case id') });
const bookingParams = z.strictObject({ bookingId: z.string().uuid('must be an appointment id') });
const slotId = z.string('choose a slot').min(1, 'choose a slot').max(200, 'must be a slot id');
const kind = z.enum(APPOINTMENT_KINDS, { message: `must be one of ${APPOINTMENT_KINDS.join(', ')}` });
const date = z.string('give the date').regex(LOCAL_DATE, 'must be a date as YYYY-MM-DD');
const time = (what: string) => z.string(what).regex(LOCAL_TIME, 'must be a time as HH:mm');
const coordinate = (min: number, max: number, what: string) =>
  z.coerce
    .number(`must be a ${what}`)
    .min(min, `must be a UK ${what} (${min} to ${max})`)
    .max(max, `must be a UK ${what} (${min} to ${max})`);
const nodeId = z
  .string('name the node')
  .trim()
  .min(1, 'name the node')
  .max(200, 'must be at most 200 characters');
const slotList = z.strictObject({
  slotIds: z
    .array(slotId, 'list the slots')
    .min(1, 'list at least one slot')
    .max(500, 'list at most 500 slots'),
  reason: words('give the reason'),
});

/** A refusal of the scheme: 409 whose code is the reason, naming the owner node when it is another. */
function refused(reply: FastifyReply, error: BookingRefusedError) {
  return reply.code(409).send({
    type: `urn:holdfast:problem:${error.reason}`,
    title: 'The slot cannot be booked from here',
    status: 409,
    code: error.reason,
    detail: error.message,
    ...(error.ownerNodeId ? { ownerNodeId: error.ownerNodeId, ownerNodeName: error.ownerNodeName } : {}),
  });
}

/** Treatment-centre diaries, booking while on the call, and reception (C6). */
export function bookingRoutes(booking: BookingService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/centres',
      summary: "The provider's treatment centres with rooms, slot templates and allocation policies",
      access: { permission: 'cases.read' },
      async handler({ ctx }) {
        return { nodeId: booking.nodeId, centres: await booking.centres(ctx.tenant) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/centres',
      summary:
        "Define (or change) a treatment centre: its site, address, rooms and home node (its own site node, or the hub's; default this node)",
      access: { permission: 'diaries.manage' },
      body: z.strictObject({
        centreId,
        siteId: z.string('choose the site').uuid('must be a site id'),
        name: words('name the centre', 200),
        address: words('give the address', 500),
        postcode: words('give the postcode', 12),
        lat: z.number('give the latitude').min(-90, 'must be a latitude').max(90, 'must be a latitude'),
        lon: z.number('give the longitude').min(-180, 'must be a longitude').max(180, 'must be a longitude'),
        phone: words('give the phone number', 40),
        homeNodeId: nodeId.optional(),
        homeNodeName: words('name the home node', 200).optional(),
        rooms: z
          .array(z.strictObject({ roomId: centreId, name: words('name the room', 120) }), 'list the rooms')
          .min(1, 'list at least one room')
          .max(50, 'list at most 50 rooms'),
        timeframeNote: words('describe the timeframe', 500).nullable().optional(),
      }),
      async handler({ ctx, body, reply }) {
        return reply.code(201).send({ centre: await booking.defineCentre(ctx, body) });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/centres/:centreId/templates',
      summary:
        'Define a slot template of a centre: slot length, patients per slot, the kinds of case it takes',
      access: { permission: 'diaries.manage' },
      params: centreParams,
      body: slotTemplateSchema,
      async handler({ ctx, params, body, reply }) {
        return reply.code(201).send({ centre: await booking.defineTemplate(ctx, params.centreId, body) });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/centres/:centreId/sessions',
      summary:
        "Plan a clinician's session (room, local date and times, a template): its slots are made in local time across clock changes, owned by the centre's home node",
      access: { permission: 'diaries.manage' },
      params: centreParams,
      body: z.strictObject({
        templateId: z
          .string('choose a template')
          .min(1, 'choose a template')
          .max(128, 'must be a template id'),
        roomId: centreId,
        clinicianId: z.string().uuid('must be a user id').nullable().optional(),
        clinicianName: words('name the clinician', 200),
        date,
        startLocal: time('give the start time'),
        endLocal: time('give the end time'),
      }),
      async handler({ ctx, params, body, reply }) {
        return reply.code(201).send(await booking.planSession(ctx, params.centreId, body));
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/centres/:centreId/sessions/:sessionId/cancel',
      summary: 'Cancel a planned session with a reason (its slots take no more bookings)',
      access: { permission: 'diaries.manage' },
      params: centreParams.extend({ sessionId: z.string().uuid('must be a session id') }),
      body: z.strictObject({ reason: words('give the reason') }),
      async handler({ ctx, params, body, reply }) {
        await booking.cancelSession(ctx, params.centreId, params.sessionId, body.reason);
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/centres/:centreId/allocation-policy',
      summary:
        "Hand a share or a number of each session's slots to another node (the 111 call centre, the CAS) in advance, back at a cut-off before the session",
      access: { permission: 'diaries.manage' },
      params: centreParams,
      body: z.strictObject({
        toNodeId: nodeId,
        toNodeName: words('name the node', 200).optional(),
        share: z
          .number('give the share')
          .min(0, 'must be from 0 to 1')
          .max(1, 'must be from 0 to 1')
          .optional(),
        count: z
          .number('give the count')
          .int('must be a whole number')
          .min(0, 'must be 0 or more')
          .max(500, 'must be at most 500')
          .optional(),
        cutoffMinutesBeforeStart: z
          .number('give the cut-off in minutes')
          .int('must be whole minutes')
          .min(0, 'must be 0 or more')
          .max(7 * 24 * 60, 'must be at most a week'),
      }),
      async handler({ ctx, params, body }) {
        return { centre: await booking.setAllocationPolicy(ctx, params.centreId, body) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/slots/block',
      summary: 'Block slots with a reason (appointments already made stand)',
      access: { permission: 'diaries.manage' },
      body: slotList,
      async handler({ ctx, body }) {
        return booking.blockSlots(ctx, body.slotIds, body.reason, true);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/slots/release',
      summary: 'Release blocked slots with a reason',
      access: { permission: 'diaries.manage' },
      body: slotList,
      async handler({ ctx, body }) {
        return booking.blockSlots(ctx, body.slotIds, body.reason, false);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/slots/return',
      summary: 'Give allocated slots back to the node that handed them over, before the cut-off',
      access: { permission: 'diaries.manage' },
      body: z.strictObject({
        slotIds: z
          .array(slotId, 'list the slots')
          .min(1, 'list at least one slot')
          .max(500, 'list at most 500 slots'),
      }),
      async handler({ ctx, body }) {
        return booking.returnSlots(ctx, body.slotIds);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/centres/:centreId/diary',
      summary: "A centre's slots on a day: owner node, bookings, places free, blocked",
      access: { permission: 'cases.read' },
      params: centreParams,
      query: z.strictObject({ date }),
      async handler({ ctx, params, query }) {
        return booking.diary(ctx, params.centreId, query.date);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/booking/custody-check',
      summary:
        "Re-check the ownership scheme over this node's ledger: bookings by a node that did not own the slot, beyond its places, hand-overs by a non-owner (always empty unless something is wrong)",
      access: { permission: 'reconciliation.read' },
      async handler({ ctx }) {
        return { violations: await booking.custodyViolations(ctx.tenant) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/appointment-options',
      summary:
        'The earliest suitable slots across the centres within the case’s timeframe (then after it, flagged), each saying whether this node can book it',
      access: { permission: 'appointments.book' },
      params: caseParams,
      query: z
        .strictObject({
          kind: kind.optional(),
          limit: z.coerce
            .number('must be a number')
            .int('must be a whole number')
            .min(1, 'must be at least 1')
            .max(100, 'must be at most 100')
            .optional(),
          // Where the patient is (as the caller says, like the directory search): nearest first.
          postcode: z.string('give the postcode').trim().min(5, 'must be a postcode').max(10).optional(),
          latitude: coordinate(49, 61, 'latitude').optional(),
          longitude: coordinate(-9, 2.1, 'longitude').optional(),
        })
        .superRefine((q, c) => {
          const coordinates = q.latitude !== undefined || q.longitude !== undefined;
          if (q.postcode !== undefined && coordinates)
            c.addIssue({
              code: 'custom',
              path: ['postcode'],
              message: 'give a postcode or coordinates, not both',
            });
          if (coordinates && q.latitude === undefined)
            c.addIssue({ code: 'custom', path: ['latitude'], message: 'is required with a longitude' });
          if (coordinates && q.longitude === undefined)
            c.addIssue({ code: 'custom', path: ['longitude'], message: 'is required with a latitude' });
        }),
      async handler({ ctx, params, query }) {
        const { postcode, latitude, longitude, ...rest } = query;
        return booking.options(ctx, params.caseId, {
          ...rest,
          from:
            postcode !== undefined
              ? { postcode }
              : latitude !== undefined && longitude !== undefined
                ? { latitude, longitude }
                : null,
        });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/cases/:caseId/appointments',
      summary:
        "Book a slot for the case: only the node that owns the slot can (409 slot_not_owned_here naming it, slot_full, slot_being_booked, slot_blocked); outside the timeframe only with a clinician's reason",
      access: { permission: 'appointments.book' },
      params: caseParams,
      body: z.strictObject({
        slotId,
        kind: kind.optional(),
        outsideTimeframeReason: words('give the reason for booking outside the timeframe').optional(),
      }),
      async handler({ ctx, params, body, reply }) {
        try {
          return reply.code(201).send({ appointment: await booking.book(ctx, params.caseId, body) });
        } catch (error) {
          if (error instanceof BookingRefusedError) return refused(reply, error);
          throw error;
        }
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/cases/:caseId/appointments',
      summary: "The case's appointments, newest first: centre, address, time, state",
      access: { permission: 'cases.read' },
      params: caseParams,
      async handler({ ctx, params }) {
        return { appointments: await booking.caseAppointments(ctx, params.caseId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/appointments/:bookingId/cancel',
      summary: 'Cancel an appointment with the reason (the place is free again for the slot’s owner)',
      access: { permission: 'appointments.book' },
      params: bookingParams,
      body: z.strictObject({ reason: words('give the reason') }),
      async handler({ ctx, params, body }) {
        return { appointment: await booking.cancel(ctx, params.bookingId, body.reason) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/appointments/:bookingId/rebook',
      summary: 'Move an appointment to another slot, with the reason: cancelled and booked in one commit',
      access: { permission: 'appointments.book' },
      params: bookingParams,
      body: z.strictObject({
        slotId,
        reason: words('give the reason'),
        outsideTimeframeReason: words('give the reason for booking outside the timeframe').optional(),
      }),
      async handler({ ctx, params, body, reply }) {
        try {
          return { appointment: await booking.rebook(ctx, params.bookingId, body) };
        } catch (error) {
          if (error instanceof BookingRefusedError) return refused(reply, error);
          throw error;
        }
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/centres/:centreId/reception',
      summary:
        "A centre's appointments on a day for reception: time, patient's name, arrival, waiting time and whether at risk, seen by, did not attend (no clinical notes)",
      access: { permission: 'reception.work' },
      params: centreParams,
      query: z.strictObject({ date }),
      async handler({ ctx, params, query }) {
        return booking.reception(ctx, params.centreId, query.date);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/appointments/:bookingId/arrived',
      summary: "Record the patient's arrival: the case goes to the clinicians' queue in the same commit",
      access: { permission: 'reception.work' },
      params: bookingParams,
      async handler({ ctx, params }) {
        return { appointment: await booking.arrived(ctx, params.bookingId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/appointments/:bookingId/did-not-attend',
      summary: 'Record that the patient did not attend',
      access: { permission: 'reception.work' },
      params: bookingParams,
      async handler({ ctx, params }) {
        return { appointment: await booking.didNotAttend(ctx, params.bookingId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/appointments/:bookingId/seen',
      summary: 'Record that the patient was seen, and by whom (default: you)',
      access: { permission: 'reception.work' },
      params: bookingParams,
      body: z.strictObject({ clinicianId: z.string().uuid('must be a user id').optional() }),
      async handler({ ctx, params, body }) {
        return { appointment: await booking.seen(ctx, params.bookingId, body?.clinicianId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/centres/:centreId/walk-ins',
      summary:
        "A patient who walked in: a case opened at the desk at the centre's site, arrived and in the clinicians' queue",
      access: { permission: 'reception.work' },
      params: centreParams,
      body: z.strictObject({
        patientName: words("give the patient's name", 200),
        patientId: z.string().uuid('must be a patient id').optional(),
        callbackNumber: words('give a telephone number', 40),
        presentingComplaint: words('say why they came', 2000),
        kind: kind.optional(),
      }),
      async handler({ ctx, params, body, reply }) {
        return reply.code(201).send({ appointment: await booking.walkIn(ctx, params.centreId, body) });
      },
    }),
  ];
}
