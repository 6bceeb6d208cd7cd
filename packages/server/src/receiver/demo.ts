import { join } from 'node:path';
import type { HoldfastConfig } from '../config.ts';
import { MessagingService } from '../messaging/service.ts';
import { openNode } from '../node/node.ts';
import { FhirReceiver } from './receiver.ts';

/**
 * The demo's ambulance service, GP practice, emergency department and pharmacy: receivers that are not ours (receiver.ts) in
 * the `holdfast start` process, on the four ports after the node's, each keeping what it received in
 * the data directory; and the provider's endpoints pointing at them (set once, as a provider admin
 * would), so a confirmed ambulance disposition is accepted with an incident number on screen.
 */
/** The demo pharmacy's ODS code: the sample directory's Market Street Pharmacy, which demo patients nominate. */
export const DEMO_PHARMACY_ODS = 'NSX10';

export const DEMO_RECEIVERS = [
  {
    endpointId: 'ambulance',
    kind: 'ambulance' as const,
    name: 'North Ambulance Service (demo)',
    kinds: ['ambulance_request' as const],
    odsCode: 'RX9',
    phone: '0300 000 0999',
    acceptWithinSeconds: 30,
    offset: 1,
    path: '/messages',
  },
  {
    endpointId: 'riverside-surgery',
    kind: 'gp' as const,
    name: 'Riverside Surgery (demo)',
    kinds: ['post_event_message' as const, 'referral' as const, 'booking' as const],
    odsCode: 'A81001',
    phone: '0300 000 0111',
    acceptWithinSeconds: 86_400,
    offset: 2,
    path: '/messages',
  },
  {
    // An emergency department that takes referrals and offers bookable slots (C10): the demo
    // directory's services name this endpoint for both (slots are searched at <url>/Slot).
    endpointId: 'demo-ed',
    kind: 'service' as const,
    name: 'Northtown Emergency Department (demo)',
    kinds: ['referral' as const, 'booking' as const],
    odsCode: 'RXN01',
    phone: '0300 000 1001',
    acceptWithinSeconds: 1_800,
    offset: 3,
    path: '/fhir',
  },
  {
    // A community pharmacy that takes prescriptions (C9): Market Street Pharmacy of the sample
    // directory (ODS NSX10), which the demo patients nominate, so their prescriptions reach it.
    endpointId: 'demo-pharmacy',
    kind: 'pharmacy' as const,
    name: 'Market Street Pharmacy (demo)',
    kinds: ['prescription' as const],
    odsCode: DEMO_PHARMACY_ODS,
    phone: '0300 000 2001',
    acceptWithinSeconds: 600,
    offset: 4,
    path: '/messages',
  },
];

/** Sets the demo endpoints the tenant does not have yet (opens the node: call before serving). */
export async function ensureDemoEndpoints(cfg: HoldfastConfig, tenant: string): Promise<void> {
  const node = await openNode(cfg, { purpose: 'holdfast start' });
  try {
    const messaging = new MessagingService(node.store, node.ledger, node.clock);
    const have = new Set((await messaging.endpoints(tenant)).map((e) => e.endpointId));
    for (const r of DEMO_RECEIVERS.filter((d) => !have.has(d.endpointId)))
      await messaging.setEndpoint(tenant, `node:${node.identity.node}`, {
        endpointId: r.endpointId,
        name: r.name,
        kinds: r.kinds,
        odsCode: r.odsCode,
        transport: {
          type: 'http',
          url: `http://127.0.0.1:${cfg.port + r.offset}${r.path}`,
          clientCertificate: null,
        },
        phone: r.phone,
        acceptWithinSeconds: r.acceptWithinSeconds,
      });
  } finally {
    await node.close();
  }
}

/** Starts the demo receivers; one that cannot listen (its port taken) is reported and skipped. */
export async function startDemoReceivers(cfg: HoldfastConfig): Promise<void> {
  for (const r of DEMO_RECEIVERS) {
    const receiver = new FhirReceiver({
      kind: r.kind,
      name: r.name,
      storeFile: join(cfg.dataDir, `demo-receiver-${r.endpointId}.ndjson`),
    });
    try {
      const url = await receiver.start(cfg.port + r.offset, '127.0.0.1');
      console.log(`  ${r.name}: ${url}/received (${receiver.count} messages held)`);
    } catch (error) {
      console.error(`  ${r.name} could not start: ${(error as Error).message}`);
    }
  }
}
