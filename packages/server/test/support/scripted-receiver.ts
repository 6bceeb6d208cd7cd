import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A receiver over real HTTP on loopback whose answers a test scripts (accept with a reference, a
 * 503, a hang-up, a rejection), for the delivery worker's own behaviour. It records every request with
 * its idempotency key.
 */
export type Answer = { status: number; body?: unknown } | 'hang-up';

export class ScriptedReceiver {
  readonly received: { id: string; body: string }[] = [];
  /** Answers given in order; when empty, `fallback`. */
  script: Answer[] = [];
  fallback: Answer = { status: 200, body: 'ok-with-reference' };
  private server: Server | null = null;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/messages`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => this.server?.close(() => r()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    const id = String(req.headers['idempotency-key'] ?? '');
    this.received.push({ id, body });
    const answer = this.script.shift() ?? this.fallback;
    if (answer === 'hang-up') {
      req.socket.destroy();
      return;
    }
    res.writeHead(answer.status, { 'content-type': 'application/fhir+json' });
    res.end(
      JSON.stringify(
        answer.body === 'ok-with-reference' ? responseBundle(id, 'ok', 'INC-4711') : (answer.body ?? {}),
      ),
    );
  }
}

export function responseBundle(
  messageId: string,
  code: 'ok' | 'fatal-error' | 'transient-error',
  reference?: string,
) {
  return {
    resourceType: 'Bundle',
    type: 'message',
    entry: [
      {
        resource: {
          resourceType: 'MessageHeader',
          response: { identifier: messageId, code },
          eventCoding: { system: 'https://example.org', code: 'ack' },
          source: { endpoint: 'https://ambulance.example' },
        },
      },
      ...(reference ? [{ resource: { resourceType: 'Encounter', identifier: [{ value: reference }] } }] : []),
      ...(code === 'fatal-error'
        ? [
            {
              resource: {
                resourceType: 'OperationOutcome',
                issue: [{ severity: 'error', code: 'invalid', details: { text: 'no location given' } }],
              },
            },
          ]
        : []),
    ],
  };
}
