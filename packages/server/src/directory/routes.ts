import {
  capacitySchema,
  directoryServiceDefinitionSchema,
  ForbiddenError,
  hasPermission,
  SERVICE_ID,
} from '@holdfast/core';
import { DirectoryFileError, type DirectoryFileProblem } from '@holdfast/core/directory/files';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { actorOf } from '../http/context.ts';
import { sendProblem } from '../http/errors.ts';
import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { DirectoryService } from './service.ts';

/**
 * A directory or postcode file sent over HTTP: at most 8 MiB (a provider's directory, or a region's
 * postcodes; the full UK postcode file is imported with `holdfast postcodes import FILE`).
 */
export const DIRECTORY_FILE_BODY_LIMIT = 8 * 1024 * 1024;

/**
 * Files come as `text/csv` (read as `{csv: text}`, so every body is an object the route's schema
 * checks) or as JSON. A cross-site page cannot send text/csv without a CORS preflight, so this adds
 * no way round the CSRF rules.
 */
export function installDirectoryBodyHandling(app: FastifyInstance): void {
  app.addContentTypeParser(
    'text/csv',
    { parseAs: 'string', bodyLimit: DIRECTORY_FILE_BODY_LIMIT },
    (_request, body, done) => done(null, { csv: body as string }),
  );
}

const serviceParams = z.strictObject({
  serviceId: z.string().regex(SERVICE_ID, 'must be a service id (a UUID)'),
});

const coordinate = (min: number, max: number, what: string) =>
  z.coerce
    .number(`must be a ${what}`)
    .min(min, `must be a UK ${what} (${min} to ${max})`)
    .max(max, `must be a UK ${what} (${min} to ${max})`);

const searchQuery = z
  .strictObject({
    caseId: z.string().uuid('must be a case id'),
    postcode: z.string().trim().min(5).max(10).optional(),
    latitude: coordinate(49, 61, 'latitude').optional(),
    longitude: coordinate(-9, 2.1, 'longitude').optional(),
    distanceKm: z.coerce.number('must be a number of kilometres').positive().max(500).optional(),
    atMs: z.coerce
      .number('must be a time in epoch milliseconds')
      .int()
      .min(0)
      .max(8_640_000_000_000_000)
      .optional(),
  })
  .superRefine((q, ctx) => {
    const coordinates = q.latitude !== undefined || q.longitude !== undefined;
    if (q.postcode === undefined && !coordinates)
      ctx.addIssue({
        code: 'custom',
        path: ['postcode'],
        message: 'give a postcode, or a latitude and longitude',
      });
    if (q.postcode !== undefined && coordinates)
      ctx.addIssue({
        code: 'custom',
        path: ['postcode'],
        message: 'give a postcode or coordinates, not both',
      });
    if (coordinates && q.latitude === undefined)
      ctx.addIssue({ code: 'custom', path: ['latitude'], message: 'is required with a longitude' });
    if (coordinates && q.longitude === undefined)
      ctx.addIssue({ code: 'custom', path: ['longitude'], message: 'is required with a latitude' });
  });

const importBody = z
  .strictObject({
    /** A JSON directory file's services (each checked as the file's rows are). */
    services: z.array(z.unknown()).max(50_000).optional(),
    /** A CSV directory file (what a text/csv body becomes). */
    csv: z.string().min(1).optional(),
  })
  .superRefine((b, ctx) => {
    if ((b.services === undefined) === (b.csv === undefined))
      ctx.addIssue({ code: 'custom', path: [], message: 'send a CSV file (text/csv) or {services: [...]}' });
  });

/** A refused file: 400 naming each bad row's line and field (`problems`), and the body paths (`errors`). */
function refuseFile(
  reply: FastifyReply,
  error: DirectoryFileError,
  pathOf: (p: DirectoryFileProblem) => string,
) {
  const problems = error.problems.slice(0, 100);
  return sendProblem(reply, {
    type: 'urn:holdfast:problem:directory_file_refused',
    title: 'The file was refused: nothing was imported',
    status: 400,
    code: 'directory_file_refused',
    detail: error.message,
    errors: problems.map((p) => ({ path: pathOf(p), message: `line ${p.line}, ${p.field}: ${p.message}` })),
    ...({ problems } as object),
  });
}

