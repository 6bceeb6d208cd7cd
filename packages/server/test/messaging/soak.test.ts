import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyStore } from '../../src/ledger/verify.ts';
import { messagingDb, statusOf } from '../../src/messaging/projection.ts';
import { MessagingService } from '../../src/messaging/service.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { mulberry32 } from '../../src/simulate/simulator.ts';
import { initNode } from '../../src/node/node.ts';
import { Store, type StoreOptions } from '../../src/store/store.ts';
import { freshStore, STORE_KINDS } from '../support/databases.ts';
import { messageBundle } from '../support/message-bundle.ts';
import { freePort } from '../support/postgres.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

/**
 * The outbox's promise under a bad network and a sending node that dies: messages are queued in bulk,
 * `holdfast serve` (a real process) delivers them to `holdfast receiver` (another real process: a FHIR
 * endpoint built on @medplum, behind a seeded proxy that drops, delays, duplicates, answers 500 and
 * loses answers), and the server is SIGKILLed at random moments and started again. At the end the
 * receiver holds every message exactly once by its id, none is lost, and each message's state in the
 * ledger is what the receiver saw: accepted, with the receiver's own reference.
 *
 * CI size by default; the acceptance size with HOLDFAST_SOAK_MESSAGES=10000 HOLDFAST_SOAK_KILLS=20
 * (`npm run soak:outbox`).
 */
const MESSAGES = Number(process.env.HOLDFAST_SOAK_MESSAGES ?? 500);
const KILLS = Number(process.env.HOLDFAST_SOAK_KILLS ?? 5);
const SEED = Number(process.env.HOLDFAST_SOAK_SEED ?? 20261204);
const TENANT = 'northshire';
const children = new Set<ChildProcess>();
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const c of [...children]) c.kill('SIGKILL');
  for (const c of cleanups) await c();
});

