import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Clock } from '@holdfast/core';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildHoldfastApp } from '../../src/http/holdfast-app.ts';
import { createLogger } from '../../src/http/logger.ts';
import { Ed25519Signer } from '../../src/node/crypto.ts';
import { initNode, type HoldfastNode } from '../../src/node/node.ts';
import { loadNodeKeys } from '../../src/projections/node-keys.ts';
import { issueEnrolmentToken, joinHub } from '../../src/sync/enrolment.ts';
import { SyncEngine } from '../../src/sync/engine.ts';
import { readableEventTypes } from '../../src/sync/handlers.ts';
import { HttpSyncTransport, splitBySize, SyncHttpError } from '../../src/sync/http-transport.ts';
import { SYNC_PROTOCOL_VERSION, SyncRefusedError } from '../../src/sync/protocol.ts';
import { backoffMs, SyncRunner, type RunnerTimers } from '../../src/sync/runner.ts';
import { syncInflation } from '../../src/sync/routes.ts';
import { HEADER, signRequest } from '../../src/sync/signing.ts';
import { SyncStatusStore, syncStatusReport } from '../../src/sync/status.ts';
import { freshStore, STORE_KINDS, type StoreKind } from '../support/databases.ts';

/** A wall clock that a test can move (the hub's, to expire tokens and skew timestamps). */
class OffsetClock implements Clock {
  offsetMs = 0;
  nowMs(): number {
    return Date.now() + this.offsetMs;
  }
}

const TENANT = 'northshire';

interface Hub {
  node: HoldfastNode;
  clock: OffsetClock;
  app: FastifyInstance;
  url: string;
  cleanup(): Promise<void>;
}

async function startHub(kind: StoreKind): Promise<Hub> {
  const fresh = await freshStore(kind);
  const clock = new OffsetClock();
  const node = await initNode(
    { ...fresh.config, checkpointEvery: 10 },
    { node: 'hub-1', tenant: TENANT, role: 'hub' },
    { clock },
  );
  const { app } = await buildHoldfastApp(node, { logger: createLogger('silent'), webDist: false });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    node,
    clock,
    app,
    url,
    async cleanup() {
      await app.close();
      await node.close();
      await fresh.cleanup();
    },
  };
}

/** Every request and answer the site's transport exchanged, as seen on the wire. */
interface WireLog {
  requests: { path: string; encoding: string | null; bytes: number }[];
  answers: { status: number; encoding: string | null }[];
}

function loggingFetch(log: WireLog): typeof fetch {
  return async (input, init) => {
    const headers = new Headers(init?.headers);
    const body = init?.body as Uint8Array | undefined;
    log.requests.push({
      path: new URL(String(input)).pathname,
      encoding: headers.get('content-encoding'),
      bytes: body?.byteLength ?? 0,
    });
    const res = await fetch(input, init);
    log.answers.push({ status: res.status, encoding: res.headers.get('content-encoding') });
    return res;
  };
}

/** A sync request made by hand, to send what a well-behaved transport never would. */
async function rawSync(
  hub: Hub,
  path: '/api/v1/sync/pull' | '/api/v1/sync/push',
  body: Record<string, unknown>,
  sign: { signer: Ed25519Signer; clock: Clock; tenant?: string },
  extraHeaders: Record<string, string> = {},
): Promise<{ status: number; problem: Record<string, unknown>; headers: Record<string, string> }> {
  // Signed over the body as sent: the gzip bytes.
  const wire = gzipSync(JSON.stringify(body));
  const headers = {
    ...signRequest(sign.signer, sign.clock, {
      method: 'POST',
      path,
      tenant: sign.tenant ?? TENANT,
      body: wire,
    }),
    'content-type': 'application/json',
    'content-encoding': 'gzip',
    ...extraHeaders,
  };
  return sendRaw(hub, path, wire, headers);
}

async function sendRaw(
  hub: Hub,
  path: string,
  payload: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; problem: Record<string, unknown>; headers: Record<string, string> }> {
  const res = await fetch(new URL(path, hub.url), { method: 'POST', headers, body: payload });
  const text = await res.text();
  return {
    status: res.status,
    problem: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: Object.fromEntries(res.headers),
  };
}

