import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { buildHoldfastApp } from '../../src/http/holdfast-app.ts';
import { sessionNotices } from '../../src/auth/sessions.ts';
import { signInNotices, signInNoticesHeard } from '../../src/auth/throttle-notices.ts';
import { createLogger } from '../../src/http/logger.ts';
import { verifyStore } from '../../src/ledger/verify.ts';
import { commitNoticeText, parseCommitNotice } from '../../src/ledger/commit-notice.ts';
import { CommitFanIn } from '../../src/node/commit-fan-in.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { initNode, openNode, type HoldfastNode } from '../../src/node/node.ts';
import { PROVIDER_KEYS_FILE } from '../../src/node/provider-keys.ts';
import { loadEndorsedHubKey } from '../../src/projections/node-keys.ts';
import { SyncEngine } from '../../src/sync/engine.ts';
import { HttpSyncTransport } from '../../src/sync/http-transport.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { Client, PASSWORD, startTestApp, type TestApp } from '../support/http.ts';

const TENANT = 'northshire';

/** What an operator does for a node: vouch for another hub process's key as a hub of the provider. */
async function endorse(by: HoldfastNode, other: HoldfastNode): Promise<void> {
  await by.ledger.append([
    {
      tenant: TENANT,
      type: 'node.registered',
      actor: `node:${by.identity.node}`,
      payload: { node: other.identity.node, publicKey: other.identity.publicKey, role: 'hub' },
    },
  ]);
  await by.ledger.checkpointNow(TENANT);
}

/**
 * Two hub processes over one PostgreSQL database (issue 13, section 6): A is the test app's node,
 * B a second node with its own identity and chain in its own data directory, sharing the database
 * and the provider's keys, with its own HTTP application. Each hears the other's commits through
 * LISTEN/NOTIFY (CommitFanIn), as `holdfast serve` does.
 */
