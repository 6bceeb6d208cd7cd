import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addLocalDays, caseReference, FixedClock, formatLocal } from '@holdfast/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { collectPackData } from '../../src/downtime/pack-data.ts';
import { DowntimePackService } from '../../src/downtime/service.ts';
import { listPacks, PeriodicPackWriter } from '../../src/downtime/writer.ts';
import type { RequestContext } from '../../src/http/context.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { STORE_KINDS } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { eventsAfter, ledgerPosition, nhsNumberFor } from '../support/route-samples.ts';
import { textWith } from './pdf-text.ts';

// Not a test of password hashing: cheap hashes (test/support/cheap-hashing.ts).
vi.mock('../../src/auth/passwords.ts', async () =>
  (await import('../support/cheap-hashing.ts')).cheapPasswordHashing(),
);

/**
 * The downtime pack (C18): the PDF served to staff holds their sites' open cases in deadline order
 * with what is needed to carry on on paper, is audited, is refused to roles without the permission,
 * and the periodic writer keeps the newest few whole files.
 */

const spaced = (n: string) => `${n.slice(0, 3)} ${n.slice(3, 6)} ${n.slice(6)}`;

describe.each(STORE_KINDS)('downtime pack on %s', (kind) => {
  let t: TestApp;
  const logLines: string[] = [];
  let adviser: Client;
  let clinician: Client;
  let auditor: Client;
  let siteA: string;
  const patients: { name: string; nhs: string; id: string }[] = [];
  const caseIds: Record<string, string> = {};
  let otherSiteName: string;

  beforeAll(async () => {
    t = await startTestApp(kind, { logLines });
    const provider = t.providers[0]!;
    siteA = provider.sites[0]!;
    adviser = new Client(t.app, t.clock);
    clinician = new Client(t.app, t.clock);
    auditor = new Client(t.app, t.clock);
    expect((await adviser.signIn(provider.users.health_adviser.username)).statusCode).toBe(200);
    expect((await clinician.signIn(provider.users.clinician.username)).statusCode).toBe(200);
    expect((await auditor.signIn(provider.users.auditor.username)).statusCode).toBe(200);
    const protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;

    const people = [
      { given: 'Ada', family: 'Lovelace', notes: [{ kind: 'dnacpr', text: 'DNACPR form at home' }] },
      { given: 'Brian', family: 'Okafor', notes: [] },
      {
        given: 'Carys',
        family: 'Jenkins',
        notes: [{ kind: 'safeguarding', text: 'Known to social care, speak to the named worker' }],
      },
    ];
    for (const [i, p] of people.entries()) {
      const nhs = nhsNumberFor(9100 + i * 10);
      const r = await adviser.request('POST', '/api/v1/patients', {
        homeSiteId: siteA,
        record: {
          givenName: p.given,
          familyName: p.family,
          dateOfBirth: '1950-03-0' + (i + 1),
          sex: 'unknown',
          nhsNumber: nhs,
          specialNotes: p.notes,
        },
      });
      expect(r.statusCode, r.body).toBe(201);
      patients.push({
        name: `${p.given} ${p.family}`,
        nhs,
        id: (r.json() as { patientId: string }).patientId,
      });
    }
    // Created in an order that is not deadline order: Ada's call came last, Brian's first.
    const received = ['2026-11-29T08:50:00Z', '2026-11-29T08:30:00Z', '2026-11-29T08:40:00Z'];
    for (const [i, p] of patients.entries()) {
      const { caseId } = await caseAt(adviser, protocols, siteA, 'speak_to_primary_care', {
        patientId: p.id,
        receivedAt: received[i],
      });
      caseIds[p.name] = caseId;
    }
    // A call still open and not triaged: in the pack as another open case, not a call-back.
    const open = await adviser.request('POST', '/api/v1/calls', {
      siteId: siteA,
      caller: {
        name: 'Dilys Untriaged',
        relationship: 'self',
        callbackNumber: '0113 496 0777',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Dizzy',
    });
    expect(open.statusCode, open.body).toBe(201);
    caseIds.open = (open.json() as { caseId: string }).caseId;
    // A case at the provider's other site: not the adviser's site, so not in their pack.
    otherSiteName = 'Edwin Elsewhere';
    const elsewhere = await t.cases.open(
      {
        tenant: provider.tenant,
        userId: provider.users.health_adviser.userId,
        username: 'x',
        roles: ['health_adviser'],
        siteIds: [provider.sites[1]!],
        sessionId: 'test',
        address: '127.0.0.1',
      },
      {
        siteId: provider.sites[1]!,
        answered: true,
        caller: {
          name: otherSiteName,
          relationship: 'self',
          callbackNumber: '0113 496 0999',
        },
        location: 'At home',
        presentingComplaint: 'Cough',
      },
    );
    caseIds.elsewhere = elsewhere;
  }, 120_000);

  afterAll(async () => t?.close());

  it('serves a PDF of the open cases of my sites, call-backs in deadline order, audited', async () => {
    const before = await ledgerPosition(t);
    const res = await adviser.request('GET', '/api/v1/downtime-pack.pdf');
    expect(res.statusCode, res.body.slice(0, 200)).toBe(200);
    expect(res.headers['content-type']).toBe('application/pdf');
    expect(res.headers['content-disposition']).toMatch(
      /^attachment; filename="downtime-pack-\d{8}T\d{9}Z\.pdf"$/,
    );
    expect(res.headers['cache-control']).toBe('no-store');
    const pdf = res.rawPayload;
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
    expect(pdf.subarray(-6).toString('latin1')).toContain('%%EOF');

    const [ada, brian, carys] = patients;
    const text = textWith(pdf, [spaced(ada!.nhs), spaced(brian!.nhs), spaced(carys!.nhs)]);
    // Deadline order: Brian (08:30 call), Carys (08:40), Ada (08:50); then the untriaged call.
    const at = (s: string) => text.indexOf(s);
    expect(at(spaced(brian!.nhs))).toBeLessThan(at(spaced(carys!.nhs)));
    expect(at(spaced(carys!.nhs))).toBeLessThan(at(spaced(ada!.nhs)));
    expect(at(brian!.name)).toBeLessThan(at(carys!.name));
    expect(at(carys!.name)).toBeLessThan(at(ada!.name));
    expect(at('Dilys Untriaged')).toBeGreaterThan(at(ada!.name));
    expect(text).toContain('0113 496 0777');
    expect(text).toContain('DNACPR: DNACPR form at home');
    // A health adviser is told a safeguarding note exists, not its text.
    expect(text).toContain('Safeguarding: a note exists');
    expect(text).not.toContain('named worker');
    expect(text).not.toContain(otherSiteName);
    const whole = textWith(pdf, ['Call record (paper)']);
    expect(whole).toContain('Triage record (paper)');
    expect(textWith(pdf, ['not clinically validated'])).toContain('not clinically validated');

    const audits = (await eventsAfter(t, before)).filter((e) => e.type === 'audit.downtime_pack');
    expect(audits).toHaveLength(1);
    expect(audits[0]!.payload.trigger).toBe('request');
    expect(new Set(audits[0]!.payload.caseIds as string[])).toEqual(
      new Set([caseIds[ada!.name], caseIds[brian!.name], caseIds[carys!.name], caseIds.open]),
    );
  });

  it("prints each case's reference and who holds a claimed case", async () => {
    const [ada, brian, carys] = patients;
    const claim = await clinician.request('POST', `/api/v1/cases/${caseIds[brian!.name]}/claim`);
    expect(claim.statusCode, claim.body).toBe(200);
    const res = await adviser.request('GET', '/api/v1/downtime-pack.pdf');
    expect(res.statusCode).toBe(200);
    const text = textWith(res.rawPayload, [spaced(brian!.nhs)]).replace(/\s+/g, ' ');
    for (const id of [caseIds[ada!.name]!, caseIds[brian!.name]!, caseIds[carys!.name]!, caseIds.open!])
      expect(text).toContain(caseReference(id));
    expect(caseReference(caseIds[brian!.name]!)).toMatch(/^[0-9A-F]{4}-[0-9A-F]{4}$/);
    // The holder's display name, on Brian's row (between his reference and Carys's).
    const held = text.indexOf('held by clinician of northshire');
    expect(held).toBeGreaterThan(text.indexOf(caseReference(caseIds[brian!.name]!)));
    expect(held).toBeLessThan(text.indexOf(caseReference(caseIds[carys!.name]!)));
    // Only the claimed case says it is held.
    expect(text.split('held by').length - 1).toBe(1);
  });

  it('lists calls in progress with advisers in their own section, with the adviser who took each', async () => {
    const provider = t.providers[0]!;
    const data = await collectPackData(t.node.store, {
      tenant: provider.tenant,
      siteIds: [siteA],
      roles: ['health_adviser'],
      generatedBy: 'test',
      nowMs: t.clock.nowMs(),
      contacts: [],
    });
    expect(data.withAdvisers.map((c) => [c.caseId, c.status, c.heldBy])).toEqual([
      [caseIds.open, 'answered', 'health_adviser of northshire'],
    ]);
    expect(data.otherOpen.map((c) => c.caseId)).not.toContain(caseIds.open);
    expect(data.callbacks.map((c) => c.caseId)).not.toContain(caseIds.open);

    const res = await adviser.request('GET', '/api/v1/downtime-pack.pdf');
    expect(res.statusCode).toBe(200);
    // Headings are drawn in the bold font, rows in the regular one.
    const headings = textWith(res.rawPayload, ['Other open cases']);
    const section = headings.indexOf('Calls in progress with health advisers');
    expect(section).toBeGreaterThan(headings.indexOf('Call-backs due'));
    expect(section).toBeLessThan(headings.indexOf('Other open cases'));
    const rows = textWith(res.rawPayload, ['Dilys Untriaged']).replace(/\s+/g, ' ');
    const ref = rows.indexOf(caseReference(caseIds.open!));
    const taker = rows.indexOf('with adviser health_adviser of northshire');
    expect(ref).toBeGreaterThan(-1);
    expect(taker).toBeGreaterThan(ref);
  });

  it('shows a clinician the safeguarding note text', async () => {
    const res = await clinician.request('GET', '/api/v1/downtime-pack.pdf');
    expect(res.statusCode).toBe(200);
    expect(textWith(res.rawPayload, ['Safeguarding:']).replace(/\n/g, ' ')).toContain('named worker');
  });

  it('refuses a role without the permission (403), and audits the refusal', async () => {
    const before = await ledgerPosition(t);
    const res = await auditor.request('GET', '/api/v1/downtime-pack.pdf');
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toMatch(/problem\+json/);
    const events = await eventsAfter(t, before);
    expect(events.map((e) => e.type)).toContain('audit.denied');
    expect(events.map((e) => e.type)).not.toContain('audit.downtime_pack');
  });

  it('puts no patient data in the logs', () => {
    const logs = logLines.join('\n');
    expect(logs).toContain('/api/v1/downtime-pack.pdf');
    for (const p of patients) {
      expect(logs).not.toContain(p.nhs);
      expect(logs).not.toContain(p.name.split(' ')[1]!);
    }
    expect(logs).not.toContain('Dilys');
  });

  it("lists each centre's appointments for the next hours, from the booking service, and audits their cases", async () => {
    const provider = t.providers[0]!;
    const admin: RequestContext = {
      tenant: provider.tenant,
      userId: provider.users.clinician.userId,
      username: 'x',
      roles: ['provider_admin'],
      siteIds: [...provider.sites],
      sessionId: 'test',
      address: '127.0.0.1',
    };
    await t.booking.defineCentre(admin, {
      centreId: 'pack-centre',
      siteId: siteA,
      name: 'Northtown Treatment Centre',
      address: '1 Pack Street, Northtown',
      postcode: 'NS1 1AA',
      lat: 54,
      lon: -1.5,
      phone: '01632 960222',
      rooms: [{ roomId: 'room-1', name: 'Room 1' }],
    });
    await t.booking.defineTemplate(admin, 'pack-centre', {
      templateId: 'urgent',
      name: 'Urgent',
      slotMinutes: 15,
      patientsPerSlot: 1,
      kinds: ['urgent_face_to_face', 'routine'],
    });
    const today = formatLocal(t.clock.nowMs()).slice(0, 10);
    const tomorrow = addLocalDays(today, 1);
    const plan = (date: string) =>
      t.booking.planSession(admin, 'pack-centre', {
        templateId: 'urgent',
        roomId: 'room-1',
        clinicianName: 'Dr Pack',
        date,
        startLocal: '12:00',
        endLocal: '13:00',
      });
    const [carys, ada] = [patients[2]!, patients[0]!];
    const book = async (caseId: string, slotId: string, extra: Record<string, string> = {}) => {
      const r = await clinician.request('POST', `/api/v1/cases/${caseId}/appointments`, { slotId, ...extra });
      expect(r.statusCode, r.body).toBe(201);
    };
    // Carys at noon today: in the pack. Ada tomorrow: past the pack's hours, so not in it.
    await book(caseIds[carys.name]!, (await plan(today)).slots[0]!.slotId);
    await book(caseIds[ada.name]!, (await plan(tomorrow)).slots[0]!.slotId, {
      outsideTimeframeReason: 'The patient asked for the next day',
    });

    const before = await ledgerPosition(t);
    const res = await adviser.request('GET', '/api/v1/downtime-pack.pdf');
    expect(res.statusCode).toBe(200);
    const reference = caseReference(caseIds[carys.name]!);
    const title = textWith(res.rawPayload, ['Appointments at Northtown']).replace(/\n/g, ' ');
    expect(title).toContain('Appointments at Northtown Treatment Centre (1 Pack Street, Northtown, NS1 1AA');
    const text = textWith(res.rawPayload, [`case ${reference}`]).replace(/\n/g, ' ');
    expect(text).toContain(`${today} 12:00 — ${carys.name}; Urgent face to face; booked; case ${reference}`);
    expect(text).not.toContain(`${tomorrow} 12:00`);
    const audits = (await eventsAfter(t, before)).filter((e) => e.type === 'audit.downtime_pack');
    expect(audits[0]!.payload.caseIds as string[]).toContain(caseIds[carys.name]);

    // The node's own pack (the timer's) carries the section too.
    const timer = await t.downtime.forNode(provider.tenant, { trigger: 'timer', actor: 'node:node-1' });
    expect(timer.data.appointments?.centres.map((c) => c.appointments.map((a) => a.patientName))).toEqual([
      [carys.name],
    ]);
  });

  it('writes a pack every N minutes to a folder, whole files only, keeping the newest few', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'holdfast-packs-'));
    try {
      const clock = new FixedClock(Date.UTC(2026, 10, 29, 10, 0, 0));
      const packs = new DowntimePackService(t.node.store, t.node.ledger, clock, {
        contacts: [{ name: 'On-call manager', phone: '01632 960000' }],
      });
      const tenant = t.providers[0]!.tenant;
      const writer = new PeriodicPackWriter({
        dir,
        everyMinutes: 15,
        keep: 2,
        clock,
        make: async () => (await packs.forNode(tenant, { trigger: 'timer', actor: 'node:node-1' })).pdf,
      });
      const written: string[] = [];
      for (let i = 0; i < 3; i++) {
        written.push(await writer.writeOnce());
        clock.advance(15 * 60_000);
      }
      expect(listPacks(dir)).toEqual([
        'downtime-pack-20261129T101500000Z.pdf',
        'downtime-pack-20261129T103000000Z.pdf',
      ]);
      // Nothing half-written is left behind; only the packs, readable by their owner alone.
      expect(readdirSync(dir).sort()).toEqual(listPacks(dir));
      expect(existsSync(written[0]!)).toBe(false);
      const newest = readFileSync(written[2]!);
      expect(newest.subarray(0, 5).toString('latin1')).toBe('%PDF-');
      expect(statSync(written[2]!).mode & 0o077).toBe(0);
      // The timer's pack is a clinician's view of every site of the provider, with the contacts.
      const text = textWith(newest, [spaced(patients[0]!.nhs), otherSiteName]);
      expect(text.replace(/\n/g, ' ')).toContain('named worker');
      expect(textWith(newest, ['On-call manager'])).toContain('01632 960000');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