function pullBody(node: HoldfastNode, from: string, tenant = TENANT): Record<string, unknown> {
  return {
    protocol: SYNC_PROTOCOL_VERSION,
    tenant,
    from,
    positions: {},
    eventTypes: readableEventTypes(node.ledger),
    maxEvents: 100,
  };
}

describe.each(STORE_KINDS)('sync over HTTP (hub on %s)', (kind) => {
  let hub: Hub;
  let site: HoldfastNode;
  let siteCleanup: () => Promise<void>;
  const wire: WireLog = { requests: [], answers: [] };

  beforeAll(async () => {
    hub = await startHub(kind);
    // The hub holds some history of its own before the site joins.
    await hub.node.ledger.append(
      Array.from({ length: 25 }, (_, i) => ({
        tenant: TENANT,
        type: 'node.registered',
        actor: 'system:test',
        payload: {
          node: `old-${i}`,
          publicKey: Ed25519Signer.generate(`old-${i}`).signer.publicKey,
          role: 'site' as const,
        },
      })),
    );
    const fresh = await freshStore('sqlite');
    siteCleanup = fresh.cleanup;
    const { token } = await issueEnrolmentToken(hub.node.store, hub.clock, {
      tenant: TENANT,
      createdBy: 'user:admin',
    });
    const joined = await joinHub(
      { ...fresh.config, checkpointEvery: 10 },
      { node: 'site-a', hubUrl: hub.url, token },
      loggingFetch(wire),
    );
    site = joined.node;
    if (joined.firstSync instanceof Error) throw joined.firstSync;
  });
  afterAll(async () => {
    await site?.close();
    await siteCleanup?.();
    await hub?.cleanup();
  });

  it('enrolment registers the site on the hub and pins the hub on the site; the first sync brings the ledger', async () => {
    expect((await loadNodeKeys(hub.node.store.db, TENANT)).get('site-a')).toBe(site.identity.publicKey);
    expect((await loadNodeKeys(site.store.db, TENANT)).get('hub-1')).toBe(hub.node.identity.publicKey);
    expect(site.identity.hub).toEqual({
      url: new URL(hub.url).origin,
      node: 'hub-1',
      publicKey: hub.node.identity.publicKey,
    });
    expect(site.identity.tenant).toBe(TENANT);
    const hubHead = (await hub.node.ledger.head(TENANT)).seq;
    expect((await site.ledger.chainHeads(TENANT)).get('hub-1')).toBe(hubHead);
    expect((await hub.node.ledger.chainHeads(TENANT)).get('site-a')).toBe(
      (await site.ledger.head(TENANT)).seq,
    );
  });

  it('bodies are gzip-compressed both ways, and the site checks the hub’s signature on every answer', async () => {
    const before = wire.requests.length;
    await site.ledger.append([
      {
        tenant: TENANT,
        type: 'node.registered',
        actor: 'system:test',
        payload: {
          node: 'noted-by-site',
          publicKey: Ed25519Signer.generate('x').signer.publicKey,
          role: 'site',
        },
      },
    ]);
    const transport = new HttpSyncTransport({
      url: hub.url,
      peerNode: 'hub-1',
      peerPublicKey: hub.node.identity.publicKey,
      signer: site.identity.signer,
      tenant: TENANT,
      clock: site.clock,
      fetch: loggingFetch(wire),
    });
    const r = await new SyncEngine(site, TENANT, transport).syncOnce();
    expect(r.pushed).toBeGreaterThan(0);
    expect(r.unsentEvents).toBe(0);
    const sent = wire.requests.slice(before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent.every((q) => q.encoding === 'gzip')).toBe(true);
    expect(wire.answers.slice(before).every((a) => a.status === 200 && a.encoding === 'gzip')).toBe(true);

    // An answer signed by another key than the pinned one is refused.
    const impostor = new HttpSyncTransport({
      ...transport.options,
      peerPublicKey: Ed25519Signer.generate('hub-1').signer.publicKey,
    });
    await expect(new SyncEngine(site, TENANT, impostor).syncOnce()).rejects.toThrow(
      /does not verify against the pinned key of hub-1/,
    );
  });

  it('refuses a bad signature, an unregistered node, a replayed nonce, a stale timestamp, a wrong tenant, and another protocol version, saying which', async () => {
    const clock = site.clock;
    const body = pullBody(site, 'site-a');
    const forged = Ed25519Signer.generate('site-a').signer;
    const bad = await rawSync(hub, '/api/v1/sync/pull', body, { signer: forged, clock });
    expect(bad.status).toBe(401);
    expect(bad.problem).toMatchObject({ code: 'sync_bad_signature', reason: 'bad_signature' });
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);

    const stranger = Ed25519Signer.generate('stranger').signer;
    const unknown = await rawSync(hub, '/api/v1/sync/pull', pullBody(site, 'stranger'), {
      signer: stranger,
      clock,
    });
    expect(unknown.status).toBe(403);
    expect(unknown.problem).toMatchObject({ code: 'sync_unknown_node' });
    expect(String(unknown.problem.detail)).toContain('stranger is not registered for tenant northshire');

    // The same signed request twice: the second is a replay.
    const text = JSON.stringify(body);
    const headers = {
      ...signRequest(site.identity.signer, clock, {
        method: 'POST',
        path: '/api/v1/sync/pull',
        tenant: TENANT,
        body: text,
      }),
      'content-type': 'application/json',
    };
    expect((await sendRaw(hub, '/api/v1/sync/pull', Buffer.from(text), headers)).status).toBe(200);
    const replay = await sendRaw(hub, '/api/v1/sync/pull', Buffer.from(text), headers);
    expect(replay.status).toBe(401);
    expect(replay.problem).toMatchObject({ code: 'sync_replayed_nonce' });

    const late: Clock = { nowMs: () => Date.now() - 6 * 60_000 };
    const stale = await rawSync(hub, '/api/v1/sync/pull', body, {
      signer: site.identity.signer,
      clock: late,
    });
    expect(stale.status).toBe(401);
    expect(stale.problem).toMatchObject({ code: 'sync_stale_timestamp' });
    // The hub's clock 6 minutes ahead refuses the same way: the window is ±5 minutes.
    hub.clock.offsetMs = 6 * 60_000;
    const ahead = await rawSync(hub, '/api/v1/sync/pull', body, { signer: site.identity.signer, clock });
    hub.clock.offsetMs = 0;
    expect(ahead.problem).toMatchObject({ code: 'sync_stale_timestamp' });

    // Signed for a tenant the site is not registered in.
    const wrongTenant = await rawSync(hub, '/api/v1/sync/pull', pullBody(site, 'site-a', 'southshire'), {
      signer: site.identity.signer,
      clock,
      tenant: 'southshire',
    });
    expect(wrongTenant.status).toBe(403);
    expect(wrongTenant.problem).toMatchObject({ code: 'sync_unknown_node' });
    // A body claiming another tenant than the signature: refused naming the field.
    const mismatch = await rawSync(hub, '/api/v1/sync/pull', pullBody(site, 'site-a', 'southshire'), {
      signer: site.identity.signer,
      clock,
    });
    expect(mismatch.status).toBe(400);
    expect(JSON.stringify(mismatch.problem.errors)).toContain('body.tenant');

    // A newer protocol, in the header (refused before the body is read) or in the body.
    const newerHeader = await rawSync(
      hub,
      '/api/v1/sync/pull',
      body,
      { signer: site.identity.signer, clock },
      {
        [HEADER.protocol]: String(SYNC_PROTOCOL_VERSION + 1),
      },
    );
    expect(newerHeader.status).toBe(400);
    expect(newerHeader.problem).toMatchObject({ code: 'sync_refused', reason: 'protocol_version' });
    const newerBody = await rawSync(
      hub,
      '/api/v1/sync/pull',
      { ...body, protocol: SYNC_PROTOCOL_VERSION + 1 },
      { signer: site.identity.signer, clock },
    );
    expect(newerBody.status).toBe(400);
    expect(newerBody.problem).toMatchObject({ reason: 'protocol_version' });
    expect(String(newerBody.problem.detail)).toMatch(/speaks sync protocol version 2.*upgrade this node/);
    // Refusals made after the caller is verified are signed by the hub.
    expect(newerBody.headers[HEADER.node]).toBe('hub-1');

    // A body in an encoding the hub does not take, and a gzip body that is not gzip.
    const br = await rawSync(
      hub,
      '/api/v1/sync/pull',
      body,
      { signer: site.identity.signer, clock },
      { 'content-encoding': 'br' },
    );
    expect(br.status).toBe(415);
    const notGzip = await sendRaw(hub, '/api/v1/sync/pull', Buffer.from('not gzip at all'), {
      ...signRequest(site.identity.signer, clock, {
        method: 'POST',
        path: '/api/v1/sync/pull',
        tenant: TENANT,
        body: Buffer.from('not gzip at all'),
      }),
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    expect(notGzip.status).toBe(400);
  });

  it('checks the signature over the compressed body before inflating it, and bounds inflation', async () => {
    // About 16 KB of gzip that inflates to 16 MiB of zeros: twice the sync body limit.
    const bomb = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
    expect(bomb.length).toBeLessThan(20_000);
    const clock = site.clock;
    const signedFor = (signer: Ed25519Signer, body: Buffer) => ({
      ...signRequest(signer, clock, { method: 'POST', path: '/api/v1/sync/pull', tenant: TENANT, body }),
      'content-type': 'application/json',
      'content-encoding': 'gzip',
    });
    // Forged: signed by the registered site's name over other bytes, and by a stranger. Refused
    // before any inflation: the counter does not move and the answer is quick.
    const inflatedBefore = syncInflation.runs;
    const forged = { ...signedFor(site.identity.signer, Buffer.from('other bytes')) };
    const started = performance.now();
    const refused = await sendRaw(hub, '/api/v1/sync/pull', bomb, forged);
    const ms = performance.now() - started;
    expect(refused.status).toBe(401);
    expect(refused.problem).toMatchObject({ code: 'sync_bad_signature' });
    const stranger = Ed25519Signer.generate('stranger').signer;
    const unknown = await sendRaw(hub, '/api/v1/sync/pull', bomb, signedFor(stranger, bomb));
    expect(unknown.status).toBe(403);
    expect(syncInflation.runs).toBe(inflatedBefore);
    expect(ms).toBeLessThan(250);
    // Signed by the site itself: inflated, but only up to the limit, then refused with 413.
    const signed = await sendRaw(hub, '/api/v1/sync/pull', bomb, signedFor(site.identity.signer, bomb));
    expect(signed.status).toBe(413);
    expect(syncInflation.runs).toBe(inflatedBefore + 1);
  });

  it('the transport turns refusals into errors naming the reason', async () => {
    const stranger = Ed25519Signer.generate('stranger').signer;
    const transport = new HttpSyncTransport({
      url: hub.url,
      peerNode: 'hub-1',
      peerPublicKey: hub.node.identity.publicKey,
      signer: stranger,
      tenant: TENANT,
      clock: site.clock,
    });
    const error = await transport
      .pull(pullBody(site, 'stranger') as Parameters<HttpSyncTransport['pull']>[0])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SyncHttpError);
    expect((error as SyncHttpError).code).toBe('sync_unknown_node');
    expect((error as Error).message).toContain('stranger is not registered for tenant northshire');
    // A refusal of the exchange itself comes back as the engine's SyncRefusedError with its reason.
    const own = new HttpSyncTransport({ ...transport.options, signer: site.identity.signer });
    const newer = await own
      .pull({ ...pullBody(site, 'site-a'), protocol: SYNC_PROTOCOL_VERSION + 1 } as Parameters<
        HttpSyncTransport['pull']
      >[0])
      .catch((e: unknown) => e);
    expect(newer).toBeInstanceOf(SyncRefusedError);
    expect((newer as SyncRefusedError).reason).toBe('protocol_version');
    expect((newer as SyncRefusedError).refusedBy).toBe('hub-1');
  });

  it('an enrolment token is used once and expires', async () => {
    const fresh = await freshStore('sqlite');
    const other = await freshStore('sqlite');
    try {
      const { token } = await issueEnrolmentToken(hub.node.store, hub.clock, {
        tenant: TENANT,
        createdBy: 'user:admin',
      });
      const first = await joinHub(
        { ...fresh.config, checkpointEvery: 10 },
        { node: 'site-b', hubUrl: hub.url, token },
      );
      await first.node.close();
      await expect(
        joinHub({ ...other.config, checkpointEvery: 10 }, { node: 'site-c', hubUrl: hub.url, token }),
      ).rejects.toThrow(
        /refused the enrolment \(401\): this enrolment token is unknown, expired or already used/,
      );

      const short = await issueEnrolmentToken(hub.node.store, hub.clock, {
        tenant: TENANT,
        createdBy: 'user:admin',
        expiresInMinutes: 1,
      });
      hub.clock.offsetMs = 61_000;
      await expect(
        joinHub(
          { ...other.config, checkpointEvery: 10 },
          { node: 'site-c', hubUrl: hub.url, token: short.token },
        ),
      ).rejects.toThrow(/unknown, expired or already used/);
      hub.clock.offsetMs = 0;
      // The refused attempts left nothing behind: no identity, no registration.
      expect((await loadNodeKeys(hub.node.store.db, TENANT)).has('site-c')).toBe(false);
      // The unspent token still works before it expires.
      const ok = await joinHub(
        { ...other.config, checkpointEvery: 10 },
        { node: 'site-c', hubUrl: hub.url, token: short.token },
      );
      await ok.node.close();
      expect((await loadNodeKeys(hub.node.store.db, TENANT)).get('site-c')).toBe(ok.node.identity.publicKey);
    } finally {
      hub.clock.offsetMs = 0;
      await fresh.cleanup();
      await other.cleanup();
    }
  });

  it('the runner backs off while the hub is away, status says so, and it catches up when the hub returns', async () => {
    const timers = new ManualTimers();
    const status = new SyncStatusStore(site.store, site.clock);
    const hubUrl = site.identity.hub!.url;
    // A transport to a port nobody listens on: the hub is away.
    const away = new HttpSyncTransport({
      url: 'http://127.0.0.1:9',
      peerNode: 'hub-1',
      peerPublicKey: hub.node.identity.publicKey,
      signer: site.identity.signer,
      tenant: TENANT,
      clock: site.clock,
      timeoutMs: 2_000,
    });
    const back = new HttpSyncTransport({ ...away.options, url: hubUrl });
    let transport = away;
    const engine = { syncOnce: () => new SyncEngine(site, TENANT, transport).syncOnce() };
    const runner = new SyncRunner(
      engine,
      status,
      { tenant: TENANT, node: 'hub-1', url: hubUrl },
      { subscribe: (fn) => site.ledger.subscribe(fn), nowMs: () => timers.now, timers },
      { intervalMs: 5_000, debounceMs: 250, minBackoffMs: 1_000, maxBackoffMs: 8_000 },
    );
    runner.start();
    const waits: number[] = [];
    for (let i = 0; i < 5; i++) {
      const ran = await timers.fireNext();
      waits.push(ran);
      await runner.idle();
    }
    // The first attempt at once, then 1, 2, 4, 8 s (capped) between failures.
    expect(waits).toEqual([0, 1_000, 2_000, 4_000, 8_000]);
    expect(backoffMs(10, { minBackoffMs: 1_000, maxBackoffMs: 8_000 })).toBe(8_000);
    // Clinical work goes on meanwhile: a commit does not wait on the hub.
    await site.ledger.append([
      {
        tenant: TENANT,
        type: 'node.registered',
        actor: 'system:test',
        payload: {
          node: 'while-away',
          publicKey: Ed25519Signer.generate('y').signer.publicKey,
          role: 'site',
        },
      },
    ]);
    runner.peerPositions = new Map([['site-a', (await site.ledger.head(TENANT)).seq - 1]]);
    const down = await syncStatusReport(site, status, runner.peerPositions);
    expect(down.connected).toBe(false);
    expect(down.lastError).toMatch(/^unreachable: cannot reach hub-1/);
    expect(down.unsentEvents).toBe(1);
    expect(down.peer).toEqual({ node: 'hub-1', url: hubUrl });

    transport = back;
    await timers.fireNext();
    await runner.idle();
    await runner.stop();
    const up = await syncStatusReport(site, status, runner.peerPositions);
    expect(up).toMatchObject({ connected: true, lastError: null, unsentEvents: 0, lagSeconds: 0 });
    expect(up.lastSuccessAt).not.toBeNull();
    // The hub lists the site as seen.
    const hubView = await syncStatusReport(
      hub.node,
      new SyncStatusStore(hub.node.store, hub.node.clock),
      null,
    );
    expect(hubView.peer).toBeNull();
    expect(hubView.sites.find((s) => s.node === 'site-a')).toMatchObject({ connected: true });
    expect(hubView.sites.find((s) => s.node === 'site-a')?.lastSeenAt).not.toBeNull();
  });
});