/** The Directory of Services (C10): the provider's services, their capacity, search, and files. */
export function directoryRoutes(directory: DirectoryService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/directory/services',
      summary: 'The provider’s Directory of Services, with each service’s capacity',
      access: { permission: 'directory.read' },
      async handler({ ctx }) {
        return { services: await directory.services(ctx.tenant) };
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/directory/search',
      summary:
        'Services for a case: its disposition, symptom group, age and sex, from a postcode or coordinates; ranked, with every left-out service and why (the read of the case is audited)',
      access: { permission: 'directory.read' },
      search: true,
      query: searchQuery,
      async handler({ ctx, query }) {
        // The search reads the case (disposition, age, sex): only roles that may read cases.
        if (!hasPermission(ctx.roles, 'cases.read'))
          throw new ForbiddenError('reading cases is not allowed for this role');
        return directory.searchForCase(ctx, {
          caseId: query.caseId,
          location:
            query.postcode !== undefined
              ? { postcode: query.postcode }
              : { latitude: query.latitude!, longitude: query.longitude! },
          ...(query.distanceKm !== undefined ? { distanceKm: query.distanceKm } : {}),
          ...(query.atMs !== undefined ? { atMs: query.atMs } : {}),
        });
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/directory/services',
      summary: 'Add a service to the directory or replace its definition (its capacity stays)',
      access: { permission: 'directory.edit' },
      body: directoryServiceDefinitionSchema,
      async handler({ ctx, body }) {
        return directory.set(ctx.tenant, actorOf(ctx), body);
      },
    }),
    authedRoute({
      method: 'DELETE',
      url: '/api/v1/admin/directory/services/:serviceId',
      summary: 'Take a service out of the directory (with a reason, recorded)',
      access: { permission: 'directory.edit' },
      params: serviceParams,
      body: z.strictObject({
        reason: z.string().trim().min(3, 'say why (at least 3 characters)').max(2000),
      }),
      async handler({ ctx, params, body, reply }) {
        await directory.remove(ctx, params.serviceId, body.reason);
        return reply.code(204).send();
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/directory/services/:serviceId/capacity',
      summary: 'Set a service’s capacity: green, amber or red (who and when are recorded)',
      access: { permission: 'directory.capacity' },
      params: serviceParams,
      body: capacitySchema,
      async handler({ ctx, params, body }) {
        return directory.setCapacity(ctx, params.serviceId, body);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/directory/import',
      summary:
        'Import a directory file (text/csv, or JSON {services}): every service added or replaced, all or nothing; a bad row refuses the file with its line and field',
      access: { permission: 'directory.edit' },
      bodyLimit: DIRECTORY_FILE_BODY_LIMIT,
      body: importBody,
      async handler({ ctx, body, reply }) {
        try {
          return body.csv !== undefined
            ? await directory.importFile(ctx.tenant, actorOf(ctx), body.csv, 'csv')
            : await directory.importFile(
                ctx.tenant,
                actorOf(ctx),
                JSON.stringify({ services: body.services }),
                'json',
              );
        } catch (error) {
          if (!(error instanceof DirectoryFileError)) throw error;
          return refuseFile(reply, error, (p) =>
            body.csv !== undefined
              ? 'body.csv'
              : `body.services.${p.line - 1}${p.field === 'service' ? '' : `.${p.field}`}`,
          );
        }
      },
    }),
    authedRoute({
      method: 'GET',
      url: '/api/v1/admin/directory/export',
      summary:
        'The directory as a file (CSV or JSON, the layout the import reads; capacity is not part of it)',
      access: { permission: 'directory.edit' },
      query: z.strictObject({ format: z.enum(['csv', 'json']).default('json') }),
      async handler({ ctx, query, reply }) {
        const text = await directory.exportFile(ctx.tenant, query.format);
        return reply
          .type(query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/json; charset=utf-8')
          .header('content-disposition', `attachment; filename="directory.${query.format}"`)
          .send(text);
      },
    }),
    authedRoute({
      method: 'POST',
      url: '/api/v1/admin/postcodes/import',
      summary:
        'Import postcodes to places (text/csv in the ONS Postcode Directory layout: pcds, lat, long), all or nothing; the full UK file is for `holdfast postcodes import`',
      access: { permission: 'directory.edit' },
      bodyLimit: DIRECTORY_FILE_BODY_LIMIT,
      body: z.strictObject({ csv: z.string().min(1) }),
      async handler({ body, reply }) {
        try {
          return await directory.postcodes.import(body.csv);
        } catch (error) {
          if (!(error instanceof DirectoryFileError)) throw error;
          return refuseFile(reply, error, () => 'body.csv');
        }
      },
    }),
  ];
}
