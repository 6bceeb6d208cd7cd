import type { TriageProtocol } from '@holdfast/core/triage/pack';
import type { WalkResult } from '@holdfast/core/triage/engine';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  computeIucAdc,
  iucAdcItems,
  parseReportingPeriod,
  type CaseTally,
} from '../../src/reports/iuc-adc.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { answersTo } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * IUC ADC E items by what the patient was sent to (C13): E04 counts type 1/2 emergency departments
 * and not urgent treatment centres, E12 counts dental, and E02 counts an ambulance a clinician added
 * after assessing the case (the ambulance is then the case's final disposition).
 */
describe('IUC ADC disposition items from the Dx table', () => {
  const one = (over: Partial<CaseTally>): CaseTally => ({
    dispositionKind: null,
    dxCode: null,
    status: 'referral_pending',
    outcome: null,
    linked: 0,
    calls: 1,
    answered: 1,
    abandoned: 0,
    triaged: 1,
    assessed: 0,
    ...over,
  });

  it('reads a dental case recorded as "other" by its Dx code, and an ed_utc code without a service as no ED', () => {
    const items = Object.fromEntries(
      iucAdcItems([
        one({ dispositionKind: 'other', dxCode: 'Dx22' }), // dental, recorded before dental was kept
        one({ dispositionKind: 'other', dxCode: 'Dx52' }), // police: stays other
        one({ dispositionKind: 'ed_utc', dxCode: 'SAMPLE-UTC-4H' }),
        one({ dispositionKind: 'ed_utc', dxCode: 'LOCAL-ED' }), // not in the table: not counted as ED
        one({ dispositionKind: 'ed_utc', dxCode: 'SAMPLE-ED-4H' }),
        one({ dispositionKind: 'self_care', status: 'in_triage', outcome: 'upgrade_to_ambulance' }), // re-triaging
      ]).map((i) => [i.item, i.value]),
    );
    expect(items).toMatchObject({ E01: 5, E02: 0, E04: 1, E12: 1 });
  });
});

describe.each(STORE_KINDS)('IUC ADC dispositions on %s', (kind) => {
  let t: TestApp;
  let protocols: Map<string, TriageProtocol>;
  let site: string;
  let adviser: Client;
  let clinician: Client;

  const ok = async (c: Client, method: string, url: string, body?: unknown) => {
    const r = await c.request(method, url, body);
    expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return r;
  };

  /** Opens a call in June 2026 and triages it to the disposition with this Dx code, confirmed. */
  const caseAtDx = async (dxCode: string, receivedAt: string): Promise<string> => {
    const opened = await ok(adviser, 'POST', '/api/v1/calls', {
      siteId: site,
      receivedAt,
      caller: {
        name: 'Sam Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Unwell',
    });
    const caseId = (opened.json() as { caseId: string }).caseId;
    for (const [pathwayId, protocol] of protocols) {
      const answers = answersTo(protocol, (d) => d.dxCode === dxCode);
      if (!answers) continue;
      await ok(adviser, 'POST', `/api/v1/cases/${caseId}/triage`, { pathwayId });
      let last: WalkResult | null = null;
      for (const a of answers)
        last = (await ok(adviser, 'POST', `/api/v1/cases/${caseId}/triage/answers`, a)).json() as WalkResult;
      expect(last?.status).toBe('disposition');
      await ok(adviser, 'POST', `/api/v1/cases/${caseId}/disposition/confirm`, { dxCode });
      return caseId;
    }
    throw new Error(`no shipped pathway reaches ${dxCode}`);
  };

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire'] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    adviser = new Client(t.app, t.clock);
    expect((await adviser.signIn('health_adviser@northshire')).statusCode).toBe(200);
    clinician = new Client(t.app, t.clock);
    expect((await clinician.signIn('clinician@northshire')).statusCode).toBe(200);

    await caseAtDx('SAMPLE-UTC-4H', '2026-06-10T10:00:00Z'); // urgent treatment centre
    await caseAtDx('SAMPLE-ED-1H', '2026-06-10T11:00:00Z'); // emergency department
    await caseAtDx('SAMPLE-DENTAL-4H', '2026-06-10T12:00:00Z'); // dental
    // Speak to primary care, then the clinician assesses and sends an ambulance.
    const upgraded = await caseAtDx('Dx11', '2026-06-10T13:00:00Z');
    await ok(clinician, 'POST', `/api/v1/cases/${upgraded}/claim`);
    await ok(clinician, 'POST', `/api/v1/cases/${upgraded}/consultation`);
    await ok(clinician, 'POST', `/api/v1/cases/${upgraded}/outcome`, {
      outcome: 'upgrade_to_ambulance',
      ambulanceCategory: 3,
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  it('counts E04 without urgent treatment centres, E12 dental, and E02 with a clinician’s upgrade', async () => {
    const june = await computeIucAdc(t.node.store, 'northshire', parseReportingPeriod('2026-06'));
    const items = Object.fromEntries(june.items.map((i) => [i.item, i.value]));
    expect(items).toMatchObject({
      A01: 4,
      C01: 4,
      D01: 1,
      E01: 4, // every final disposition, the UTC one included
      E02: 1, // the clinician's ambulance
      E04: 1, // the emergency department only
      E08: 0,
      E11: 0, // the upgraded case is no longer a speak-to-primary-care disposition
      E12: 1, // dental
      E16: 0,
    });
    expect(june.items.find((i) => i.item === 'E12')?.label).toBe('Contact or speak to dental');
  });
});
