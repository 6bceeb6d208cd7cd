import { randomUUID } from 'node:crypto';
import type { Role } from '@holdfast/core';
import { expect } from 'vitest';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import type { StoreKind } from '../support/databases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';

export const HOUR = 3_600_000;
/** Made-up postcodes (the NS area does not exist): the patient's home and two cars' bases. */
export const HOME = { postcode: 'NS1 1AA', lat: 54.0, lon: -1.5 };

export interface VisitJson {
  visitId: string;
  caseId: string;
  status: string;
  timing: string;
  vehicleId: string | null;
  address: string | null;
  accessInstructions?: string | null;
  accessInstructionsWithheld: boolean;
  conflicts: string[];
  suggestions?: { vehicleId: string; etaMs: number; meetsDeadline: boolean; reason: string }[];
  deadlineMs: number;
}

export interface VehicleJson {
  vehicleId: string;
  callSign: string;
  status: string;
  available: boolean;
  visitId: string | null;
  lat: number | null;
  positionAtMs: number | null;
}

/** A provider with clients of the dispatch roles, a patient with an address the postcode table knows. */
export class DispatchWorld {
  t!: TestApp;
  site = '';
  clients = {} as Record<Role, Client>;
  protocols!: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];

  async start(kind: StoreKind): Promise<void> {
    this.t = await startTestApp(kind, { providers: ['northshire'] });
    this.site = this.t.providers[0]!.sites[0]!;
    this.protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    await this.t.directory.postcodes.import(`pcds,lat,long\n${HOME.postcode},${HOME.lat},${HOME.lon}\n`);
    for (const role of [
      'health_adviser',
      'clinician',
      'prescriber',
      'dispatcher',
      'driver',
      'shift_manager',
    ] as const) {
      this.clients[role] = new Client(this.t.app, this.t.clock);
      expect((await this.clients[role].signIn(`${role}@northshire`)).statusCode).toBe(200);
    }
  }

  async stop(): Promise<void> {
    await this.t?.close();
  }

  user(role: Role) {
    return this.t.providers[0]!.users[role];
  }

  async json<T>(role: Role, method: string, url: string, body?: unknown, status?: number): Promise<T> {
    const r = await this.clients[role].request(method, url, body);
    if (status !== undefined) expect(r.statusCode, `${method} ${url}: ${r.body}`).toBe(status);
    else expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return r.json() as T;
  }

  /** A car registered by the shift manager at the site, based at (lat, lon). */
  async car(callSign: string, lat: number, lon: number): Promise<string> {
    const r = await this.json<{ vehicle: VehicleJson }>('shift_manager', 'POST', '/api/v1/vehicles', {
      callSign,
      registration: 'NS26 ' + callSign.slice(-3).toUpperCase().padStart(3, 'X'),
      baseSiteId: this.site,
      baseLat: lat,
      baseLon: lon,
    });
    return r.vehicle.vehicleId;
  }

  /** A shift now (an hour ago to seven hours on) for the role's user at the location. */
  async shift(role: Role, location: { kind: string; id: string | null }): Promise<string> {
    const now = this.t.clock.nowMs();
    const r = await this.json<{ shift: { shiftId: string } }>(
      'shift_manager',
      'POST',
      '/api/v1/rota/shifts',
      {
        userId: this.user(role).userId,
        role,
        location,
        startMs: now - HOUR,
        endMs: now + 7 * HOUR,
      },
    );
    return r.shift.shiftId;
  }

  /** A patient of the site with an address, a postcode and access instructions (written by a clinician). */
  async patient(): Promise<string> {
    const r = await this.json<{ patientId: string }>('clinician', 'POST', '/api/v1/patients', {
      homeSiteId: this.site,
      record: {
        givenName: `Vera${randomUUID().slice(0, 4)}`,
        familyName: 'Visit',
        dateOfBirth: '1940-02-03',
        sex: 'female',
        specialNotes: [],
        address: '3 Sample Row, Northshire',
        postcode: HOME.postcode,
        accessInstructions: 'Key safe by the back door, code 4321 (sample)',
      },
    });
    return r.patientId;
  }

  /** A case of the patient in the clinician's consultation. */
  async consultation(patientId: string): Promise<string> {
    const { caseId } = await caseAt(
      this.clients.health_adviser,
      this.protocols,
      this.site,
      'speak_to_primary_care',
      {
        patientId,
      },
    );
    expect((await this.clients.clinician.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(
      200,
    );
    expect(
      (await this.clients.clinician.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode,
    ).toBe(204);
    return caseId;
  }

  /** The clinician's outcome "home visit within `hours`": the visit it created. */
  async homeVisit(caseId: string, hours = 4): Promise<VisitJson> {
    await this.json('clinician', 'POST', `/api/v1/cases/${caseId}/outcome`, {
      outcome: 'home_visit',
      homeVisit: {
        withinHours: hours,
        reason: 'Frail, cannot get to the centre (sample, not clinically validated)',
      },
    });
    const { visits } = await this.json<{ visits: VisitJson[] }>(
      'clinician',
      'GET',
      `/api/v1/visits?caseId=${caseId}`,
    );
    expect(visits).toHaveLength(1);
    return visits[0]!;
  }

  async eventsOf(types: string[]) {
    const rows = await this.t.node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'seq', 'payload'])
      .where('type', 'in', types)
      .orderBy('pos')
      .execute();
    return rows.map((r) => ({
      type: r.type,
      seq: Number(r.seq),
      payload: JSON.parse(r.payload) as Record<string, unknown>,
    }));
  }
}
