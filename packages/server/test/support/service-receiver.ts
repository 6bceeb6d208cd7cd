import type { DirectoryServiceDefinition } from '@holdfast/core';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { holdfastArgs } from './cli-entry.ts';
import { freePort } from './postgres.ts';

/**
 * `holdfast receiver --kind service` as its own process (an ED or UTC that is not ours): what the
 * referral and booking tests send to over real HTTP.
 */
export class ServiceReceiverProcess {
  url = '';
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'holdfast-service-receiver-'));
  output = '';

  constructor(
    private readonly name: string,
    private readonly extra: string[] = [],
  ) {}

  async start(): Promise<string> {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      holdfastArgs(
        'receiver',
        '--kind',
        'service',
        '--name',
        this.name,
        '--port',
        String(port),
        '--store',
        join(this.dir, 'received.ndjson'),
        ...this.extra,
      ),
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
    );
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`receiver exited: ${this.output}`);
      try {
        if ((await fetch(`${this.url}/health`)).ok) return this.url;
      } catch {
        // not yet listening
      }
      if (Date.now() > deadline) throw new Error(`receiver did not start: ${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The next new message is refused with this reason. */
  async refuseNext(reason: string): Promise<void> {
    const r = await fetch(`${this.url}/control/next-answer`, {
      method: 'POST',
      body: JSON.stringify({ code: 'fatal-error', reason }),
    });
    if (!r.ok) throw new Error(`control refused: ${r.status}`);
  }

  /** Tells the sender at `url` (its $process-message) that the referral's patient did not attend. */
  async didNotAttend(messageId: string, url: string, token: string): Promise<{ status: number }> {
    const r = await fetch(`${this.url}/control/did-not-attend`, {
      method: 'POST',
      body: JSON.stringify({ messageId, url, token }),
    });
    if (!r.ok) throw new Error(`control refused: ${r.status} ${await r.text()}`);
    return (await r.json()) as { status: number };
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Directory service ids (UUIDs, as every id of ours) of the test region's services. */
export const ED_NORTH = '0e0d0000-0000-4000-8000-000000000001';
export const UTC_RIVER = '0e0d0000-0000-4000-8000-000000000002';
export const UTC_WALK = '0e0d0000-0000-4000-8000-000000000003';
export const ED_GONE = '0e0d0000-0000-4000-8000-000000000009';

/** The sample pack's ED/UTC dispositions: every test service accepts them. */
const ED_UTC_CODES = ['SAMPLE-ED-1H', 'SAMPLE-ED-4H', 'SAMPLE-UTC-4H'];

/** A directory service of the test region, open all day, pointing at the receiver processes. */
export function testService(
  fields: Pick<
    DirectoryServiceDefinition,
    'serviceId' | 'name' | 'odsCode' | 'type' | 'phone' | 'referral' | 'booking'
  > & {
    latitude: number;
  },
): DirectoryServiceDefinition {
  return {
    address: ['1 Hospital Road', 'Northtown'],
    postcode: 'NT1 1AA',
    longitude: -1.55,
    openingTimes: {
      alwaysOpen: true,
      weekly: { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] },
      bankHolidays: null,
      exceptions: [],
    },
    dispositions: ED_UTC_CODES,
    symptomGroups: [],
    ageRange: { minYears: 0, maxYears: null },
    sexes: [],
    notClinicallyValidated: true,
    ...fields,
  };
}

/** Services as the provider's directory holds them, nearest first (the search ranks by distance). */
export const SERVICES: DirectoryServiceDefinition[] = [
  testService({
    serviceId: ED_NORTH,
    name: 'Northtown Emergency Department',
    odsCode: 'RXN01',
    type: 'emergency_department',
    phone: '0300 000 1001',
    referral: { kind: 'message', endpointId: 'ed-north' },
    booking: { slotsEndpointId: 'ed-north-slots' },
    latitude: 53.8,
  }),
  testService({
    serviceId: UTC_RIVER,
    name: 'Riverside Urgent Treatment Centre',
    odsCode: 'RXN02',
    type: 'urgent_treatment_centre',
    phone: '0300 000 1002',
    referral: { kind: 'phone', phone: '0300 000 1002' },
    booking: null,
    latitude: 53.81,
  }),
  testService({
    serviceId: UTC_WALK,
    name: 'Market Street Walk-in Centre',
    odsCode: 'RXN03',
    type: 'urgent_treatment_centre',
    phone: null,
    referral: { kind: 'walk_in' },
    booking: null,
    latitude: 53.82,
  }),
  testService({
    serviceId: ED_GONE,
    name: 'Closed Hospital Emergency Department',
    odsCode: 'RXN09',
    type: 'emergency_department',
    phone: null,
    referral: { kind: 'message', endpointId: 'ed-gone' },
    booking: { slotsEndpointId: 'ed-gone' },
    latitude: 53.9,
  }),
];
