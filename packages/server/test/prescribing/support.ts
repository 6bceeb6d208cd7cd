import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import { DeliveryWorker } from '../../src/messaging/delivery.ts';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../src/triage/packs.ts';
import { caseAt } from '../support/cases.ts';
import { Client, startTestApp, type TestApp } from '../support/http.ts';
import { ServiceReceiverProcess } from '../support/service-receiver.ts';
import type { StoreKind } from '../support/databases.ts';

/** The bearer token the pharmacy's system uses to post to us (its "dispensed" messages). */
export const PHARMACY_TOKEN = 'community-pharmacy-north-token-0123456789';
export const PHARMACY_ODS = 'FA123';
/** A pharmacy whose endpoint nothing listens at. */
export const GONE_ODS = 'FA999';
/** A pharmacy with no endpoint at all (the paper route). */
export const PAPER_ODS = 'FA777';

/** Codes of the sample formulary (formularies/sample/). */
export const AMOXICILLIN = '39001110001';
export const PARACETAMOL = '39018110004';
export const IBUPROFEN = '39020110006';
export const MORPHINE = '39025110004';
export const CLARITHROMYCIN = '39005110005';

export const draftOf = (medicineCode: string, over: Record<string, unknown> = {}) => ({
  medicineCode,
  doseMg: 500,
  frequencyPerDay: 3,
  durationDays: 5,
  quantity: 15,
  quantityWords: null,
  directions: 'One capsule three times a day',
  ...over,
});

/**
 * A provider with a community pharmacy that is `holdfast receiver --kind pharmacy` as its own
 * process over real HTTP (it may post "dispensed" back to our $process-message), a pharmacy nobody
 * answers for, and clients of every role.
 */
export class PrescribingWorld {
  t!: TestApp;
  rx = new ServiceReceiverProcess('North Community Pharmacy', ['--kind', 'pharmacy']);
  worker!: DeliveryWorker;
  inboundUrl = '';
  site = '';
  protocols!: Awaited<ReturnType<typeof requireProtocolPack>>['protocols'];
  clients = {} as Record<'adviser' | 'clinician' | 'prescriber' | 'receptionist', Client>;

  async start(kind: StoreKind): Promise<void> {
    await this.rx.start();
    this.t = await startTestApp(kind, {
      providers: ['northshire'],
      inboundCredentials: (providers) => [
        {
          tenant: providers[0]!.tenant,
          endpointId: 'pharmacy-north',
          siteId: providers[0]!.sites[0]!,
          tokenSha256: createHash('sha256').update(PHARMACY_TOKEN).digest('hex'),
        },
      ],
    });
    await this.t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = this.t.app.server.address() as { port: number };
    this.inboundUrl = `http://127.0.0.1:${address.port}/fhir/R4/$process-message`;
    this.protocols = (await requireProtocolPack(SAMPLE_PACK_DIR)).protocols;
    this.site = this.t.providers[0]!.sites[0]!;
    for (const [name, username] of [
      ['adviser', 'health_adviser@northshire'],
      ['clinician', 'clinician@northshire'],
      ['prescriber', 'prescriber@northshire'],
      ['receptionist', 'receptionist@northshire'],
    ] as const) {
      this.clients[name] = new Client(this.t.app, this.t.clock);
      expect((await this.clients[name].signIn(username)).statusCode).toBe(200);
    }
    for (const [endpointId, url, odsCode] of [
      ['pharmacy-north', `${this.rx.url}/messages`, PHARMACY_ODS],
      ['pharmacy-gone', 'http://127.0.0.1:9/messages', GONE_ODS],
    ] as const)
      await this.t.messaging.setEndpoint('northshire', 'user:admin', {
        endpointId,
        name: endpointId === 'pharmacy-north' ? 'North Community Pharmacy' : 'Closed Pharmacy',
        kinds: ['prescription'],
        odsCode,
        transport: { type: 'http', url, clientCertificate: null },
        phone: null,
        acceptWithinSeconds: 600,
      });
    this.worker = new DeliveryWorker(
      { store: this.t.node.store, ledger: this.t.node.ledger, clock: this.t.clock, tenant: 'northshire' },
      { http: new HttpTransport({ timeoutMs: 3_000 }) },
    );
  }

  async stop(): Promise<void> {
    await this.worker?.stop();
    await this.t?.close();
    await this.rx.stop();
  }

  /** A patient of the site (born 1980), nominating the pharmacy with `odsCode`. */
  async patient(
    givenName: string,
    odsCode = PHARMACY_ODS,
    extra: Record<string, unknown> = {},
  ): Promise<string> {
    const r = await this.clients.adviser.request('POST', '/api/v1/patients', {
      homeSiteId: this.site,
      record: {
        givenName,
        familyName: 'Rxtest',
        dateOfBirth: '1980-03-04',
        sex: 'female',
        specialNotes: [],
        nominatedPharmacy: { odsCode, name: `Pharmacy ${odsCode}` },
        ...extra,
      },
    });
    expect(r.statusCode, r.body).toBe(201);
    return (r.json() as { patientId: string }).patientId;
  }

  /** A case of the patient in the prescriber's consultation. */
  async consultation(patientId: string, who: Client = this.clients.prescriber): Promise<string> {
    const { caseId } = await caseAt(
      this.clients.adviser,
      this.protocols,
      this.site,
      'speak_to_primary_care',
      {
        patientId,
      },
    );
    expect((await who.request('POST', `/api/v1/cases/${caseId}/claim`)).statusCode).toBe(200);
    expect((await who.request('POST', `/api/v1/cases/${caseId}/consultation`)).statusCode).toBe(204);
    return caseId;
  }

  async json<T>(client: Client, method: string, url: string, body?: unknown): Promise<T> {
    const r = await client.request(method, url, body);
    expect(r.statusCode, `${method} ${url}: ${r.body}`).toBeLessThan(300);
    return r.json() as T;
  }

  async eventCount(types: string[]): Promise<number> {
    const rows = await this.t.node.store.db
      .selectFrom('ledger_events')
      .select('type')
      .where('type', 'in', types)
      .execute();
    return rows.length;
  }

  async lastEvents(types: string[], n: number) {
    const rows = await this.t.node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'seq', 'payload'])
      .where('type', 'in', types)
      .orderBy('pos', 'desc')
      .limit(n)
      .execute();
    return rows.map((r) => ({
      type: r.type,
      seq: Number(r.seq),
      payload: JSON.parse(r.payload) as Record<string, unknown>,
    }));
  }
}

export interface Prescription {
  prescriptionId: string;
  shortFormId: string;
  state: string;
  stateText: string;
  messageId: string | null;
  route: string;
  canPrint: boolean;
  cancelled: { confirmed: boolean } | null;
  medicine: { code: string; name: string };
  checks: { check: string; outcome: string }[];
}
