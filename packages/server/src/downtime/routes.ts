import { authedRoute, type RouteSpec } from '../http/routes.ts';
import type { DowntimePackService } from './service.ts';
import { packFileName } from './writer.ts';

/** The downtime pack on demand, for staff of the sites they work at. */
export function downtimeRoutes(packs: DowntimePackService): RouteSpec[] {
  return [
    authedRoute({
      method: 'GET',
      url: '/api/v1/downtime-pack.pdf',
      summary:
        "PDF of your sites' open cases and call-backs due (deadline order), key contacts and blank call and triage forms, to work on paper when systems fail",
      access: { permission: 'downtime.pack' },
      async handler({ ctx, reply }) {
        const { pdf, data } = await packs.forUser(ctx);
        return reply
          .type('application/pdf')
          .header('content-disposition', `attachment; filename="${packFileName(data.generatedAtMs)}"`)
          .send(pdf);
      },
    }),
  ];
}
