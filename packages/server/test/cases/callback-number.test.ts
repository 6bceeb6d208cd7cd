import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { eventsAfter, ledgerPosition } from '../support/route-samples.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The call-back number (hazards H32, H33): a UK number in use, checked against the numbering plan
 * and stored in the national format, and read back to the caller before the call is taken; the
 * case shows that it was. Cases stored before the check still read as stored.
 */

describe.each(STORE_KINDS)('the call-back number on %s', (kind) => {
  let t: TestApp;
  let site: string;
  let adviser: Client;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
  });
  afterAll(async () => t?.close());

  const call = (caller: Record<string, unknown>) =>
    adviser.request('POST', '/api/v1/calls', {
      siteId: site,
      caller: { name: 'Sam Caller', relationship: 'self', ...caller },
      location: 'At home',
      presentingComplaint: 'Feeling unwell',
    });

  it('refuses numbers that are not UK numbers in use, in plain words naming the field; nothing stored', async () => {
    const before = await ledgerPosition(t);
    for (const [number, message] of [
      ['123456', 'is too short for a UK telephone number: a digit may be missing'],
      ['0791112345', 'is not a UK telephone number in use: check each digit with the caller'],
      ['079111234567', 'is too long for a UK telephone number: a digit may be repeated'],
      ['+33 6 12 34', 'is not a number in use in the country of +33: check each digit with the caller'],
      ['07911 l23456', 'must be digits only (spaces are fine)'],
    ]) {
      const r = await call({ callbackNumber: number, callbackNumberReadBack: true });
      expect(r.statusCode, number).toBe(400);
      const errors = (r.json() as { errors: { path: string; message: string }[] }).errors;
      expect(errors.map((e) => e.path)).toEqual(['body.caller.callbackNumber']);
      expect(errors[0]!.message).toContain(message);
      // The value is never echoed (the example in the message aside).
      expect(r.body.replaceAll('07911 123456', '')).not.toContain(number);
    }
    expect(await eventsAfter(t, before)).toEqual([]);
  });

  it('refuses a number not read back to the caller, naming the confirmation', async () => {
    for (const readBack of [undefined, false]) {
      const r = await call({
        callbackNumber: '07911 123456',
        ...(readBack === undefined ? {} : { callbackNumberReadBack: readBack }),
      });
      expect(r.statusCode).toBe(400);
      expect((r.json() as { errors: { path: string; message: string }[] }).errors).toEqual([
        {
          path: 'body.caller.callbackNumberReadBack',
          message:
            'must be confirmed: read the number back to the caller and tick this once they agree it is right',
        },
      ]);
    }
  });

  it('stores the number in the national format with its read-back, in the same append; the case shows both', async () => {
    const before = await ledgerPosition(t);
    const r = await call({ callbackNumber: '+44 (0)7911-123-456', callbackNumberReadBack: true });
    expect(r.statusCode, r.body).toBe(201);
    const caseId = (r.json() as { caseId: string }).caseId;
    const events = (await eventsAfter(t, before)).filter((e) => !e.type.startsWith('audit.'));
    expect(events.map((e) => e.type)).toEqual([
      'case.opened',
      'case.callback_number_confirmed',
      'case.call_answered',
    ]);
    expect((events[0]!.payload.caller as { callbackNumber: string }).callbackNumber).toBe('07911 123456');
    expect(events[1]!.payload).toEqual({ caseId, callbackNumber: '07911 123456', method: 'read_back' });
    const detail = await adviser.request('GET', `/api/v1/cases/${caseId}`);
    expect((detail.json() as { caller: unknown }).caller).toEqual({
      name: 'Sam Caller',
      relationship: 'self',
      callbackNumber: '07911 123456',
      callbackNumberReadBack: true,
    });
  });

  it("takes a visitor's own mobile written with its country code, stored in the international format", async () => {
    const r = await call({ callbackNumber: '0033 6 12 34 56 78', callbackNumberReadBack: true });
    expect(r.statusCode, r.body).toBe(201);
    const detail = await adviser.request('GET', `/api/v1/cases/${(r.json() as { caseId: string }).caseId}`);
    expect((detail.json() as { caller: { callbackNumber: string } }).caller.callbackNumber).toBe(
      '+33 6 12 34 56 78',
    );
  });

  it('still reads a case stored before the check, as it was stored and not marked read back', async () => {
    const caseId = randomUUID();
    const tenant = t.providers[0]!.tenant;
    await t.node.ledger.append([
      {
        tenant,
        type: 'case.opened',
        actor: `user:${t.providers[0]!.users.health_adviser.userId}`,
        payload: {
          caseId,
          siteId: site,
          receivedAt: '2026-11-29T08:00:00.000Z',
          caller: { name: 'Old Caller', relationship: 'self', callbackNumber: '07700 900123' },
          location: 'At home',
          presentingComplaint: 'Stored before the check',
        },
      },
    ]);
    const detail = await adviser.request('GET', `/api/v1/cases/${caseId}`);
    expect(detail.statusCode, detail.body).toBe(200);
    expect((detail.json() as { caller: unknown }).caller).toEqual({
      name: 'Old Caller',
      relationship: 'self',
      callbackNumber: '07700 900123',
    });
  });
});
