import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDirectoryJson } from '@holdfast/core/directory/files';
import type { HoldfastNode } from '../node/node.ts';
import { directoryDb } from './projection.ts';
import { PostcodeStore } from './postcodes.ts';

/**
 * The demo region's directory, seeded at the first `holdfast start`: made-up postcodes (the NS area
 * does not exist) in the ONS Postcode Directory's layout, and fifteen made-up services of several
 * types, each flagged notClinicallyValidated. Both files are also the worked examples of
 * docs/DIRECTORY.md.
 */
export const DEMO_POSTCODES_FILE = fileURLToPath(new URL('../../demo/postcodes-sample.csv', import.meta.url));
export const DEMO_DIRECTORY_FILE = fileURLToPath(
  new URL('../../demo/directory-sample.json', import.meta.url),
);

/**
 * The message endpoint of the demo's receiving service (an ED and a UTC, the out-of-hours bases):
 * the `service` receiver process started with the demo receivers answers on it. Sample services that
 * take referrals by message name it; the GP practice uses the demo GP's endpoint (riverside-surgery).
 */
export const DEMO_SERVICE_ENDPOINT_ID = 'demo-ed';

/** Imports the sample postcodes and, for a provider with an empty directory, the sample services. */
export async function seedDemoDirectory(node: HoldfastNode, tenant: string): Promise<void> {
  await new PostcodeStore(node.store).import(readFileSync(DEMO_POSTCODES_FILE, 'utf8'));
  const existing = await node.store.withTenant(tenant, (trx) =>
    directoryDb(trx)
      .selectFrom('directory_services')
      .select('service_id')
      .where('tenant', '=', tenant)
      .execute(),
  );
  if (existing.length > 0) return;
  const services = parseDirectoryJson(readFileSync(DEMO_DIRECTORY_FILE, 'utf8'));
  await node.ledger.append(
    services.map((service) => ({
      tenant,
      type: 'directory.service_set',
      actor: `node:${node.identity.node}`,
      payload: { version: 1, service },
    })),
  );
}
