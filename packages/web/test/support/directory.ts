import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { addVirtualAuthenticator, staffContext } from './browser.ts';
import { enterPassword } from './flows.ts';
import { DEMO, freePort, spawnHoldfast, stopChild, type RunningHoldfast } from './server.ts';

/**
 * The directory and the services it sends to, for the referral and directory browser tests: the
 * provider admin (passkey only) signed in in a browser, calling the API with that session; the
 * demo region's postcodes; and a receiving service (`holdfast receiver --kind service`, a process
 * that is not ours) behind a gate that holds its answers until the test opens it.
 */

/** The provider admin signed in with a passkey; `call` uses the browser's session and CSRF token. */
export class AdminSession {
  private constructor(
    readonly context: BrowserContext,
    readonly page: Page,
  ) {}

  static async open(
    browser: Browser,
    server: RunningHoldfast,
    options: { bypassCSP?: boolean; viewport?: { width: number; height: number } } = {},
  ): Promise<AdminSession> {
    const context = await staffContext(browser, server.url, options);
    const page = await context.newPage();
    await addVirtualAuthenticator(page);
    await enterPassword(page, DEMO.admin, server.demoPassword);
    await page.getByRole('button', { name: 'Create a passkey' }).click();
    await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
    return new AdminSession(context, page);
  }

  async call(
    method: string,
    path: string,
    body?: unknown,
    contentType = 'application/json',
  ): Promise<{ status: number; body: string }> {
    return this.page.evaluate(
      async ({ method, path, body, contentType }) => {
        const session = (await (await fetch('/api/v1/auth/session')).json()) as { csrfToken: string };
        const res = await fetch(path, {
          method,
          headers: {
            'x-csrf-token': session.csrfToken,
            ...(body !== undefined ? { 'content-type': contentType } : {}),
          },
          ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
        });
        return { status: res.status, body: await res.text() };
      },
      { method, path, body, contentType },
    );
  }

  /** Like `call`, failing with the server's answer unless it is 2xx. */
  async must(method: string, path: string, body?: unknown, contentType?: string): Promise<string> {
    const answer = await this.call(method, path, body, contentType);
    if (answer.status < 200 || answer.status >= 300)
      throw new Error(`${method} ${path}: ${answer.status} ${answer.body.slice(0, 500)}`);
    return answer.body;
  }

  async close(): Promise<void> {
    await this.context.close();
  }
}

/**
 * Made-up places (ONS layout: pcds, lat, long), far from the demo's own sample directory (whose
 * services are then all too far to be offered). SP2 7QT is David Okonjo's home (fixtures.ts); the
 * services below are about 2, 6 and 200 km from it.
 */
export const POSTCODES_CSV = [
  'pcds,lat,long',
  'SP2 7QT,50.5000,-4.0000',
  'SP1 1AA,50.5100,-3.9800',
  'SP3 9ZZ,50.5500,-3.9500',
  'FA9 9FA,52.3000,-4.0000',
].join('\n');

const ALWAYS: Record<string, { opens: string; closes: string }[]> = {
  mon: [],
  tue: [],
  wed: [],
  thu: [],
  fri: [],
  sat: [],
  sun: [],
};

/** A service for the directory file, open 24 hours, taking `dispositions`. */
export function service(fields: {
  serviceId: string;
  name: string;
  type: string;
  postcode: string;
  latitude: number;
  longitude: number;
  dispositions: string[];
  referral: { kind: 'message'; endpointId: string } | { kind: 'phone'; phone: string } | { kind: 'walk_in' };
  booking?: { slotsEndpointId: string } | null;
  odsCode?: string;
}): Record<string, unknown> {
  return {
    serviceId: fields.serviceId,
    name: fields.name,
    odsCode: fields.odsCode ?? 'RXX01',
    type: fields.type,
    address: ['1 Hospital Road', 'Southport'],
    postcode: fields.postcode,
    latitude: fields.latitude,
    longitude: fields.longitude,
    phone: '0113 496 0000',
    openingTimes: { alwaysOpen: true, weekly: ALWAYS, bankHolidays: null, exceptions: [] },
    dispositions: fields.dispositions,
    symptomGroups: [],
    ageRange: { minYears: 0, maxYears: null },
    sexes: [],
    referral: fields.referral,
    booking: fields.booking ?? null,
    notClinicallyValidated: true,
  };
}

/**
 * `holdfast receiver --kind service`: an ED or UTC that is not ours, answering referrals and
 * bookings (REF-nnnnnn) and listing free half-hour slots.
 */
export class ServiceReceiver {
  url = '';
  output = '';
  private child: ChildProcess | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'holdfast-web-service-'));

  constructor(private readonly name: string) {}

  async start(): Promise<string> {
    const port = await freePort();
    const child = spawnHoldfast([
      'receiver',
      '--kind',
      'service',
      '--name',
      this.name,
      '--port',
      String(port),
      '--store',
      join(this.dir, 'received.ndjson'),
    ]);
    this.child = child;
    child.stdout!.on('data', (d: Buffer) => (this.output += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (this.output += d.toString()));
    this.url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the service receiver exited: ${this.output}`);
      try {
        if ((await fetch(`${this.url}/health`)).ok) return this.url;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`the service receiver did not start: ${this.output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The next new message is refused with this reason. */
  async refuseNext(reason: string): Promise<void> {
    const r = await fetch(`${this.url}/control/next-answer`, {
      method: 'POST',
      body: JSON.stringify({ code: 'fatal-error', reason }),
    });
    if (!r.ok) throw new Error(`the receiver refused the control: ${r.status}`);
  }

  async stop(): Promise<void> {
    if (this.child) await stopChild(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A gate in front of the receiver: GETs (slot searches) pass at once; a POST (a referral or a
 * booking) waits until the test opens the gate, so the screen can be seen before the service has
 * answered. Counts the POSTs that reached the receiver.
 */
export class Gate {
  port = 0;
  forwarded = 0;
  private open = false;
  private waiting: (() => void)[] = [];
  private server: Server | null = null;

  constructor(private readonly target: string) {}

  async start(): Promise<string> {
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const pass = () => {
          if (req.method === 'POST') this.forwarded++;
          const upstream = request(
            new URL(req.url ?? '/', this.target),
            { method: req.method, headers: { ...req.headers, host: new URL(this.target).host } },
            (answer) => {
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              answer.pipe(res);
            },
          );
          upstream.on('error', () => {
            res.writeHead(502);
            res.end();
          });
          upstream.end(Buffer.concat(chunks));
        };
        if (req.method !== 'POST' || this.open) pass();
        else this.waiting.push(pass);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return `http://127.0.0.1:${this.port}`;
  }

  /** Lets held and later POSTs through. */
  letThrough(): void {
    this.open = true;
    for (const pass of this.waiting.splice(0)) pass();
  }

  /** Holds POSTs again from now on. */
  hold(): void {
    this.open = false;
  }

  get held(): number {
    return this.waiting.length;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
