import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mulberry32 } from '../simulate/simulator.ts';

/**
 * A faulty network between a sender and a receiver, for tests and drills: an HTTP proxy that, by a
 * seeded draw per request, drops it (the connection is cut before anything is forwarded), answers 500
 * without forwarding, delays it, forwards it twice (the receiver sees a duplicate), or forwards it
 * and then cuts the connection so the answer is lost. Everything else passes through unchanged.
 */
export interface FaultRates {
  /** Cut the connection without forwarding. */
  drop: number;
  /** Answer 500 without forwarding. */
  error500: number;
  /** Forward, then cut the connection: the receiver has it, the sender never hears. */
  resetAfterForward: number;
  /** Forward twice (one after the other); the second answer is passed back. */
  duplicate: number;
  /** Wait up to `maxDelayMs` before forwarding. */
  delay: number;
  maxDelayMs: number;
}

export const DEFAULT_FAULT_RATES: FaultRates = {
  drop: 0.05,
  error500: 0.05,
  resetAfterForward: 0.05,
  duplicate: 0.05,
  delay: 0.1,
  maxDelayMs: 200,
};

export type Fault = 'drop' | 'error500' | 'resetAfterForward' | 'duplicate' | 'delay' | 'none';

export class FaultProxy {
  readonly counts: Record<Fault, number> = {
    drop: 0,
    error500: 0,
    resetAfterForward: 0,
    duplicate: 0,
    delay: 0,
    none: 0,
  };
  private readonly random: () => number;
  private readonly rates: FaultRates;
  private server: Server | null = null;
  url = '';

  constructor(
    private readonly target: string,
    options: { seed: number; rates?: Partial<FaultRates> },
  ) {
    // The project's one seeded generator (the simulator's), so a seed repeats a run exactly.
    this.random = mulberry32(options.seed);
    this.rates = { ...DEFAULT_FAULT_RATES, ...options.rates };
  }

  async start(port = 0, host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(port, host, () => r()));
    this.url = `http://${host}:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => {
      if (!this.server) return r();
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }

  private draw(): Fault {
    let x = this.random();
    for (const fault of ['drop', 'error500', 'resetAfterForward', 'duplicate', 'delay'] as const) {
      if (x < this.rates[fault]) return fault;
      x -= this.rates[fault];
    }
    return 'none';
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const fault = this.draw();
    this.counts[fault]++;
    try {
      if (fault === 'drop') return void req.socket.destroy();
      if (fault === 'error500') {
        res.writeHead(500, { 'content-type': 'text/plain' });
        return void res.end('injected fault');
      }
      if (fault === 'delay')
        await new Promise((r) => setTimeout(r, Math.floor(this.random() * this.rates.maxDelayMs)));
      let answer = await this.forward(req, body);
      if (fault === 'duplicate') answer = await this.forward(req, body);
      if (fault === 'resetAfterForward') return void req.socket.destroy();
      res.writeHead(answer.status, answer.headers);
      res.end(answer.body);
    } catch {
      // The receiver could not be reached: the sender sees a bad gateway and retries.
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end('receiver unreachable');
      }
    }
  }

  private forward(
    req: IncomingMessage,
    body: Buffer,
  ): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
    const target = new URL(req.url ?? '/', this.target);
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'accept', 'idempotency-key'])
      if (typeof req.headers[name] === 'string') headers[name] = req.headers[name];
    headers['content-length'] = String(body.length);
    return new Promise((resolve, reject) => {
      const out = request(target, { method: req.method, headers, timeout: 30_000 }, (answer) => {
        const parts: Buffer[] = [];
        answer.on('data', (c: Buffer) => parts.push(c));
        answer.on('end', () =>
          resolve({
            status: answer.statusCode ?? 502,
            headers: { 'content-type': String(answer.headers['content-type'] ?? 'application/json') },
            body: Buffer.concat(parts),
          }),
        );
        answer.on('error', reject);
      });
      out.on('timeout', () => out.destroy(new Error('receiver timed out')));
      out.on('error', reject);
      out.end(body);
    });
  }
}
