import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, currentReachability, onReachabilityChange } from '../src/lib/api.ts';
import { ageWords, unavailableWords } from '../src/lib/reachability.ts';
import { freePort } from './support/server.ts';

/**
 * The continuity line's source (lib/api.ts): every request reports its outcome, against a real HTTP
 * server on loopback. No answer or a 5xx is a failure from that request on; a 4xx is an answer (the
 * server works, it refused the request); only an answered request ends a failure.
 */
describe('whether the server answers, as requests find it', () => {
  let server: Server;
  let base = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      const status = Number(/\/status\/(\d+)/.exec(req.url ?? '')?.[1] ?? 200);
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: status < 400 }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('fails at the first request with no answer or a 5xx, and recovers only on an answer', async () => {
    let changes = 0;
    const unsubscribe = onReachabilityChange(() => changes++);
    await api('GET', `${base}/status/200`);
    expect(currentReachability().failingSince).toBeNull();
    expect(currentReachability().lastAnswerAt).not.toBeNull();

    // Nothing listens on this port: no answer at all.
    const closed = `http://127.0.0.1:${await freePort()}`;
    const before = Date.now();
    await expect(api('GET', `${closed}/anything`)).rejects.toMatchObject({ status: 0 });
    const failing = currentReachability();
    expect(failing.failingSince).toBeGreaterThanOrEqual(before);
    expect(failing.lastFailureStatus).toBe(0);
    expect(unavailableWords(failing)).toBe('the server is not answering');

    // A 5xx keeps it failing, from the same moment, and says the server is failing.
    await expect(api('GET', `${base}/status/503`)).rejects.toMatchObject({ status: 503 });
    expect(currentReachability().failingSince).toBe(failing.failingSince);
    expect(unavailableWords(currentReachability())).toBe('the server is failing (error 503)');

    // A refusal (4xx) is an answer: the server works.
    await expect(api('GET', `${base}/status/404`)).rejects.toMatchObject({ status: 404 });
    expect(currentReachability().failingSince).toBeNull();
    expect(currentReachability().lastFailureStatus).toBeNull();

    // Steady success does not wake every subscriber for each request.
    const settled = changes;
    await api('GET', `${base}/status/200`);
    await api('GET', `${base}/status/200`);
    expect(changes).toBe(settled);
    unsubscribe();
  });

  it('says how old a reading is in words', () => {
    const now = Date.parse('2026-12-05T01:00:00Z');
    expect(ageWords(now - 3_000, now)).toBe('just now');
    expect(ageWords(now - 40_000, now)).toBe('40 s ago');
    expect(ageWords(now - 125_000, now)).toBe('2 min ago');
    expect(ageWords(now - 65 * 60_000, now)).toBe('1 h 5 min ago');
  });
});
