import type { FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { caseListSites, hasPermission } from '@holdfast/core';
import { livePosition } from '../dispatch/events.ts';
import type { RequestContext } from '../http/context.ts';
import { casesDb } from './projection.ts';
import type { Ledger } from '../ledger/ledger.ts';
import type { Store } from '../store/store.ts';

const HEARTBEAT_MS = 15_000;
const PAGE = 500;
/** The event types a stream tells of. */
const STREAMED = ['case.', 'message.', 'visit.', 'vehicle.'];
const POSITION = 'vehicle.position_reported';

/**
 * Server-sent events of case changes (event `case`), of messages to other systems (event
 * `outbox`, type only) and of home visits and cars (event `dispatch`, type and subject id) for one
 * provider. Each message's id is the event's position in
 * this node's ledger, so a client that reconnects with Last-Event-ID gets exactly what it missed.
 * Messages carry the case id and the event type only; the client re-reads what it shows. The
 * access layer's list rule applies (core `caseListSites`, as for the queue): only cases at the
 * user's sites, or every site with `queue.all_sites`; a user with no sites hears of no case.
 */
export async function streamCaseEvents(
  store: Store,
  ledger: Ledger,
  ctx: RequestContext,
  request: FastifyRequest,
  reply: FastifyReply,
  follow: boolean,
): Promise<void> {
  const header = request.headers['last-event-id'];
  let after = typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : null;
  if (after === null) {
    // A new stream starts now: only what happens from here on.
    const row = await store.withTenant(ctx.tenant, (trx) =>
      trx
        .selectFrom('ledger_events')
        .select((eb) => eb.fn.max('pos').as('pos'))
        .executeTakeFirst(),
    );
    after = Number(row?.pos ?? 0);
  }
  // A car's position goes in its message only to those who may read the cars (as
  // GET /api/v1/vehicles/:vehicleId): the board moves the car without reading it back.
  const readsCars = hasPermission(ctx.roles, 'visits.read');
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-store',
    connection: 'keep-alive',
    'x-content-type-options': 'nosniff',
    'x-accel-buffering': 'no',
  });
  raw.write(`retry: 2000\n: connected\n\n`);
  let sending = false;
  let again = false;
  let closed = false;
  const send = async (): Promise<void> => {
    if (sending) {
      again = true;
      return;
    }
    sending = true;
    try {
      do {
        again = false;
        for (;;) {
          const since: number = after ?? 0;
          // Every new event is read once, whatever its type, and the position moves past all of
          // them: filtered in the query, each wake-up (every append on the node) would read again
          // every other event since the last one sent — a node busy with audited reads would make
          // each open stream slower with every read.
          const read = await store.withTenant(ctx.tenant, (trx) =>
            trx
              .selectFrom('ledger_events')
              .select(['pos', 'type', 'subject'])
              // The payload of position reports only (a few numbers), never of any other event.
              .select(sql<string | null>`case when type = ${POSITION} then payload end`.as('position'))
              .where('tenant', '=', ctx.tenant)
              .where('pos', '>', since)
              .orderBy('pos')
              .limit(PAGE)
              .execute(),
          );
          if (closed) return;
          const last = read.at(-1);
          // Messages to other systems too (an ambulance request accepted moves the dashboard);
          // they are sent as their own event name, which the queue's listeners do not read.
          // And home visits and cars (event `dispatch`, type and subject id only): the dispatcher's
          // board re-reads on them, so a car's new position shows in well under a second.
          const rows = read.filter((r) => STREAMED.some((prefix) => r.type.startsWith(prefix)));
          const sites = caseListSites(ctx);
          const caseIds = [
            ...new Set(rows.flatMap((r) => (r.subject?.startsWith('case:') ? [r.subject.slice(5)] : []))),
          ];
          const siteOf =
            sites === 'all' || caseIds.length === 0
              ? new Map<string, string>()
              : new Map(
                  (
                    await store.withTenant(ctx.tenant, (trx) =>
                      casesDb(trx)
                        .selectFrom('cases')
                        .select(['case_id', 'site_id'])
                        .where('tenant', '=', ctx.tenant)
                        .where('case_id', 'in', caseIds)
                        .execute(),
                    )
                  ).map((c) => [c.case_id, c.site_id]),
                );
          const visible = (subject: string | null): boolean => {
            if (sites === 'all' || !subject?.startsWith('case:')) return true;
            const site = siteOf.get(subject.slice(5));
            return site !== undefined && sites.includes(site);
          };
          for (const r of rows) {
            if (r.type.startsWith('visit.') || r.type.startsWith('vehicle.')) {
              // No case id and no payload: which visit or car changed is all the board needs; a
              // car's new position (car, where, when, accuracy) to readers of the cars.
              const position =
                readsCars && r.type === POSITION && r.position !== null ? livePosition(r.position) : null;
              raw.write(
                `id: ${Number(r.pos)}\nevent: dispatch\ndata: ${JSON.stringify({ type: r.type, subject: r.subject, ...(position ? { position } : {}) })}\n\n`,
              );
              after = Number(r.pos);
              continue;
            }
            if (!r.type.startsWith('message.') && !visible(r.subject)) {
              after = Number(r.pos);
              continue;
            }
            raw.write(
              r.type.startsWith('message.')
                ? `id: ${Number(r.pos)}\nevent: outbox\ndata: ${JSON.stringify({ type: r.type })}\n\n`
                : `id: ${Number(r.pos)}\nevent: case\ndata: ${JSON.stringify({ caseId: r.subject?.slice(5) ?? null, type: r.type })}\n\n`,
            );
            after = Number(r.pos);
          }
          // Keep the position moving past the events not sent, so the next read starts from here.
          if (last) after = Math.max(after ?? 0, Number(last.pos));
          if (read.length < PAGE) break;
        }
      } while (again && !closed);
    } finally {
      sending = false;
    }
  };
  if (!follow) {
    // Without follow=true: what is new since Last-Event-ID, then the response ends (for polling clients).
    await send();
    raw.end();
    return;
  }
  const unsubscribe = ledger.subscribe((tenants) => {
    if (tenants.has(ctx.tenant)) void send().catch(() => undefined);
  });
  const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), HEARTBEAT_MS);
  heartbeat.unref();
  request.raw.on('close', () => {
    closed = true;
    clearInterval(heartbeat);
    unsubscribe();
  });
  await send();
}
