import { VEHICLE_STATUSES, VISIT_OUTCOMES } from '@holdfast/core';
import { z } from 'zod';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { DispatchService } from './service.ts';

const visitParams = z.strictObject({ visitId: z.string().uuid('must be a visit id') });
const words = (what: string, max = 2000) =>
  z.string(what).trim().min(1, what).max(max, `must be at most ${max} characters`);
const coordinate = (min: number, max: number, what: string) =>
  z
    .number(`give the ${what}`)
    .min(min, `must be a ${what} (${min} to ${max})`)
    .max(max, `must be a ${what} (${min} to ${max})`);

/** Cars, the visits queue, the dispatcher's board and the crew's phone (C7). */
export function dispatchRoutes(dispatch: DispatchService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/vehicles',
      summary: 'The cars: status with its time, last position and its age, crew on shift from the rota',
      access: { permission: 'visits.read' },
      async handler({ ctx }) {
        return { vehicles: await dispatch.vehicles(ctx) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/vehicles/:vehicleId',
      summary:
        'One car as the board shows it (what the board reads when the live stream says that car changed)',
      access: { permission: 'visits.read' },
      params: z.strictObject({ vehicleId: z.string().uuid('must be a vehicle id') }),
      async handler({ ctx, params }) {
        return { vehicle: await dispatch.vehicleOf(ctx, params.vehicleId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/vehicles',
      summary: 'Add a car: call sign, registration, base site and the base position',
      access: { permission: 'vehicles.manage' },
      body: z.strictObject({
        callSign: words('give the call sign', 40),
        registration: words('give the registration', 20),
        baseSiteId: z.string('choose the base site').uuid('must be a site id'),
        baseLat: coordinate(-90, 90, 'latitude'),
        baseLon: coordinate(-180, 180, 'longitude'),
      }),
      async handler({ ctx, body, reply }) {
        return reply.code(201).send({ vehicle: await dispatch.registerVehicle(ctx, body) });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/vehicles/:vehicleId/retire',
      summary: 'Take a car out of service, with the reason',
      access: { permission: 'vehicles.manage' },
      params: z.strictObject({ vehicleId: z.string().uuid('must be a vehicle id') }),
      body: z.strictObject({ reason: words('give the reason') }),
      async handler({ ctx, params, body }) {
        return { vehicle: await dispatch.retireVehicle(ctx, params.vehicleId, body.reason) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/visits',
      summary:
        'The home-visit queue of your sites by deadline (on time, at risk, breached); ?caseId= for one case',
      access: { permission: 'visits.read' },
      query: z.strictObject({
        caseId: z.string().uuid('must be a case id').optional(),
        state: z.enum(['open', 'all'], { message: 'must be open or all' }).optional(),
      }),
      async handler({ ctx, query }) {
        return { visits: await dispatch.visits(ctx, query) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/visits/:visitId',
      summary:
        'One visit with its suggested cars (access instructions only for the crew of its car and clinicians)',
      access: { permission: 'visits.read' },
      params: visitParams,
      async handler({ ctx, params }) {
        return { visit: await dispatch.visit(ctx, params.visitId) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/visits/:visitId/suggestions',
      summary:
        'Cars for the visit, best first, by estimated arrival (straight line × road factor, time to finish the current visit, the deadline); cars whose crew is not on shift are left out',
      access: { permission: 'visits.read' },
      params: visitParams,
      async handler({ ctx, params }) {
        return dispatch.suggestions(ctx, params.visitId);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/visits/:visitId/allocate',
      summary: 'Send a car to the visit (only a car whose crew is on shift)',
      access: { permission: 'visits.dispatch' },
      params: visitParams,
      body: z.strictObject({ vehicleId: z.string('choose a car').uuid('must be a vehicle id') }),
      async handler({ ctx, params, body }) {
        return { visit: await dispatch.allocate(ctx, params.visitId, body.vehicleId) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/visits/:visitId/reallocate',
      summary: 'Send another car to the visit instead, with the reason',
      access: { permission: 'visits.dispatch' },
      params: visitParams,
      body: z.strictObject({
        vehicleId: z.string('choose a car').uuid('must be a vehicle id'),
        reason: words('give the reason'),
      }),
      async handler({ ctx, params, body }) {
        return { visit: await dispatch.reallocate(ctx, params.visitId, body.vehicleId, body.reason) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/visits/:visitId/cancel',
      summary: 'Cancel a visit no longer needed, with the reason (its car is freed)',
      access: { permission: 'visits.dispatch' },
      params: visitParams,
      body: z.strictObject({ reason: words('give the reason') }),
      async handler({ ctx, params, body }) {
        return { visit: await dispatch.cancel(ctx, params.visitId, body.reason) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/dispatch/board',
      summary:
        "The dispatcher's board: open visits by deadline with suggested cars, cars by status with position and its age, the sites",
      access: { permission: 'visits.read' },
      async handler({ ctx }) {
        return dispatch.board(ctx);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/crew/me',
      summary:
        "The crew's phone: my car (from the rota), its current visit with the address and access instructions",
      access: { permission: 'visits.crew' },
      async handler({ ctx }) {
        return dispatch.crewMe(ctx);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/crew/status',
      summary: "Set my car's status (available, travelling, on scene, leaving, back at base, off duty…)",
      access: { permission: 'visits.crew' },
      body: z.strictObject({
        status: z.enum(VEHICLE_STATUSES, { message: `must be one of: ${VEHICLE_STATUSES.join(', ')}` }),
      }),
      async handler({ ctx, body }) {
        return dispatch.crewStatus(ctx, body.status);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/crew/position',
      summary:
        "My car's position from the phone (kept at most every 15 s unless the car moved more than 200 m)",
      access: { permission: 'visits.crew' },
      body: z.strictObject({
        lat: coordinate(-90, 90, 'latitude'),
        lon: coordinate(-180, 180, 'longitude'),
        accuracyM: z
          .number('give the accuracy in metres')
          .min(0, 'must not be negative')
          .max(100_000, 'must be at most 100000 m'),
      }),
      async handler({ ctx, body }) {
        return dispatch.crewPosition(ctx, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/visits/:visitId/outcome',
      summary:
        "The crew's outcome: seen or admitted closes the case (and the practice is told), converted to ambulance goes to the ambulance service through the 999 handover, not at home goes back to a clinician",
      access: { permission: 'visits.crew' },
      params: visitParams,
      body: z
        .strictObject({
          outcome: z.enum(VISIT_OUTCOMES, { message: `must be one of: ${VISIT_OUTCOMES.join(', ')}` }),
          note: z
            .string('write a note (it may be empty)')
            .trim()
            .max(2000, 'must be at most 2000 characters'),
          ambulanceCategory: z
            .union([z.literal(1), z.literal(2), z.literal(3), z.literal(4)], {
              message: 'must be 1, 2, 3 or 4',
            })
            .optional(),
        })
        .refine((b) => b.outcome !== 'converted_to_ambulance' || b.ambulanceCategory !== undefined, {
          path: ['ambulanceCategory'],
          message: 'choose the ambulance category (1 to 4) for the 999 request',
        }),
      async handler({ ctx, params, body }) {
        return { visit: await dispatch.recordOutcome(ctx, params.visitId, body) };
      },
    }),
  ];
}
