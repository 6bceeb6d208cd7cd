import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messagingDb, statusOf } from '../../src/messaging/projection.ts';
import { MessagingService } from '../../src/messaging/service.ts';
import { ED_NORTH, SERVICES } from '../support/service-receiver.ts';
import { openNode } from '../../src/node/node.ts';
import { DEMO_TENANT } from '../../src/demo.ts';
import { ApiSession, MemoryTotpSecrets } from '../../src/simulate/api-client.ts';
import { Store } from '../../src/store/store.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { answersTo } from '../support/cases.ts';
import { freePort } from '../support/postgres.ts';
import {
  answers,
  initDemoHubOnPostgres,
  serveHubAndSite,
  serve,
  start,
  stop,
  tempDir,
  until,
} from '../support/processes.ts';

/**
 * A site whose hub is lost still refers: real processes on loopback, a hub on PostgreSQL, a site on
 * SQLite and `holdfast receiver --kind service` as the emergency department. The service and its
 * endpoint are set at the hub and reach the site by sync (directory and endpoints are ledger facts);
 * the hub is SIGKILLed; the site's adviser reaches an ED disposition, searches the directory the
 * site holds, and refers to the first-ranked service; the site sends the referral directly and it
 * is accepted with the department's reference; the hub returns, hears of it by sync, and does not
 * send it again.
 */