describe('two hub processes over one PostgreSQL database', () => {
  let a: TestApp;
  let b: { node: HoldfastNode; app: FastifyInstance; dir: string };
  let fanInA: CommitFanIn;
  let fanInB: CommitFanIn;
  let protocols: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  let site: string;

  /** The user signed in through `app` (their second factor, enrolled at their first sign-in, kept). */
  const secrets = new Map<string, string>();
  async function signedIn(app: FastifyInstance, username: string): Promise<Client> {
    const c = new Client(app, a.clock);
    c.totpSecret = secrets.get(username) ?? null;
    expect((await c.signIn(username)).statusCode).toBe(200);
    if (c.totpSecret) secrets.set(username, c.totpSecret);
    return c;
  }

  beforeAll(async () => {
    a = await startTestApp('postgres', { providers: [TENANT] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = a.providers[0]!.sites[0]!;
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-hub-2-'));
    const config = { ...a.config, dataDir: dir };
    // Without the provider's keys a second hub process is refused before anything is written.
    await expect(initNode(config, { node: 'node-2', tenant: TENANT, role: 'hub' })).rejects.toThrow(
      /needs the provider's keys/,
    );
    copyFileSync(join(a.config.dataDir, PROVIDER_KEYS_FILE), join(dir, PROVIDER_KEYS_FILE));
    const node = await initNode(config, { node: 'node-2', tenant: TENANT, role: 'hub' }, { clock: a.clock });
    const built = await buildHoldfastApp(node, {
      logger: createLogger('silent'),
      webDist: false,
      throttle: { maxFailures: 5, lockoutMs: 15 * 60_000, perAddressPerMinute: 10_000 },
      passkeys: { rpId: 'localhost', rpName: 'Holdfast test', origins: ['http://localhost:8080'] },
    });
    await built.app.ready();
    b = { node, app: built.app, dir };
    // As `holdfast serve` does: each hears the other's session notices too, and keeps sessions
    // in its process only while it does.
    fanInA = new CommitFanIn(a.node.ledger, a.config.databaseUrl!, {
      reconnectMs: 100,
      channels: [sessionNotices(a.node.store), signInNotices(a.node.store)],
    });
    fanInB = new CommitFanIn(b.node.ledger, a.config.databaseUrl!, {
      reconnectMs: 100,
      channels: [sessionNotices(b.node.store), signInNotices(b.node.store)],
    });
    await fanInA.start();
    await fanInB.start();
  });
  afterAll(async () => {
    await fanInA?.stop();
    await fanInB?.stop();
    await b?.app.close();
    await b?.node.close();
    await a?.close();
    if (b) rmSync(b.dir, { recursive: true, force: true });
  });

  it('shows a case made through A at B, and takes its next step through B', async () => {
    const adviserA = await signedIn(a.app, `health_adviser@${TENANT}`);
    const { caseId } = await caseAt(adviserA, protocols, site, 'speak_to_primary_care');
    // The same user signs in through B: the session, the password and the second factor are the
    // provider's, whichever process checks them.
    const clinicianB = await signedIn(b.app, `clinician@${TENANT}`);
    const queue = await clinicianB.request('GET', '/api/v1/queue');
    expect(queue.statusCode, queue.body).toBe(200);
    expect(queue.body).toContain(caseId);
    const claimed = await clinicianB.request('POST', `/api/v1/cases/${caseId}/claim`);
    expect(claimed.statusCode, claimed.body).toBe(200);
    // Each process wrote its own chain only: every chain in the database verifies.
    const report = await verifyStore(a.node.store, ledgerCrypto, { tenant: TENANT });
    expect(report.faults).toEqual([]);
    const writers = new Set((await a.node.ledger.readTenant(TENANT, null, 100_000)).map((e) => e.node));
    expect(writers).toEqual(new Set(['node-1', 'node-2']));
  });

  it('lets exactly one of two clinicians claiming one case at once through A and B win', async () => {
    const adviserA = await signedIn(a.app, `health_adviser@${TENANT}`);
    const { caseId } = await caseAt(adviserA, protocols, site, 'speak_to_primary_care');
    const viaA = await signedIn(a.app, `clinician@${TENANT}`);
    const viaB = await signedIn(b.app, `prescriber@${TENANT}`);
    const results = await Promise.all([
      viaA.request('POST', `/api/v1/cases/${caseId}/claim`),
      viaB.request('POST', `/api/v1/cases/${caseId}/claim`),
    ]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409]);
    const claims = (await a.node.ledger.readTenant(TENANT, null, 100_000)).filter(
      (e) => e.type === 'case.claimed' && e.payloadJson.includes(caseId),
    );
    expect(claims).toHaveLength(1);
  });

  it("pushes A's commit to a clinician's live stream on B", async () => {
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    const address = b.app.server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const clinicianB = await signedIn(b.app, `clinician@${TENANT}`);
    const controller = new AbortController();
    const response = await fetch(`http://127.0.0.1:${port}/api/v1/queue/stream?follow=true`, {
      headers: { cookie: clinicianB.cookie! },
      signal: controller.signal,
    });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const adviserA = await signedIn(a.app, `health_adviser@${TENANT}`);
    const { caseId } = await caseAt(adviserA, protocols, site, 'speak_to_primary_care');
    const deadline = Date.now() + 10_000;
    while (!text.includes(caseId) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    expect(text).toContain(caseId);
  });

  it('refuses at B a user disabled through A, also after B lost its notice connection', async () => {
    const users = a.providers[0]!.users;
    for (const [role, drop] of [
      ['dispatcher', false],
      ['receptionist', true],
    ] as const) {
      const viaB = await signedIn(b.app, users[role].username);
      expect((await viaB.request('GET', '/api/v1/auth/session')).statusCode).toBe(200); // B keeps the user
      const connects = fanInB.connects;
      if (drop) await fanInB.dropConnection();
      await a.accounts.disable({ tenant: TENANT, actor: 'user:test-admin' }, users[role].userId, 'left');
      if (drop) {
        // The notice went while B was not listening: B reconnects by itself and catches up.
        const deadline = Date.now() + 5000;
        while (fanInB.connects === connects && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 50));
        expect(fanInB.connects).toBe(connects + 1);
      }
      const deadline = Date.now() + 5000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        status = (await viaB.request('GET', '/api/v1/auth/session')).statusCode;
        if (status === 200) await new Promise((r) => setTimeout(r, 50));
      }
      expect(status).toBe(401);
    }
  });

  it('refuses at B a session signed out through A, also after B lost its notice connection', async () => {
    const sent = vi.spyOn(pg.Client.prototype, 'query');
    onTestFinished(() => sent.mockRestore());
    const sessionReads = () =>
      sent.mock.calls.filter(([q]) =>
        String(typeof q === 'string' ? q : (q as { text: string }).text).includes('from "sessions"'),
      ).length;
    for (const drop of [false, true]) {
      // Signed in through A; a load balancer sends the same browser's requests to B as well.
      const viaA = await signedIn(a.app, `health_adviser@${TENANT}`);
      const viaB = new Client(b.app, a.clock);
      viaB.cookie = viaA.cookie;
      viaB.csrf = viaA.csrf;
      // B keeps the session in its process: a later request reads no session from the database.
      // (The notices of A's sign-in steps may still reach B after its first read and make it forget
      // that copy, as they must; so B is given a few requests to settle.)
      let before = sessionReads();
      let keptAfter = 0;
      for (let attempt = 1; attempt <= 10 && keptAfter === 0; attempt++) {
        before = sessionReads();
        expect((await viaB.request('GET', '/api/v1/auth/session')).statusCode).toBe(200);
        if (attempt > 1 && sessionReads() === before) keptAfter = attempt;
        else await new Promise((r) => setTimeout(r, 20));
      }
      expect(keptAfter).toBeGreaterThan(0);
      const connects = fanInB.connects;
      if (drop) {
        // B does not hear notices now: it keeps nothing, and reads the session every time.
        await fanInB.dropConnection();
        expect((await viaB.request('GET', '/api/v1/auth/session')).statusCode).toBe(200);
        expect(sessionReads()).toBe(before + 1);
      }
      expect((await viaA.request('POST', '/api/v1/auth/sign-out')).statusCode).toBeLessThan(300);
      const deadline = Date.now() + 5000;
      let status = 200;
      while (status === 200 && Date.now() < deadline) {
        status = (await viaB.request('GET', '/api/v1/auth/session')).statusCode;
        if (status === 200) await new Promise((r) => setTimeout(r, 20));
      }
      expect(status).toBe(401);
      if (drop) {
        while (fanInB.connects === connects && Date.now() < deadline + 5000)
          await new Promise((r) => setTimeout(r, 50));
        expect(fanInB.connects).toBe(connects + 1);
      }
    }
  });

  it('keeps a site that syncs alternately through A and B in step, every chain verifying', async () => {
    const url = await a.app.listen({ port: 0, host: '127.0.0.1' });
    const address = b.app.server.address();
    const urlB = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const siteDir = mkdtempSync(join(tmpdir(), 'holdfast-site-'));
    const siteNode = await initNode(
      { store: 'sqlite', dataDir: siteDir, checkpointEvery: 5 },
      { node: 'site-a', tenant: TENANT, role: 'site' },
    );
    try {
      // What enrolment does: the hub (A) registers the site; the site pins A's key.
      await a.node.ledger.append([
        {
          tenant: TENANT,
          type: 'node.registered',
          actor: 'user:test-admin',
          payload: { node: 'site-a', publicKey: siteNode.identity.publicKey, role: 'site' },
        },
      ]);
      await siteNode.ledger.append([
        {
          tenant: TENANT,
          type: 'node.registered',
          actor: 'node:site-a',
          payload: { node: 'node-1', publicKey: a.node.identity.publicKey, role: 'hub' },
        },
      ]);
      let turn = 0;
      const answeredBy: string[] = [];
      const transport = new HttpSyncTransport({
        url,
        peerNode: 'node-1',
        peerPublicKey: a.node.identity.publicKey,
        signer: siteNode.identity.signer,
        tenant: TENANT,
        clock: a.clock,
        endorsedPeerKey: (other) => loadEndorsedHubKey(siteNode.store.db, TENANT, 'node-1', other),
        // A round-robin load balancer in front of A and B.
        fetch: async (input, init) => {
          const base = turn++ % 2 === 0 ? url : urlB;
          const target = new URL(new URL(String(input)).pathname, base);
          const res = await fetch(target, init);
          answeredBy.push(res.headers.get('x-holdfast-node') ?? '?');
          return res;
        },
      });
      const engine = new SyncEngine(siteNode, TENANT, transport);
      // B is no hub the site knows of yet: its answer is refused, whatever it says.
      turn = 1;
      await expect(engine.syncOnce()).rejects.toThrow(
        /signed by node node-2, but this node's peer is node-1/,
      );
      // Each hub process vouches for the other (`holdfast nodes register --role hub`).
      await endorse(a.node, b.node);
      await endorse(b.node, a.node);
      turn = 0;
      for (let round = 0; round < 4; round++) {
        await siteNode.ledger.append([
          {
            tenant: TENANT,
            type: 'site.created',
            actor: 'node:site-a',
            payload: { siteId: randomUUID(), name: `site round ${round}` },
          },
        ]);
        // A round may meet B before the site has pulled A's word for B: it fails and the next goes on.
        await engine.syncOnce().catch(() => undefined);
      }
      await engine.syncOnce();
      await engine.syncOnce();
      expect(new Set(answeredBy)).toEqual(new Set(['node-1', 'node-2']));
      const hubHeads = await a.node.ledger.chainHeads(TENANT);
      const siteHeads = await siteNode.ledger.chainHeads(TENANT);
      expect(siteHeads).toEqual(hubHeads);
      for (const store of [a.node.store, siteNode.store]) {
        const report = await verifyStore(store, ledgerCrypto, { tenant: TENANT });
        expect(report.faults).toEqual([]);
      }
    } finally {
      await siteNode.close();
      rmSync(siteDir, { recursive: true, force: true });
    }
  });

  it('counts sign-in attempts at A and B together: a guesser alternating between them is locked after five in all, and the owner hears of all of them', async () => {
    const name = `advisor_typo@${TENANT}`;
    const at = (app: FastifyInstance) => ({ app, store: app === a.app ? a.node.store : b.node.store });
    const other = (app: FastifyInstance) => at(app === a.app ? b.app : a.app);
    /** A wrong password at `app`, once the other process has heard of it. */
    const guess = async (app: FastifyInstance, username = name) => {
      const heardBefore = signInNoticesHeard(other(app).store);
      const answer = await new Client(app, a.clock).signIn(username, 'not the password');
      await vi.waitFor(() => expect(signInNoticesHeard(other(app).store)).toBeGreaterThan(heardBefore));
      return answer;
    };
    // Three at A and two at B: each process alone has seen fewer than its limit of five.
    for (const app of [a.app, b.app, a.app, b.app, a.app]) expect((await guess(app)).statusCode).toBe(401);
    for (const app of [a.app, b.app]) {
      const refused = await new Client(app, a.clock).signIn(name, 'not the password');
      expect(refused.statusCode, refused.body).toBe(429);
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    }
    // A real user guessed at through A is told of it when they sign in through B.
    const owner = `driver@${TENANT}`;
    expect((await guess(a.app, owner)).statusCode).toBe(401);
    expect((await guess(a.app, owner)).statusCode).toBe(401);
    const signedInAtB = await new Client(b.app, a.clock).request('POST', '/api/v1/auth/sign-in', {
      username: owner,
      password: PASSWORD,
    });
    expect(signedInAtB.statusCode, signedInAtB.body).toBe(200);
    expect((signedInAtB.json() as { notice?: { failedSignIns: number } }).notice?.failedSignIns).toBe(2);
  });

  it("never lets a second process write a hub process's chain", async () => {
    const copy = mkdtempSync(join(tmpdir(), 'holdfast-copy-'));
    try {
      for (const f of ['node.json', 'node.key', PROVIDER_KEYS_FILE, 'store.json'])
        copyFileSync(join(b.dir, f), join(copy, f));
      await expect(openNode({ ...a.config, dataDir: copy })).rejects.toThrow(/already being written/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });
});

describe('commit notices', () => {
  const event = (tenant: string, node: string, seq: number, type: string) => ({ tenant, node, seq, type });

  it('name each chain with its seq range and the types per provider, and nothing else', () => {
    const text = commitNoticeText('origin-1', [
      event('northshire', 'hub-1', 7, 'case.opened'),
      event('northshire', 'hub-1', 8, 'audit.access'),
      event('southshire', 'hub-1', 3, 'user.disabled'),
    ]);
    expect(parseCommitNotice(text)).toEqual({
      origin: 'origin-1',
      chains: [
        { tenant: 'northshire', node: 'hub-1', fromSeq: 7, toSeq: 8 },
        { tenant: 'southshire', node: 'hub-1', fromSeq: 3, toSeq: 3 },
      ],
      types: { northshire: ['audit.access', 'case.opened'], southshire: ['user.disabled'] },
    });
  });

  it('leave out the types, then the chains, rather than exceed what PostgreSQL carries', () => {
    const manyTypes = Array.from({ length: 400 }, (_, i) =>
      event('northshire', 'hub-1', i + 1, `an.event.type.with.a.long.name.${i}`),
    );
    const withoutTypes = parseCommitNotice(commitNoticeText('o', manyTypes))!;
    expect(withoutTypes.types).toBeNull();
    expect(withoutTypes.chains).toEqual([{ tenant: 'northshire', node: 'hub-1', fromSeq: 1, toSeq: 400 }]);
    const manyChains = Array.from({ length: 400 }, (_, i) => event(`provider-${i}`, 'hub-1', 1, 'x'));
    const text = commitNoticeText('o', manyChains);
    expect(Buffer.byteLength(text)).toBeLessThan(8000);
    expect(parseCommitNotice(text)).toEqual({ origin: 'o', chains: null, types: null });
    expect(parseCommitNotice('not json')).toBeNull();
    expect(parseCommitNotice('{"o":"x","c":[["t","n","1",2]]}')).toBeNull();
  });
});
