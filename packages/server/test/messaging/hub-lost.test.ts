import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { messagingDb, statusOf } from '../../src/messaging/projection.ts';
import { MessagingService } from '../../src/messaging/service.ts';
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
 * A site whose hub is lost still sends its ambulance requests: real processes on loopback, a hub on
 * PostgreSQL, a site on SQLite and `holdfast receiver` as the ambulance service. The endpoint is set
 * at the hub and reaches the site by sync (it is a ledger fact); the hub is SIGKILLed; the site's adviser confirms
 * ambulance dispositions and the site delivers them directly, accepted with the receiver's incident
 * numbers; the hub returns, hears of them by sync, and sends none of them again: the receiver's
 * count (and each message's POST count) is the proof.
 */
describe('a site whose hub is lost', () => {
  it('delivers its ambulance requests directly; after the hub returns none is delivered twice', async () => {
    const { hubDir, hubEnv, databaseUrl, password, token } = await initDemoHubOnPostgres();
    const receiverPort = await freePort();
    const receiverUrl = `http://127.0.0.1:${receiverPort}`;
    // The ambulance service as a provider admin sets it (the admin signs in with a passkey, which
    // this test cannot hold: the same ledger fact is written while the node's server is stopped).
    const setEndpoint = async (config: Parameters<typeof openNode>[0]) => {
      const node = await openNode(config);
      try {
        await new MessagingService(node.store, node.ledger, node.clock).setEndpoint(
          DEMO_TENANT,
          'user:provider-admin@northshire',
          {
            endpointId: 'ambulance',
            name: 'North Ambulance Service',
            kinds: ['ambulance_request'],
            odsCode: 'RX9',
            transport: { type: 'http', url: `${receiverUrl}/messages`, clientCertificate: null },
            phone: '0300 123 4567',
            acceptWithinSeconds: 30,
          },
        );
      } finally {
        await node.close();
      }
    };
    await setEndpoint({ store: 'postgres', databaseUrl: databaseUrl, dataDir: hubDir, checkpointEvery: 100 });
    const started = await serveHubAndSite(hubDir, hubEnv, token);
    const { hubPort, siteDir, sitePort } = started;
    let hub = started.hub;

    // The ambulance service: not ours, its own process.
    const receiverFile = join(tempDir('ambulance'), 'received.ndjson');
    await start(
      ['receiver', '--port', String(receiverPort), '--kind', 'ambulance', '--store', receiverFile],
      {},
      () => answers(`${receiverUrl}/health`),
    );

    const secrets = new MemoryTotpSecrets();
    const at = (port: number, username: string) =>
      new ApiSession(new URL(`http://localhost:${port}`), { username, password }, { secrets });
    // The endpoint reaches the site by sync.
    await until(
      'the endpoint at the site',
      async () => {
        const store = await Store.open({ dialect: 'sqlite', file: join(siteDir, 'holdfast.sqlite') });
        try {
          const rows = await messagingDb(store.db)
            .selectFrom('message_endpoints')
            .select('endpoint_id')
            .execute();
          return rows.length;
        } finally {
          await store.close();
        }
      },
      (n) => n === 1,
    );
    // The hub is lost.
    await stop(hub, 'SIGKILL');

    const adviser = at(sitePort, 'health-adviser@northshire');
    const siteId = (await adviser.signIn()).siteIds[0]!;
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    let chosen: { pathwayId: string; answers: NonNullable<ReturnType<typeof answersTo>> } | null = null;
    for (const [pathwayId, protocol] of protocols) {
      const found = answersTo(protocol, (d) => d.kind === 'ambulance');
      if (found) {
        chosen = { pathwayId, answers: found };
        break;
      }
    }
    expect(chosen).not.toBeNull();
    const caseIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const opened = await adviser.call<{ caseId: string }>('POST', '/api/v1/calls', {
        siteId,
        caller: {
          name: `Caller ${i}`,
          relationship: 'self',
          callbackNumber: '0113 496 0123',
          callbackNumberReadBack: true,
        },
        location: 'At home',
        presentingComplaint: 'Chest pain',
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
      const confirmed = await adviser.call('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
        dxCode: last.json.disposition!.dxCode,
      });
      expect(confirmed.status).toBe(200);
      caseIds.push(caseId);
    }
    // Accepted by the ambulance service, with its incident numbers, while the hub is still away.
    const references: string[] = [];
    for (const caseId of caseIds) {
      const h = await until(
        'accepted while the hub is away',
        async () =>
          (
            await adviser.call<{ state: string; reference: string | null }>(
              'GET',
              `/api/v1/cases/${caseId}/ambulance-handover`,
            )
          ).json,
        (v) => v.state === 'accepted',
      );
      references.push(h.reference!);
    }
    expect(references.sort()).toEqual(['INC-000001', 'INC-000002', 'INC-000003']);
    expect(await answers(`http://127.0.0.1:${hubPort}/health`)).toBe(false);

    // The hub returns and hears of them by sync: it holds them accepted and sends none again.
    hub = await serve(hubDir, hubPort, hubEnv);
    const atHub = await until(
      'the hub holds them accepted',
      async () => {
        const store = await Store.open({ dialect: 'postgres', connectionString: databaseUrl });
        try {
          return (
            await messagingDb(store.db).selectFrom('messages').select(['status', 'endpoint_id']).execute()
          )
            .map(statusOf)
            .map((s) => ({ state: s.state, reference: s.reference, origin: s.originNode }));
        } finally {
          await store.close();
        }
      },
      (v) => v.length === 3 && v.every((s) => s.state === 'accepted'),
    );
    expect(atHub.map((s) => s.reference).sort()).toEqual(references);
    expect(atHub.every((s) => s.origin === 'site-a')).toBe(true);
    // A few of the hub's delivery passes (each second) go by.
    await new Promise((r) => setTimeout(r, 4_000));
    const received = (await (await fetch(`${receiverUrl}/received`)).json()) as {
      count: number;
      posts: number;
      messages: { posts: number }[];
    };
    expect(received.count).toBe(3);
    expect(received.posts).toBe(3);
    expect(received.messages.map((m) => m.posts)).toEqual([1, 1, 1]);
    expect(readFileSync(receiverFile, 'utf8').trim().split('\n')).toHaveLength(3);
  }, 240_000);
});