describe('a site whose hub is lost', () => {
  it('refers to a service from the directory it holds and sends the referral directly; accepted once', async () => {
    const { hubDir, hubEnv, databaseUrl, password, token } = await initDemoHubOnPostgres();
    const receiverPort = await freePort();
    const receiverUrl = `http://127.0.0.1:${receiverPort}`;
    // The department and its endpoint as a provider admin sets them (the admin signs in with a
    // passkey, which this test cannot hold: the same ledger facts are written while the hub is stopped).
    const node = await openNode({
      store: 'postgres',
      databaseUrl: databaseUrl,
      dataDir: hubDir,
      checkpointEvery: 100,
    });
    try {
      await new MessagingService(node.store, node.ledger, node.clock).setEndpoint(
        DEMO_TENANT,
        'user:provider-admin@northshire',
        {
          endpointId: 'ed-north',
          name: 'Northtown Emergency Department',
          kinds: ['referral'],
          odsCode: 'RXN01',
          transport: { type: 'http', url: `${receiverUrl}/messages`, clientCertificate: null },
          phone: '0300 000 1001',
          acceptWithinSeconds: 1800,
        },
      );
      await node.ledger.append([
        {
          tenant: DEMO_TENANT,
          type: 'directory.service_set',
          actor: 'user:provider-admin@northshire',
          payload: { version: 1, service: { ...SERVICES[0]!, booking: null } },
        },
      ]);
    } finally {
      await node.close();
    }
    const started = await serveHubAndSite(hubDir, hubEnv, token);
    const { hubPort, siteDir, sitePort } = started;
    let hub = started.hub;
    const receiverFile = join(tempDir('ed'), 'received.ndjson');
    await start(
      ['receiver', '--port', String(receiverPort), '--kind', 'service', '--store', receiverFile],
      {},
      () => answers(`${receiverUrl}/health`),
    );

    const secrets = new MemoryTotpSecrets();
    const adviser = new ApiSession(
      new URL(`http://localhost:${sitePort}`),
      { username: 'health-adviser@northshire', password },
      { secrets },
    );
    // The endpoint and the directory reach the site by sync.
    await until(
      'the endpoint and the service at the site',
      async () => {
        const store = await Store.open({ dialect: 'sqlite', file: join(siteDir, 'holdfast.sqlite') });
        try {
          const endpoints = await messagingDb(store.db)
            .selectFrom('message_endpoints')
            .select('endpoint_id')
            .execute();
          const services = await store.db
            .withTables<{ directory_services: { service_id: string } }>()
            .selectFrom('directory_services')
            .select('service_id')
            .execute();
          // The demo provider also has the sample directory: look for this test's own two.
          return [
            endpoints.some((e) => e.endpoint_id === 'ed-north'),
            services.some((s) => s.service_id === SERVICES[0]!.serviceId),
          ];
        } finally {
          await store.close();
        }
      },
      ([endpoint, service]) => endpoint === true && service === true,
    );
    // The hub is lost.
    await stop(hub, 'SIGKILL');

    const siteId = (await adviser.signIn()).siteIds[0]!;
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    let chosen: { pathwayId: string; answers: NonNullable<ReturnType<typeof answersTo>> } | null = null;
    for (const [pathwayId, protocol] of protocols) {
      const found = answersTo(protocol, (d) => d.kind === 'ed_utc');
      if (found) {
        chosen = { pathwayId, answers: found };
        break;
      }
    }
    expect(chosen).not.toBeNull();
    const opened = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
      siteId,
      caller: {
        name: 'Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Fell and hurt an ankle',
    });
    expect(opened.status).toBe(201);
    const caseId = opened.json.caseId;
    let last = await adviser.call<{ status: string; disposition?: { dxCode: string } }>(
      'POST',
      `/api/v1/cases/${caseId}/triage`,
      { pathwayId: chosen!.pathwayId },
    );
    for (const a of chosen!.answers)
      last = await adviser.call('POST', `/api/v1/cases/${caseId}/triage/answers`, a);
    expect(last.json.status).toBe('disposition');
    expect(
      (
        await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
          dxCode: last.json.disposition!.dxCode,
        })
      ).status,
    ).toBe(200);
    // The search runs at the site, on the directory it holds.
    const search = await adviser.call<{ searchId: string; ranked: { service: { serviceId: string } }[] }>(
      'GET',
      `/api/v1/directory/search?caseId=${caseId}&latitude=53.8&longitude=-1.55`,
    );
    expect(search.status).toBe(200);
    const offered = search.json.ranked.map((r) => r.service.serviceId);
    // This test's department is offered (the demo provider's sample directory may offer others too).
    expect(offered).toContain(ED_NORTH);
    const referred = await adviser.call<{ state: string }>('POST', `/api/v1/cases/${caseId}/referral`, {
      serviceId: ED_NORTH,
      searchId: search.json.searchId,
      offered,
      ...(offered[0] === ED_NORTH ? {} : { reasonIfNotFirst: 'The department the test set up' }),
    });
    expect(referred.status).toBe(200);
    const accepted = await until(
      'accepted while the hub is away',
      async () =>
        (
          await adviser.call<{ state: string; reference: string | null }>(
            'GET',
            `/api/v1/cases/${caseId}/referral`,
          )
        ).json,
      (v) => v.state === 'accepted',
    );
    expect(accepted.reference).toBe('REF-000001');
    expect(await answers(`http://127.0.0.1:${hubPort}/health`)).toBe(false);

    // The hub returns and hears of it by sync: it holds it accepted and does not send it again.
    hub = await serve(hubDir, hubPort, hubEnv);
    await until(
      'the hub holds the referral accepted',
      async () => {
        const store = await Store.open({ dialect: 'postgres', connectionString: databaseUrl });
        try {
          return (
            await messagingDb(store.db).selectFrom('messages').select(['status', 'endpoint_id']).execute()
          )
            .map(statusOf)
            .map((s) => ({ kind: s.kind, state: s.state, reference: s.reference, origin: s.originNode }));
        } finally {
          await store.close();
        }
      },
      (v) =>
        v.length === 1 &&
        v[0]!.kind === 'referral' &&
        v[0]!.state === 'accepted' &&
        v[0]!.reference === 'REF-000001' &&
        v[0]!.origin === 'site-a',
    );
    await new Promise((r) => setTimeout(r, 4_000));
    const received = (await (await fetch(`${receiverUrl}/received`)).json()) as {
      count: number;
      posts: number;
    };
    expect(received).toMatchObject({ count: 1, posts: 1 });
    expect(readFileSync(receiverFile, 'utf8').trim().split('\n')).toHaveLength(1);
  }, 240_000);
});
