import { ageInYears, describeAges, pathwayNotForAge } from '@holdfast/core/triage/eligibility';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { nhsNumberFor } from '../support/route-samples.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

describe('pathway age ranges (pure)', () => {
  it('counts whole years by the calendar, the birthday itself included', () => {
    expect(ageInYears('1950-03-01', '2026-02-28T23:59:00Z')).toBe(75);
    expect(ageInYears('1950-03-01', '2026-03-01T00:00:00Z')).toBe(76);
    expect(ageInYears('2021-12-04', '2026-12-03T12:00:00Z')).toBe(4);
    expect(ageInYears('2021-12-04', '2026-12-04T12:00:00Z')).toBe(5);
  });

  it('says who a pathway is for, and why it is not for a patient', () => {
    expect(describeAges({ below: 5 })).toBe('under 5');
    expect(describeAges({ min: 16 })).toBe('16 and over');
    expect(describeAges({ min: 5, below: 16 })).toBe('5 to 15');
    expect(describeAges(null)).toBeNull();
    expect(pathwayNotForAge({ below: 5 }, 4)).toBeNull();
    expect(pathwayNotForAge({ below: 5 }, 5)).toBe('this pathway is for patients aged under 5');
    expect(pathwayNotForAge({ min: 16 }, 15)).toBe('this pathway is for patients aged 16 and over');
    expect(pathwayNotForAge(null, 76)).toBeNull();
  });
});

/**
 * Starting triage on a pathway written for another age group is refused for an identified patient,
 * naming the field and why, and nothing is stored; a pathway that fits starts.
 */
describe.each(STORE_KINDS)('pathway age ranges through HTTP on %s', (kind) => {
  let t: TestApp;
  let adviser: Client;
  let site: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
  });
  afterAll(async () => t?.close());

  async function callFor(dateOfBirth: string, n: number): Promise<string> {
    const registered = await adviser.request('POST', '/api/v1/patients', {
      homeSiteId: site,
      record: {
        nhsNumber: nhsNumberFor(700 + n),
        givenName: 'Alex',
        familyName: 'Ageing',
        dateOfBirth,
        sex: 'unknown',
        specialNotes: [],
      },
    });
    expect(registered.statusCode, registered.body).toBe(201);
    const { patientId } = registered.json() as { patientId: string };
    const opened = await adviser.request('POST', '/api/v1/calls', {
      siteId: site,
      patientId,
      caller: {
        name: 'Sam Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Fever',
    });
    expect(opened.statusCode, opened.body).toBe(201);
    return (opened.json() as { caseId: string }).caseId;
  }

  it('a 76-year-old is not walked through the under-5 fever pathway; the adult one starts', async () => {
    const caseId = await callFor('1950-01-01', 1);
    const refused = await adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
      pathwayId: 'fever-child-under-5',
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({
      errors: [
        {
          path: 'body.pathwayId',
          message: 'is not offered for this patient: this pathway is for patients aged under 5',
        },
      ],
    });
    const c = await adviser.request('GET', `/api/v1/cases/${caseId}`);
    expect((c.json() as { status: string }).status).toBe('answered');
    const started = await adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
      pathwayId: 'fever-adult',
    });
    expect(started.statusCode, started.body).toBe(200);
  });

  it('a 3-year-old is not walked through the adult fever pathway; the under-5 one starts', async () => {
    const caseId = await callFor(`${new Date(t.clock.nowMs()).getUTCFullYear() - 3}-01-01`, 2);
    const refused = await adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
      pathwayId: 'fever-adult',
    });
    expect(refused.statusCode).toBe(400);
    expect(refused.body).toContain('this pathway is for patients aged 16 and over');
    const started = await adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
      pathwayId: 'fever-child-under-5',
    });
    expect(started.statusCode, started.body).toBe(200);
  });
});
