import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEMO_TENANT } from '../../src/demo.ts';
import { MessagingService } from '../../src/messaging/service.ts';
import { openNode } from '../../src/node/node.ts';
import { DEMO_PHARMACY_ODS } from '../../src/receiver/demo.ts';
import { ApiSession, MemoryTotpSecrets } from '../../src/simulate/api-client.ts';
import { Store } from '../../src/store/store.ts';
import { messagingDb } from '../../src/messaging/projection.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { freePort } from '../support/postgres.ts';
import {
  answers,
  asClient,
  initDemoHubOnPostgres,
  serveHubAndSite,
  start,
  stop,
  tempDir,
  until,
} from '../support/processes.ts';
import { draftOf, PARACETAMOL } from './support.ts';

/**
 * A site whose hub is lost still prescribes: real processes on loopback, a hub on PostgreSQL, a
 * site on SQLite and `holdfast receiver --kind pharmacy`. The pharmacy's endpoint is set at the hub
 * and reaches the site by sync; the hub is SIGKILLed; at the site a patient nominating the pharmacy
 * is triaged to the clinical queue, the prescriber consults and prescribes, and the site's outbox
 * sends the prescription itself: the pharmacy receives it.
 */
describe('a site whose hub is lost', () => {
  it('prescribes and sends the prescription to the pharmacy directly', async () => {
    const { hubDir, hubEnv, databaseUrl, password, token } = await initDemoHubOnPostgres();
    const receiverPort = await freePort();
    const receiverUrl = `http://127.0.0.1:${receiverPort}`;
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
          endpointId: 'pharmacy-north',
          name: 'Market Street Pharmacy',
          kinds: ['prescription'],
          odsCode: DEMO_PHARMACY_ODS,
          transport: { type: 'http', url: `${receiverUrl}/messages`, clientCertificate: null },
          phone: null,
          acceptWithinSeconds: 600,
        },
      );
    } finally {
      await node.close();
    }
    const { hub, hubPort, siteDir, sitePort } = await serveHubAndSite(hubDir, hubEnv, token);
    await start(
      [
        'receiver',
        '--port',
        String(receiverPort),
        '--kind',
        'pharmacy',
        '--store',
        join(tempDir('rx'), 'received.ndjson'),
      ],
      {},
      () => answers(`${receiverUrl}/health`),
    );
    await until(
      'the pharmacy endpoint at the site',
      async () => {
        const store = await Store.open({ dialect: 'sqlite', file: join(siteDir, 'holdfast.sqlite') });
        try {
          return (
            await messagingDb(store.db).selectFrom('message_endpoints').select('endpoint_id').execute()
          ).map((e) => e.endpoint_id);
        } finally {
          await store.close();
        }
      },
      (ids) => ids.includes('pharmacy-north'),
    );
    await stop(hub, 'SIGKILL');

    const secrets = new MemoryTotpSecrets();
    const base = new URL(`http://localhost:${sitePort}`);
    const adviser = new ApiSession(base, { username: 'health-adviser@northshire', password }, { secrets });
    const prescriber = new ApiSession(base, { username: 'prescriber@northshire', password }, { secrets });
    const siteId = (await adviser.signIn()).siteIds[0]!;
    await prescriber.signIn();
    const registered = await adviser.call<{ patientId: string }>('POST', '/api/v1/patients', {
      homeSiteId: siteId,
      record: {
        givenName: 'Hal',
        familyName: 'Hubless',
        dateOfBirth: '1975-06-07',
        sex: 'male',
        specialNotes: [],
        nominatedPharmacy: { odsCode: DEMO_PHARMACY_ODS, name: 'Market Street Pharmacy' },
      },
    });
    expect(registered.status).toBe(201);
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    const { caseId } = await caseAt(asClient(adviser), protocols, siteId, 'speak_to_primary_care', {
      patientId: registered.json.patientId,
    });
    expect((await prescriber.call('POST', `/api/v1/cases/${caseId}/claim`)).status).toBe(200);
    expect((await prescriber.call('POST', `/api/v1/cases/${caseId}/consultation`)).status).toBe(204);
    const issued = await prescriber.call<{ prescription: { state: string } }>(
      'POST',
      `/api/v1/cases/${caseId}/prescriptions`,
      {
        draft: draftOf(PARACETAMOL, {
          doseMg: 1000,
          frequencyPerDay: 4,
          durationDays: 3,
          quantity: 24,
          directions: 'Two tablets four times a day',
        }),
        overrides: [],
        pharmacy: 'nominated',
      },
    );
    expect(issued.status, JSON.stringify(issued.json)).toBe(201);
    const received = await until(
      'received by the pharmacy while the hub is away',
      async () =>
        (
          await prescriber.call<{ prescriptions: { state: string }[] }>(
            'GET',
            `/api/v1/cases/${caseId}/prescriptions`,
          )
        ).json.prescriptions,
      (list) => list[0]?.state === 'received',
    );
    expect(received).toHaveLength(1);
    expect(await answers(`http://127.0.0.1:${hubPort}/health`)).toBe(false);
    const held = (await (await fetch(`${receiverUrl}/received`)).json()) as { count: number };
    expect(held.count).toBe(1);
  }, 240_000);
});