describe('push splitting', () => {
  it('a push larger than the body limit goes as several requests; a batch is never split', () => {
    const batch = (n: number) => [`{"kind":"event","n":${n},"pad":"${'x'.repeat(400)}"}`];
    const req = {
      protocol: 1,
      tenant: TENANT,
      from: 'site-a',
      batches: Array.from({ length: 50 }, (_, i) => batch(i)),
    };
    const parts = splitBySize(req, 4_000);
    expect(parts.length).toBeGreaterThan(5);
    expect(parts.flatMap((p) => p.batches)).toEqual(req.batches);
    for (const p of parts) expect(Buffer.byteLength(JSON.stringify(p))).toBeLessThanOrEqual(4_000);
    // One batch over the limit still goes, alone.
    expect(
      splitBySize({ ...req, batches: [batch(1), [`"${'y'.repeat(5_000)}"`], batch(2)] }, 4_000),
    ).toHaveLength(3);
  });
});

describe('offline operation', () => {
  it('nothing in the clinical path reaches sync: no clinical module imports it', () => {
    // Sync is started by `serve` and answers its own routes; the clinical modules (cases, patients,
    // accounts, auth, audit, reports, triage, ...) never call it, so no user action waits on the hub.
    const src = fileURLToPath(new URL('../../src/', import.meta.url));
    const allowed = new Set(['sync', 'drill', 'backup', 'cli', 'serve.ts', 'cli.ts', 'http']);
    const offenders: string[] = [];
    const walk = (dir: string, top: string) => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) walk(path, top);
        else if (
          entry.name.endsWith('.ts') &&
          /from '\.\.?\/(?:\.\.\/)*sync\//.test(readFileSync(path, 'utf8'))
        )
          offenders.push(path.slice(src.length));
      }
    };
    for (const entry of readdirSync(src, { withFileTypes: true })) {
      if (allowed.has(entry.name)) continue;
      if (entry.isDirectory()) walk(join(src, entry.name), entry.name);
    }
    expect(offenders).toEqual([]);
    // The one HTTP file that mentions sync only registers its routes.
    const app = readFileSync(join(src, 'http', 'holdfast-app.ts'), 'utf8');
    expect([...app.matchAll(/from '\.\.\/sync\/([\w-]+)\.ts'/g)].map((m) => m[1]).sort()).toEqual([
      'routes',
      'status',
    ]);
  });
});

/** Timers stepped by hand: `fireNext` moves time to the next timer and runs it. */
class ManualTimers implements RunnerTimers {
  now = 0;
  private next = 1;
  private readonly pending = new Map<number, { at: number; fn: () => void; scheduledAt: number }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.set(id, { at: this.now + ms, fn, scheduledAt: this.now });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  /** Runs the earliest timer; returns how long after its scheduling it fired. */
  async fireNext(): Promise<number> {
    // Let a round that just ended schedule its successor.
    for (let i = 0; i < 50 && this.pending.size === 0; i++) await new Promise((r) => setTimeout(r, 10));
    const [id, t] = [...this.pending].sort((a, b) => a[1].at - b[1].at)[0] ?? [];
    if (id === undefined || !t) throw new Error('no timer pending');
    this.pending.delete(id);
    this.now = t.at;
    t.fn();
    return t.at - t.scheduledAt;
  }
}
