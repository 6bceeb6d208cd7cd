import { expect } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { answersTo } from '../support/cases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import type { StoreKind } from '../support/databases.ts';

/** A disposition of the sample pack that sends the patient to an urgent treatment centre within 4 hours. */
export const UTC_DX = 'SAMPLE-UTC-4H';

export interface AppointmentJson {
  bookingId: string;
  caseId: string;
  slotId: string | null;
  centreName: string;
  address: string;
  postcode: string;
  startLocal: string;
  startMs: number;
  state: string;
  walkIn: boolean;
  outsideTimeframeReason: string | null;
  cancelReason: string | null;
}

export interface SlotJson {
  slotId: string;
  startMs: number;
  startLocal: string;
  capacity: number;
  bookings: number;
  free: number;
  ownerNodeId: string;
  bookableHere: boolean;
  blocked: boolean;
}

type Roles = 'adviser' | 'adviser2' | 'clinician' | 'receptionist' | 'manager';

/**
 * A provider on one node (the test app) with clients of each role the module needs, and helpers to
 * make a centre, a template, sessions and cases at a bookable disposition.
 */
export class BookingWorld {
  t!: TestApp;
  site = '';
  protocols!: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  clients = {} as Record<Roles, Client>;

  async start(kind: StoreKind): Promise<void> {
    this.t = await startTestApp(kind, { providers: ['northshire'] });
    this.protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    this.site = this.t.providers[0]!.sites[0]!;
    // A second health adviser, for two advisers racing for one place.
    await this.t.accounts.create(
      'northshire',
      {
        username: 'adviser2@northshire',
        displayName: 'Second Adviser',
        roles: ['health_adviser'],
        siteIds: [this.site],
        password: 'correct horse battery staple',
      },
      'system:test',
    );
    for (const [name, username] of [
      ['adviser', 'health_adviser@northshire'],
      ['adviser2', 'adviser2@northshire'],
      ['clinician', 'clinician@northshire'],
      ['receptionist', 'receptionist@northshire'],
      ['manager', 'shift_manager@northshire'],
    ] as const) {
      this.clients[name] = new Client(this.t.app, this.t.clock);
      expect((await this.clients[name].signIn(username)).statusCode).toBe(200);
    }
  }

  async stop(): Promise<void> {
    await this.t?.close();
  }

  get nodeId(): string {
    return this.t.node.ledger.node;
  }

  async json<T>(client: Client, method: string, url: string, body?: unknown, status?: number): Promise<T> {
    const r = await client.request(method, url, body);
    if (status !== undefined) expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(status);
    else expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return r.json() as T;
  }

  /** A centre with one room per `rooms`, a template and (optionally) a home node. */
  async centre(
    centreId: string,
    options: {
      rooms?: number;
      patientsPerSlot?: number;
      slotMinutes?: number;
      homeNodeId?: string;
      lat?: number;
      lon?: number;
    } = {},
  ): Promise<void> {
    const rooms = Array.from({ length: options.rooms ?? 1 }, (_, i) => ({
      roomId: `room-${i + 1}`,
      name: `Room ${i + 1}`,
    }));
    await this.json(this.clients.manager, 'POST', '/api/v1/centres', {
      centreId,
      siteId: this.site,
      name: `Centre ${centreId}`,
      address: '1 High Street, Northtown',
      postcode: 'NS1 1AA',
      lat: options.lat ?? 54,
      lon: options.lon ?? -1.5,
      phone: '01632 960111',
      rooms,
      ...(options.homeNodeId
        ? { homeNodeId: options.homeNodeId, homeNodeName: `Node ${options.homeNodeId}` }
        : {}),
    });
    await this.json(this.clients.manager, 'POST', `/api/v1/centres/${centreId}/templates`, {
      templateId: 'urgent',
      name: 'Urgent face to face',
      slotMinutes: options.slotMinutes ?? 15,
      patientsPerSlot: options.patientsPerSlot ?? 1,
      kinds: ['urgent_face_to_face', 'routine'],
    });
  }

  async session(
    centreId: string,
    date: string,
    startLocal: string,
    endLocal: string,
    roomId = 'room-1',
  ): Promise<SlotJson[]> {
    const r = await this.json<{ slots: SlotJson[] }>(
      this.clients.manager,
      'POST',
      `/api/v1/centres/${centreId}/sessions`,
      { templateId: 'urgent', roomId, clinicianName: 'Dr Locum', date, startLocal, endLocal },
      201,
    );
    return r.slots;
  }

  /** A case triaged by the adviser to the urgent-treatment-centre disposition and confirmed. */
  async utcCase(adviser: Client = this.clients.adviser): Promise<string> {
    const opened = await adviser.request('POST', '/api/v1/calls', {
      siteId: this.site,
      caller: {
        name: 'Pat Booker',
        relationship: 'self',
        callbackNumber: '0113 496 0123',
        callbackNumberReadBack: true,
      },
      location: 'At home',
      presentingComplaint: 'Cut hand',
    });
    expect(opened.statusCode, opened.body).toBe(201);
    const caseId = (opened.json() as { caseId: string }).caseId;
    for (const [pathwayId, protocol] of this.protocols) {
      if (protocol.content.ageYears !== null) continue;
      const answers = answersTo(protocol, (d) => d.dxCode === UTC_DX);
      if (!answers) continue;
      await this.json(adviser, 'POST', `/api/v1/cases/${caseId}/triage`, { pathwayId });
      for (const a of answers) await this.json(adviser, 'POST', `/api/v1/cases/${caseId}/triage/answers`, a);
      await this.json(adviser, 'POST', `/api/v1/cases/${caseId}/disposition/confirm`, { dxCode: UTC_DX });
      return caseId;
    }
    throw new Error(`no shipped pathway reaches ${UTC_DX}`);
  }

  /** Lets `minutes` pass on the test clock, every client staying signed in (sessions idle out at 30). */
  async wait(minutes: number): Promise<void> {
    for (let left = minutes; left > 0; left -= 20) {
      this.t.clock.advance(Math.min(20, left) * 60_000);
      for (const c of Object.values(this.clients)) await this.json(c, 'GET', '/api/v1/centres');
    }
  }

  async book(client: Client, caseId: string, slotId: string, extra: Record<string, unknown> = {}) {
    return client.request('POST', `/api/v1/cases/${caseId}/appointments`, { slotId, ...extra });
  }
}
