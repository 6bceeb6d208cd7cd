import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/** Server-sent events of case changes: live, and resumable with Last-Event-ID (the ledger position). */
describe.each(STORE_KINDS)('live queue updates on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let clinician: Client;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  let site: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire', 'southshire'] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
  });
  afterAll(async () => t?.close());

  const parse = (body: string) =>
    [...body.matchAll(/id: (\d+)\nevent: case\ndata: (.*)\n\n/g)].map((m) => ({
      id: Number(m[1]),
      ...(JSON.parse(m[2]!) as { caseId: string; type: string }),
    }));

  it('resumes from Last-Event-ID with exactly what was missed, in ledger order', async () => {
    const start = await clinician.request('GET', '/api/v1/queue/stream');
    expect(start.statusCode).toBe(200);
    expect(start.headers['content-type']).toContain('text/event-stream');
    expect(parse(start.body)).toEqual([]); // a new stream starts now
    const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
    // No Last-Event-ID yet: ask from position 0 to find this case's events and their ids.
    const all = parse(
      (await clinician.request('GET', '/api/v1/queue/stream', undefined, { 'last-event-id': '0' })).body,
    );
    const mine = all.filter((e) => e.caseId === caseId);
    expect(mine.map((e) => e.type)).toEqual(
      expect.arrayContaining(['case.opened', 'case.disposition_reached', 'case.queued_for_clinician']),
    );
    const ids = all.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const cut = mine[1]!.id;
    const resumed = parse(
      (await clinician.request('GET', '/api/v1/queue/stream', undefined, { 'last-event-id': String(cut) }))
        .body,
    );
    expect(resumed.map((e) => e.id)).toEqual(ids.filter((id) => id > cut));
    const caughtUp = parse(
      (
        await clinician.request('GET', '/api/v1/queue/stream', undefined, {
          'last-event-id': String(ids[ids.length - 1]),
        })
      ).body,
    );
    expect(caughtUp).toEqual([]);
  });

  it('tells of a car or a home visit changing as a dispatch event: its type and subject, nothing more; a position to readers of the cars', async () => {
    const before = await clinician.request('GET', '/api/v1/queue/stream', undefined, {
      'last-event-id': '0',
    });
    const last = Math.max(0, ...[...before.body.matchAll(/id: (\d+)/g)].map((m) => Number(m[1])));
    const vehicleId = '5f0c1f64-8a7e-4d1b-9a55-0c3f7b1e2d41';
    await t.node.ledger.append([
      {
        tenant: t.providers[0]!.tenant,
        type: 'vehicle.registered',
        actor: 'user:test',
        payload: {
          vehicleId,
          callSign: 'Car 9',
          registration: 'NS26 XYZ',
          baseSiteId: site,
          baseLat: 54,
          baseLon: -1.5,
        },
      },
    ]);
    const position = { vehicleId, lat: 54.01, lon: -1.52, accuracyM: 12, atMs: 1_765_000_000_000 };
    await t.node.ledger.append([
      {
        tenant: t.providers[0]!.tenant,
        type: 'vehicle.position_reported',
        actor: 'user:test',
        payload: position,
      },
    ]);
    const dispatchEvents = async (reader: Client) => {
      const body = (
        await reader.request('GET', '/api/v1/queue/stream', undefined, { 'last-event-id': String(last) })
      ).body;
      expect(body).not.toContain('NS26 XYZ');
      return [...body.matchAll(/id: (\d+)\nevent: dispatch\ndata: (.*)\n\n/g)].map(
        (m) => JSON.parse(m[2]!) as Record<string, unknown>,
      );
    };
    // A clinician reads the cars (visits.read): the new position comes in the message, so the
    // board moves the car without reading it back.
    expect(await dispatchEvents(clinician)).toEqual([
      { type: 'vehicle.registered', subject: `vehicle:${vehicleId}` },
      {
        type: 'vehicle.position_reported',
        subject: `vehicle-position:${vehicleId}`,
        position: { vehicleId, lat: 54.01, lon: -1.52, accuracyM: 12, positionAtMs: position.atMs },
      },
    ]);
    // A health adviser follows the queue but may not read the cars: told of the change, not where.
    expect(await dispatchEvents(adviser)).toEqual([
      { type: 'vehicle.registered', subject: `vehicle:${vehicleId}` },
      { type: 'vehicle.position_reported', subject: `vehicle-position:${vehicleId}` },
    ]);
    // A dispatcher of another provider hears nothing of this provider's cars.
    const elsewhere = new Client(t.app, t.clock);
    expect((await elsewhere.signIn('dispatcher@southshire')).statusCode).toBe(200);
    const theirs = (
      await elsewhere.request('GET', '/api/v1/queue/stream', undefined, { 'last-event-id': '0' })
    ).body;
    expect(theirs).not.toContain(vehicleId);
    expect(theirs).not.toContain('54.01');
  });

  it('pushes a change to a following client without it asking again', async () => {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/queue/stream?follow=true`, {
      headers: { cookie: clinician.cookie! },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const { caseId } = await caseAt(adviser, protocols, site, 'speak_to_primary_care');
    const deadline = Date.now() + 10_000;
    while (
      !parse(text).some((e) => e.caseId === caseId && e.type === 'case.queued_for_clinician') &&
      Date.now() < deadline
    ) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    expect(parse(text).some((e) => e.caseId === caseId && e.type === 'case.queued_for_clinician')).toBe(true);
  });
});
