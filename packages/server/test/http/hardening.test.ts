import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/** Security headers, and no patient data or stack traces in responses or logs. */
describe('hardening', () => {
  let t: TestApp;
  const logs: string[] = [];
  beforeAll(async () => {
    t = await startTestApp('sqlite', { logLines: logs });
  });
  afterAll(async () => t?.close());

  it('sends security headers on every response', async () => {
    const c = new Client(t.app, t.clock);
    for (const url of ['/health', '/api/v1/auth/session', '/no/such/route']) {
      const r = await c.request('GET', url);
      expect(r.headers['content-security-policy'], url).toContain("frame-ancestors 'none'");
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['x-frame-options']).toBe('DENY');
      expect(r.headers['referrer-policy']).toBe('no-referrer');
      // Plain HTTP (tests, loopback): no HSTS; it is sent only over TLS.
      expect(r.headers['strict-transport-security']).toBeUndefined();
    }
    const api = await c.request('GET', '/api/v1/auth/session');
    expect(api.headers['cache-control']).toBe('no-store');
    expect(api.headers['content-type']).toContain('application/problem+json');
  });

  it('keeps patient data out of logs and error responses', async () => {
    const adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    const marker = 'Zebedee-Quillfeather';
    // Registered by a clinician: an adviser's role may not write access instructions.
    const clinician = new Client(t.app, t.clock);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);
    const created = await clinician.request('POST', '/api/v1/patients', {
      homeSiteId: t.providers[0]!.sites[0],
      record: {
        givenName: marker,
        familyName: marker,
        dateOfBirth: '1961-07-04',
        sex: 'male',
        nhsNumber: '9990000018',
        specialNotes: [],
        accessInstructions: `door code ${marker}`,
      },
    });
    expect(created.statusCode).toBe(201);
    const id = (created.json() as { patientId: string }).patientId;
    await adviser.request('GET', `/api/v1/patients/${id}`);
    await adviser.request('POST', '/api/v1/patients/search', {
      familyName: marker,
      dateOfBirth: '1961-07-04',
    });
    // Bad input carrying patient data: the error names the field, never echoes the value.
    const bad = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: t.providers[0]!.sites[0],
      record: {
        givenName: marker,
        familyName: marker,
        dateOfBirth: '1961-02-30',
        sex: 'male',
        nhsNumber: '9990000019',
        specialNotes: [],
      },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.body).not.toContain(marker);
    expect(bad.body).not.toContain('9990000019');
    expect(bad.json()).toMatchObject({
      errors: expect.arrayContaining([
        expect.objectContaining({ path: 'body.record.nhsNumber' }),
        expect.objectContaining({ path: 'body.record.dateOfBirth' }),
      ]),
    });
    // A failed sign-in names no user.
    await new Client(t.app, t.clock).request('POST', '/api/v1/auth/sign-in', {
      username: marker.toLowerCase(),
      password: 'wrong wrong wrong',
    });
    expect(logs.length).toBeGreaterThan(5);
    const all = logs.join('\n');
    expect(all).not.toContain(marker);
    expect(all.toLowerCase()).not.toContain(marker.toLowerCase());
    expect(all).not.toContain('9990000018');
    expect(all).not.toContain(id); // route patterns are logged, not URLs with ids
    expect(all).toContain('/api/v1/patients/:patientId');
    expect(all).not.toMatch(/\bat .*\.ts:\d+/); // no stack traces for handled errors
  });
});
