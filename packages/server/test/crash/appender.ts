/**
 * Child process for the crash-safety test: appends events to a node's ledger as fast as it can,
 * several appends in flight at once (so group commits are exercised), and prints
 * `ack <seq> <hash>` for each event only after its append resolved, i.e. after a durable commit.
 * The parent SIGKILLs it at random moments.
 */
import { identityExists, initNode, openNode } from '../../src/node/node.ts';
import { testItemsProjection, testRegistry } from '../support/ledger-fixture.ts';

const [store, dataDir, databaseUrl] = process.argv.slice(2) as [
  'sqlite' | 'postgres',
  string,
  string | undefined,
];
const TENANT = 'crash';
const config = { store, dataDir, databaseUrl, checkpointEvery: 25 };
const options = { registry: testRegistry(), projections: [testItemsProjection] };

const node = identityExists(dataDir)
  ? await openNode(config, options)
  : await initNode(config, { node: 'crash-node', tenant: TENANT, role: 'single' }, options);

let n = 0;
async function worker(): Promise<never> {
  for (;;) {
    n++;
    const size = 1 + (n % 7);
    const drafts = Array.from({ length: size }, (_, i) => ({
      tenant: TENANT,
      type: 'test.item.noted',
      actor: 'user:crash',
      payload: { item: `case-${(n + i) % 11}`, text: `append ${n}.${i}` },
    }));
    const events = await node.ledger.append(drafts);
    process.stdout.write(events.map((e) => `ack ${e.seq} ${e.hash}\n`).join(''));
  }
}
process.stdout.write('ready\n');
await Promise.all([worker(), worker(), worker(), worker()]);