/** The CLI as a child process; resolves once `ready` matches its output. */
async function start(
  args: string[],
  env: Record<string, string>,
  ready: (out: string) => Promise<boolean> | boolean,
): Promise<{ child: ChildProcess; out: () => string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HOLDFAST_')));
  const child = spawn(process.execPath, holdfastArgs(...args), {
    env: { ...base, CI: '1', NO_COLOR: '1', HOLDFAST_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.on('exit', () => children.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited (${child.exitCode}): ${out}`);
    if (await ready(out)) return { child, out: () => out };
    if (Date.now() > deadline) throw new Error(`${args.join(' ')} did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).ok;
  } catch {
    return false;
  }
}

function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

async function acceptedCount(storeOptions: StoreOptions): Promise<number> {
  const store = await Store.open(storeOptions);
  try {
    const row = await messagingDb(store.db)
      .selectFrom('messages')
      .select((eb) => eb.fn.countAll<number | string>().as('n'))
      .where('tenant', '=', TENANT)
      .where('state', '=', 'accepted')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  } finally {
    await store.close();
  }
}

describe.each(STORE_KINDS)('the outbox soak on %s', (kind) => {
  it(
    `${MESSAGES} messages through a faulty network, the sender SIGKILLed ${KILLS} times: each held once, none lost, the ledger agrees`,
    async () => {
      const random = mulberry32(SEED + (kind === 'postgres' ? 1 : 0));
      const fresh = await freshStore(kind);
      cleanups.push(fresh.cleanup);
      const env: Record<string, string> =
        kind === 'postgres'
          ? { HOLDFAST_STORE: 'postgres', HOLDFAST_DATABASE_URL: fresh.config.databaseUrl! }
          : {};

      // The ambulance service: its own process, behind its own faulty network.
      const storeFile = join(fresh.dataDir, '..', `soak-receiver-${randomUUID()}.ndjson`);
      cleanups.push(async () => rmSync(storeFile, { force: true }));
      const proxyPort = await freePort();
      const receiver = await start(
        [
          'receiver',
          '--port',
          String(proxyPort),
          '--kind',
          'ambulance',
          '--store',
          storeFile,
          '--faults',
          String(SEED),
        ],
        {},
        (out) => out.includes('/received'),
      );
      const receivedUrl = /what it holds: (\S+)/.exec(receiver.out())![1]!;

      // The messages, queued while no server runs (the node has one writer).
      const queued: string[] = [];
      {
        const node = await initNode(fresh.config, { node: 'hub-1', tenant: TENANT, role: 'hub' });
        try {
          const messaging = new MessagingService(node.store, node.ledger, node.clock);
          await messaging.setEndpoint(TENANT, 'user:soak', {
            endpointId: 'ambulance',
            name: 'North Ambulance Service',
            kinds: ['ambulance_request'],
            odsCode: 'RX9',
            transport: {
              type: 'http',
              url: `http://127.0.0.1:${proxyPort}/messages`,
              clientCertificate: null,
            },
            phone: '0300 000 0000',
            acceptWithinSeconds: 30,
          });
          for (let from = 0; from < MESSAGES; from += 250) {
            const drafts = [];
            for (let i = from; i < Math.min(MESSAGES, from + 250); i++) {
              const messageId = randomUUID();
              queued.push(messageId);
              drafts.push(
                messaging.queuedDraft(TENANT, 'user:soak', {
                  messageId,
                  kind: 'ambulance_request',
                  endpointId: 'ambulance',
                  caseId: randomUUID(),
                  siteId: null,
                  bundle: messageBundle(messageId),
                  summary: 'Ambulance request, category 2',
                  // Nothing fails by its deadline here: every message must get through.
                  failAfterMs: 24 * 3_600_000,
                }),
              );
            }
            await node.ledger.append(drafts);
          }
        } finally {
          await node.close();
        }
      }

      const serve = async () => {
        const port = await freePort();
        return start(['-d', fresh.dataDir, 'serve', '--port', String(port), '--host', '127.0.0.1'], env, () =>
          answers(`http://127.0.0.1:${port}/health`),
        );
      };
      const held = async () => ((await (await fetch(receivedUrl)).json()) as { count: number }).count;

      // The sender dies at random moments while it delivers (SIGKILL: no clean shutdown): each kill
      // when the receiver has taken a random share of the messages, and a random few ms after.
      const targets = Array.from({ length: KILLS }, () =>
        Math.floor(MESSAGES * (0.05 + 0.9 * random())),
      ).sort((a, b) => a - b);
      const countsAtKill: number[] = [];
      for (const target of targets) {
        const server = await serve();
        while ((await held()) < target) await new Promise((r) => setTimeout(r, 20));
        await new Promise((r) => setTimeout(r, Math.floor(random() * 200)));
        await kill(server.child, 'SIGKILL');
        countsAtKill.push(await held());
      }
      // The kills came while messages were still going out.
      if (KILLS > 0) expect(countsAtKill[0]).toBeLessThan(MESSAGES);

      // Then it runs until the ledger has every message accepted (lost answers are retried).
      const server = await serve();
      const deadline = Date.now() + Math.max(120_000, MESSAGES * 60);
      // Looked at four times a second: the file's time is the sender's, not a poll's.
      while ((await acceptedCount(fresh.storeOptions)) < MESSAGES && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 250));
      await kill(server.child, 'SIGTERM');

      // What the receiver holds: its file, one line per message it ever took.
      const lines = readFileSync(storeFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { id: string; code: string; reference: string | null });
      const byId = new Map(lines.map((l) => [l.id, l]));
      expect(lines.length, 'a message held twice').toBe(byId.size);
      expect(byId.size).toBe(MESSAGES);
      expect(
        queued.filter((id) => !byId.has(id)),
        'messages lost',
      ).toEqual([]);
      expect(lines.every((l) => l.code === 'ok')).toBe(true);
      const view = (await (await fetch(receivedUrl)).json()) as { count: number; posts: number };
      expect(view.count).toBe(MESSAGES);

      // What the ledger says about each: accepted, with the reference the receiver gave it.
      const store = await Store.open(fresh.storeOptions);
      try {
        const rows = await messagingDb(store.db)
          .selectFrom('messages')
          .select(['status', 'endpoint_id'])
          .where('tenant', '=', TENANT)
          .execute();
        const statuses = rows.map(statusOf);
        expect(statuses).toHaveLength(MESSAGES);
        const disagreements = statuses.filter(
          (s) => s.state !== 'accepted' || s.reference !== byId.get(s.messageId)?.reference,
        );
        expect(
          disagreements.slice(0, 5).map((s) => ({
            id: s.messageId,
            state: s.state,
            ours: s.reference,
            theirs: byId.get(s.messageId)?.reference,
          })),
        ).toEqual([]);
        const report = await verifyStore(store, ledgerCrypto);
        expect(report.faults).toEqual([]);
        const attempts = statuses.reduce((n, s) => n + s.attempts, 0);
        console.log(
          `soak ${kind}: ${MESSAGES} messages, ${KILLS} kills (held at each kill: ${countsAtKill.join(', ')}); ` +
            `${attempts} attempts recorded, ${view.posts} POSTs reached the receiver, ${byId.size} held`,
        );
      } finally {
        await store.close();
      }
      await kill(receiver.child, 'SIGTERM');
    },
    Math.max(300_000, MESSAGES * 200),
  );
});
