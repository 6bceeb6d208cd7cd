import { afterAll, describe, expect, it, vi } from 'vitest';
import { seedDemoDirectory } from '../../src/directory/demo.ts';
import { checkProjections, describeProjectionCheck } from '../../src/projections/check.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/** The demo region's directory: made-up postcodes and fifteen sample services, each flagged. */
describe.each(STORE_KINDS)('demo directory (%s)', (kind) => {
  let t: TestApp;
  afterAll(async () => {
    await t?.close();
  });

  it('seeds the sample postcodes and services once, every service marked not clinically validated', async () => {
    t = await startTestApp(kind);
    const tenant = t.providers[0]!.tenant;
    await seedDemoDirectory(t.node, tenant);
    await seedDemoDirectory(t.node, tenant);
    const services = await t.directory.services(tenant);
    expect(services).toHaveLength(15);
    expect(services.every((s) => s.notClinicallyValidated)).toBe(true);
    expect(new Set(services.map((s) => s.type)).size).toBeGreaterThanOrEqual(7);
    // Every service's postcode, and the demo patients' (NS1 1DM …), are in the sample table.
    for (const s of services) expect(await t.directory.locate(s.postcode), s.postcode).not.toBeNull();
    expect(await t.directory.locate('NS9 8DM')).not.toBeNull();
    expect(await t.directory.postcodes.count()).toBe(117);
    // What was folded at the append is what a fold of the ledger gives (a restart's check passes).
    await t.directory.setCapacity(
      {
        tenant,
        userId: 'u1',
        username: 'u',
        roles: ['clinician'],
        siteIds: [],
        sessionId: 's',
        address: '::1',
      },
      services[0]!.serviceId,
      { status: 'amber', note: 'busy' },
    );
    const check = await checkProjections(t.node.store, t.node.projections.projections, t.node.registry);
    expect(check.ok, describeProjectionCheck(check)).toBe(true);
  });
});
