import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * Delivery over HTTP(S): the message Bundle is POSTed as application/fhir+json, with its id as the
 * Idempotency-Key (and as MessageHeader.id inside the Bundle), so a receiver drops repeats. What the
 * receiver answered is turned into the outbox's words:
 *
 * - 2xx with a FHIR response message (MessageHeader.response.code): `ok` is accepted (with the
 *   receiver's reference if it gave one), `fatal-error` is rejected with its reason, `transient-error`
 *   is a failed attempt to retry;
 * - 2xx without one: delivered; the business answer comes later;
 * - 408, 425, 429, 5xx, or no answer at all: a failed attempt, retried with backoff;
 * - any other 4xx: rejected (the receiver will never take this message as it is).
 */
export type DeliveryOutcome =
  | { kind: 'accepted'; acknowledgement: string; reference: string | null }
  | { kind: 'rejected'; acknowledgement: string | null; reason: string }
  | { kind: 'delivered'; acknowledgement: string }
  /**
   * Handed over, no acknowledgement yet (a mailbox file): it comes later by another way, and the
   * message is not placed again before `awaitUntilMs` (transport-mailbox.ts).
   */
  | { kind: 'sent'; note: string; awaitUntilMs: number }
  | { kind: 'retry'; problem: string };

/** Client certificate files for one name, configured on each node (never in the ledger). */
export interface ClientCertificateFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
}

export interface HttpTransportOptions {
  timeoutMs?: number;
  clientCertificates?: Readonly<Record<string, ClientCertificateFiles>>;
}

const MAX_ANSWER_BYTES = 1 << 20;

export class HttpTransport {
  private readonly timeoutMs: number;

  constructor(private readonly options: HttpTransportOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  async deliver(
    target: { url: string; clientCertificate: string | null },
    messageId: string,
    body: string,
  ): Promise<DeliveryOutcome> {
    let answer: { status: number; body: string };
    try {
      answer = await this.post(target, messageId, body);
    } catch (error) {
      return { kind: 'retry', problem: describeNetworkError(error) };
    }
    return classifyAnswer(answer.status, answer.body, messageId);
  }

  private post(
    target: { url: string; clientCertificate: string | null },
    messageId: string,
    body: string,
  ): Promise<{ status: number; body: string }> {
    const url = new URL(target.url);
    const tls = target.clientCertificate
      ? this.options.clientCertificates?.[target.clientCertificate]
      : undefined;
    if (target.clientCertificate && !tls)
      return Promise.reject(
        new Error(`client certificate "${target.clientCertificate}" is not configured on this node`),
      );
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          headers: {
            'content-type': 'application/fhir+json',
            accept: 'application/fhir+json',
            'idempotency-key': messageId,
            'content-length': Buffer.byteLength(body),
          },
          timeout: this.timeoutMs,
          ...(tls
            ? {
                cert: readFileSync(tls.certFile),
                key: readFileSync(tls.keyFile),
                ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
              }
            : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size <= MAX_ANSWER_BYTES) chunks.push(chunk);
          });
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}

function describeNetworkError(error: unknown): string {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  // Only the kind of failure: a message or URL could carry something it should not.
  return (code ? `${code}: ` : '') + message.slice(0, 200);
}

interface ResponseHeader {
  resourceType: 'MessageHeader';
  response?: { identifier?: string; code?: string; details?: { reference?: string } };
}

/** Reads a receiver's HTTP answer as an outbox outcome (see the class comment). */
export function classifyAnswer(status: number, text: string, messageId: string): DeliveryOutcome {
  const ack = `HTTP ${status}`;
  if (status === 408 || status === 425 || status === 429 || status >= 500 || status === 0)
    return {
      kind: 'retry',
      problem: `${ack}${reasonFrom(parseJson(text)) ? `: ${reasonFrom(parseJson(text))}` : ''}`,
    };
  const json = parseJson(text);
  if (status < 200 || status >= 300)
    return { kind: 'rejected', acknowledgement: ack, reason: `${ack}: ${reasonFrom(json) ?? 'refused'}` };
  return classifyResponse(json, messageId, ack);
}

/** The id of the message a FHIR response message answers (its MessageHeader.response.identifier). */
export function respondsTo(json: unknown): string | null {
  const header = bundleEntries(json).find((r) => r.resourceType === 'MessageHeader') as
    ResponseHeader | undefined;
  const identifier = header?.response?.identifier;
  return typeof identifier === 'string' && identifier.length > 0 ? identifier : null;
}

/**
 * Reads a receiver's FHIR response message, however it came (an HTTP answer, a mailbox file):
 * `ok` is accepted with the receiver's reference, `fatal-error` rejected with its reason,
 * `transient-error` a failed attempt; without a response code it only says the message arrived.
 */
export function classifyResponse(json: unknown, messageId: string, ack: string): DeliveryOutcome {
  const entries = bundleEntries(json);
  const header = entries.find((r) => r.resourceType === 'MessageHeader') as ResponseHeader | undefined;
  const response = header?.response;
  if (!response?.code) return { kind: 'delivered', acknowledgement: ack };
  if (response.identifier && response.identifier !== messageId)
    return { kind: 'retry', problem: `${ack}: the answer is for another message` };
  if (response.code === 'ok')
    return { kind: 'accepted', acknowledgement: ack, reference: referenceFrom(entries) };
  if (response.code === 'transient-error')
    return {
      kind: 'retry',
      problem: `${ack}: the receiver asked to try again (${reasonFrom(json) ?? 'transient error'})`,
    };
  return {
    kind: 'rejected',
    acknowledgement: ack,
    reason: reasonFrom(json) ?? `the receiver refused it (${response.code})`,
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

type AnyResource = { resourceType?: string } & Record<string, unknown>;

function bundleEntries(json: unknown): AnyResource[] {
  if (!json || typeof json !== 'object') return [];
  const r = json as AnyResource;
  if (r.resourceType !== 'Bundle') return [r];
  const entries = (r.entry as { resource?: AnyResource }[] | undefined) ?? [];
  return entries.flatMap((e) => (e.resource ? [e.resource] : []));
}

/** The receiver's own reference: the first identifier of what it created for the message. */
function referenceFrom(entries: AnyResource[]): string | null {
  for (const r of entries) {
    if (r.resourceType === 'MessageHeader' || r.resourceType === 'OperationOutcome') continue;
    const identifiers = r.identifier as { value?: unknown }[] | undefined;
    const value = identifiers?.[0]?.value;
    if (typeof value === 'string' && value.length > 0) return value.slice(0, 200);
  }
  return null;
}

/** The first issue of an OperationOutcome in the answer, in words. */
function reasonFrom(json: unknown): string | null {
  for (const r of bundleEntries(json)) {
    if (r.resourceType !== 'OperationOutcome') continue;
    const issue = (
      r.issue as { diagnostics?: string; details?: { text?: string }; code?: string }[] | undefined
    )?.[0];
    const text = issue?.details?.text ?? issue?.diagnostics ?? issue?.code;
    if (text) return String(text).slice(0, 500);
  }
  return null;
}
