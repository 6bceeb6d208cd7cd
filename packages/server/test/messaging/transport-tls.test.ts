import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { responseBundle } from '../support/scripted-receiver.ts';

/**
 * Delivery over HTTPS to a receiver that demands a client certificate (mutual TLS), as NHS
 * services do: with the certificate configured on the node the message is accepted and the receiver
 * saw who we are; without it, or with a name the node has no files for, the attempt fails and is
 * retried, and nothing is accepted. Certificates are made by openssl for the test: a private CA, a
 * server certificate for 127.0.0.1 and a client certificate.
 */
describe('HTTPS delivery with a client certificate', () => {
  let dir: string;
  let server: Server;
  let url: string;
  const seen: { clientName: string | null; authorized: boolean }[] = [];

  function openssl(...args: string[]): void {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'holdfast-tls-'));
    openssl(
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      '/CN=Holdfast test CA',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
    );
    writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const [name, subject, ext] of [
      ['server', '/CN=127.0.0.1', ['-extfile', 'server.ext']],
      ['client', '/CN=holdfast-node-a', []],
    ] as const) {
      openssl(
        'req',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-subj',
        subject,
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.csr`,
      );
      openssl(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-out',
        `${name}.crt`,
        ...ext,
      );
    }
    server = createServer(
      {
        key: readFileSync(join(dir, 'server.key')),
        cert: readFileSync(join(dir, 'server.crt')),
        ca: readFileSync(join(dir, 'ca.crt')),
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const socket = req.socket as TLSSocket;
        const peer = socket.getPeerCertificate();
        seen.push({
          clientName: peer?.subject ? String(peer.subject.CN) : null,
          authorized: socket.authorized,
        });
        req.resume();
        req.on('end', () => {
          const id = String(req.headers['idempotency-key']);
          res.writeHead(200, { 'content-type': 'application/fhir+json' });
          res.end(JSON.stringify(responseBundle(id, 'ok', 'INC-7001')));
        });
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/messages`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  const files = () => ({
    certFile: join(dir, 'client.crt'),
    keyFile: join(dir, 'client.key'),
    caFile: join(dir, 'ca.crt'),
  });
  const messageId = '0b8f6c1e-3a52-4a7e-9d1c-2f3e4a5b6c7d';

  it('is accepted with the certificate the node has for the endpoint, and the receiver sees who sent it', async () => {
    const transport = new HttpTransport({ clientCertificates: { 'north-ambulance': files() } });
    const outcome = await transport.deliver({ url, clientCertificate: 'north-ambulance' }, messageId, '{}');
    expect(outcome).toMatchObject({ kind: 'accepted', reference: 'INC-7001' });
    expect(seen.at(-1)).toEqual({ clientName: 'holdfast-node-a', authorized: true });
  });

  it('an endpoint with no client certificate configured is not delivered: a failed attempt, retried', async () => {
    const before = seen.length;
    const outcome = await new HttpTransport().deliver({ url, clientCertificate: null }, messageId, '{}');
    expect(outcome.kind).toBe('retry');
    expect(seen.length).toBe(before);
  });

  it('a certificate name the node has no files for is a failed attempt naming it, and nothing is sent', async () => {
    const before = seen.length;
    const outcome = await new HttpTransport({ clientCertificates: {} }).deliver(
      { url, clientCertificate: 'north-ambulance' },
      messageId,
      '{}',
    );
    expect(outcome).toEqual({
      kind: 'retry',
      problem: expect.stringContaining('client certificate "north-ambulance" is not configured on this node'),
    });
    expect(seen.length).toBe(before);
  });
});
