import { ROLES, ROTA_LOCATION_KINDS } from '@holdfast/core';
import { z } from 'zod';
import { sendProblem } from '../http/errors.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import { RotaImportError, type RotaService } from './service.ts';

const time = (what: string) =>
  z.coerce
    .number(`must be ${what} in epoch milliseconds`)
    .int('must be whole milliseconds')
    .min(0, 'must not be before 1970')
    .max(8_640_000_000_000, 'is out of range');
/** A time in a query: epoch milliseconds or an ISO 8601 instant. */
const queryTime = z
  .string()
  .max(40, 'must be at most 40 characters')
  .transform((v, ctx) => {
    const ms = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: 'custom', message: 'must be a time (ISO 8601, or epoch milliseconds)' });
      return z.NEVER;
    }
    return ms;
  });
const role = z.enum(ROLES, { message: `must be one of: ${ROLES.join(', ')}` });
const location = z
  .strictObject({
    kind: z.enum(ROTA_LOCATION_KINDS, { message: `must be one of: ${ROTA_LOCATION_KINDS.join(', ')}` }),
    id: z.string().trim().min(1, 'must not be empty').max(128, 'must be at most 128 characters').nullable(),
  })
  .superRefine((l, ctx) => {
    if (l.kind === 'cas' && l.id !== null)
      ctx.addIssue({ code: 'custom', path: ['id'], message: 'must be null for the CAS' });
    if (l.kind !== 'cas' && l.id === null)
      ctx.addIssue({ code: 'custom', path: ['id'], message: `must name the ${l.kind}` });
  });
const wall = (what: string) =>
  z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, `must be a ${what} time like 08:00`);

/** The rota (C12): shifts, who is on duty, minimum staffing and the gaps against it. */
export function rotaRoutes(rota: RotaService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/rota/shifts',
      summary: 'Shifts on the rota between two times (default: the next 7 days), in rota order',
      access: { permission: 'rota.read' },
      query: z.strictObject({ from: queryTime.optional(), to: queryTime.optional() }),
      async handler({ ctx, query }) {
        const from = query.from ?? rota.nowMs();
        const to = query.to ?? from + 7 * 24 * 3_600_000;
        return { shifts: await rota.list(ctx, from, to) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/rota/shifts',
      summary:
        'Put a shift on the rota: who (userId, or userName as they sign in), which role, where (a site, a car, the CAS, a treatment centre), from and to',
      access: { permission: 'rota.manage' },
      body: z
        .strictObject({
          userId: z.string().uuid('must be a user id').optional(),
          userName: z
            .string()
            .trim()
            .min(1, 'must name the user')
            .max(200, 'must be at most 200 characters')
            .optional(),
          role,
          location,
          startMs: time('the start'),
          endMs: time('the end'),
        })
        .superRefine((b, ctx) => {
          if (!b.userId && !b.userName)
            ctx.addIssue({
              code: 'custom',
              path: ['userId'],
              message: 'name the person (userId or userName)',
            });
          if (b.endMs <= b.startMs)
            ctx.addIssue({ code: 'custom', path: ['endMs'], message: 'must be after the start' });
          else if (b.endMs - b.startMs > 24 * 3_600_000)
            ctx.addIssue({
              code: 'custom',
              path: ['endMs'],
              message: 'a shift may be at most 24 hours long',
            });
        }),
      async handler({ ctx, body, reply }) {
        return reply.code(201).send({ shift: await rota.plan(ctx, body) });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/rota/shifts/:shiftId/cancel',
      summary: 'Take a shift off the rota, with the reason',
      access: { permission: 'rota.manage' },
      params: z.strictObject({ shiftId: z.string().uuid('must be a shift id') }),
      body: z.strictObject({
        reason: z
          .string('give the reason')
          .trim()
          .min(1, 'give the reason')
          .max(2000, 'must be at most 2000 characters'),
      }),
      async handler({ ctx, params, body }) {
        return { shift: await rota.cancel(ctx, params.shiftId, body.reason) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/rota/staff',
      summary: 'The people a shift manager may put on the rota (user name, display name and roles only)',
      access: { permission: 'rota.manage' },
      async handler({ ctx }) {
        return { staff: await rota.staff(ctx) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/rota/import',
      summary:
        'Import a rota file (text/csv, or JSON {csv}; layout in docs/ROTA.md): all or nothing — any problem is a 400 listing each by line and column, and nothing is stored',
      access: { permission: 'rota.manage' },
      body: z.strictObject({
        csv: z
          .string('send the rota file')
          .min(1, 'the file is empty')
          .max(4_000_000, 'the file is too large'),
      }),
      async handler({ ctx, body, reply }) {
        try {
          return reply.code(201).send(await rota.import(ctx, body.csv));
        } catch (error) {
          if (!(error instanceof RotaImportError)) throw error;
          // A problem may quote what it found; a quote is cut short so an answer never echoes a file.
          const problems = error.problems
            .slice(0, 200)
            .map((p) => ({ line: p.line, field: cut(p.field, 64), message: cut(p.message, 160) }));
          return sendProblem(reply, {
            type: 'urn:holdfast:problem:rota_file_refused',
            title: 'The rota file was refused: nothing was imported',
            status: 400,
            code: 'rota_file_refused',
            detail: `${error.problems.length} problem(s): nothing was imported`,
            errors: problems.map((p) => ({
              path: `body.csv`,
              message: `line ${p.line}, ${p.field}: ${p.message}`,
            })),
            ...({ problems } as object),
          });
        }
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/rota/now',
      summary: 'Who is on duty now, and who comes on next, by role and location',
      access: { permission: 'rota.read' },
      async handler({ ctx }) {
        return rota.now(ctx);
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/rota/minimums',
      summary: 'The minimum staffing per role and location (all day, or between two UK times of day)',
      access: { permission: 'rota.read' },
      async handler({ ctx }) {
        return { minimums: await rota.minimums(ctx.tenant) };
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/rota/minimums',
      summary: 'Set the minimum staffing for a role at a location (0 removes it)',
      access: { permission: 'rota.manage' },
      body: z
        .strictObject({
          role,
          location,
          minimum: z
            .number('give the minimum')
            .int('must be a whole number')
            .min(0, 'must not be negative')
            .max(1000, 'must be at most 1000'),
          fromLocal: wall('start').optional(),
          toLocal: wall('end').optional(),
        })
        .superRefine((m, ctx) => {
          if ((m.fromLocal === undefined) !== (m.toLocal === undefined))
            ctx.addIssue({
              code: 'custom',
              path: [m.fromLocal === undefined ? 'fromLocal' : 'toLocal'],
              message: 'give both from and to, or neither (all day)',
            });
        }),
      async handler({ ctx, body }) {
        return { minimums: await rota.setMinimum(ctx, body) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/rota/gaps',
      summary: 'Where the rota falls short of the minimums between two times (default: the next 24 hours)',
      access: { permission: 'rota.read' },
      query: z.strictObject({ from: queryTime.optional(), to: queryTime.optional() }),
      async handler({ ctx, query }) {
        return rota.gaps(ctx, query.from, query.to);
      },
    }),
  ];
}

/** Text cut to at most `max` characters, marked when cut. */
function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
