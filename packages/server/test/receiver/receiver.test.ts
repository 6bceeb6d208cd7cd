import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HttpTransport } from '../../src/messaging/transport-http.ts';
import { FaultProxy } from '../../src/receiver/fault-proxy.ts';
import { FhirReceiver } from '../../src/receiver/receiver.ts';
import { messageBundle } from '../support/message-bundle.ts';
import { freePort } from '../support/postgres.ts';
import { holdfastArgs } from '../support/cli-entry.ts';

/**
 * The receiver that is not ours (@medplum/core's validator, @medplum/fhir-router's in-memory
 * repository), spoken to by our own HTTP transport: it holds each message once by its id, answers a
 * repeat with the same answer, refuses an invalid one with its issues, keeps its count across a
 * restart and a SIGKILL; and the fault proxy does what it says.
 */
const dirs: string[] = [];
const children = new Set<ChildProcess>();

function tempFile(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'holdfast-receiver-'));
  dirs.push(dir);
  return join(dir, name);
}

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const transport = new HttpTransport({ timeoutMs: 5_000 });
const deliver = (url: string, id: string, bundle: unknown = messageBundle(id)) =>
  transport.deliver({ url: `${url}/messages`, clientCertificate: null }, id, JSON.stringify(bundle));

interface Received {
  count: number;
  posts: number;
  messages: { id: string; n: number; code: string; reference: string | null; posts: number }[];
}
const received = async (url: string) => (await (await fetch(`${url}/received`)).json()) as Received;

function storedIds(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { id: string }).id);
}

describe('the FHIR receiver', () => {
  it('accepts a valid message with its reference and holds a repeat once, with the same answer', async () => {
    const file = tempFile('ambulance.ndjson');
    const receiver = new FhirReceiver({
      kind: 'ambulance',
      name: 'North Ambulance Service',
      storeFile: file,
    });
    const url = await receiver.start();
    try {
      const first = randomUUID();
      const second = randomUUID();
      expect(await deliver(url, first)).toEqual({
        kind: 'accepted',
        acknowledgement: 'HTTP 200',
        reference: 'INC-000001',
      });
      expect(await deliver(url, second)).toMatchObject({ kind: 'accepted', reference: 'INC-000002' });
      // The same message again (a retry after a lost answer): the same answer, nothing held twice.
      expect(await deliver(url, first)).toMatchObject({ kind: 'accepted', reference: 'INC-000001' });
      const view = await received(url);
      expect(view.count).toBe(2);
      expect(view.posts).toBe(3);
      expect(view.messages.find((m) => m.id === first)).toMatchObject({ n: 1, posts: 2, code: 'ok' });
      expect(storedIds(file)).toEqual([first, second]);
    } finally {
      await receiver.stop();
    }
  });

  it('refuses an invalid message with fatal-error naming the element, and refuses it again the same way', async () => {
    const file = tempFile('gp.ndjson');
    const receiver = new FhirReceiver({ kind: 'gp', name: 'Riverside Surgery', storeFile: file });
    const url = await receiver.start();
    try {
      const id = randomUUID();
      // Encounter.status is required (1..1) in R4: the third-party validator refuses it.
      const bad = messageBundle(id, { encounterStatus: null });
      const answer = await deliver(url, id, bad);
      expect(answer.kind).toBe('rejected');
      expect(answer.kind === 'rejected' && answer.reason).toMatch(/status/i);
      expect(await deliver(url, id, bad)).toEqual(answer);
      const ok = randomUUID();
      expect(await deliver(url, ok)).toMatchObject({ kind: 'accepted', reference: 'GP-000002' });
      expect((await received(url)).messages.map((m) => m.code)).toEqual(['fatal-error', 'ok']);
    } finally {
      await receiver.stop();
    }
  });

  it('a body that is not a message Bundle is a 400 (rejected, not retried)', async () => {
    const receiver = new FhirReceiver({ kind: 'ambulance', name: 'A', storeFile: tempFile('a.ndjson') });
    const url = await receiver.start();
    try {
      const id = randomUUID();
      const outcome = await deliver(url, id, { resourceType: 'Patient' });
      expect(outcome).toMatchObject({ kind: 'rejected', acknowledgement: 'HTTP 400' });
      expect((await received(url)).count).toBe(0);
    } finally {
      await receiver.stop();
    }
  });

  it('`holdfast receiver` keeps its count across a SIGKILL: a repeat after the restart is not held twice', async () => {
    const file = tempFile('ambulance.ndjson');
    const port = await freePort();
    const start = async () => {
      const child = spawn(
        process.execPath,
        holdfastArgs('receiver', '--port', String(port), '--kind', 'ambulance', '--store', file),
        { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } },
      );
      children.add(child);
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (child.exitCode !== null) throw new Error(`receiver exited: ${out}`);
        try {
          if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return { child, out: () => out };
        } catch {
          // not yet listening
        }
        if (Date.now() > deadline) throw new Error(`receiver did not start: ${out}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    const url = `http://127.0.0.1:${port}`;
    const first = await start();
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    for (const id of ids) expect((await deliver(url, id)).kind).toBe('accepted');
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));

    const second = await start();
    expect(second.out()).toContain('3 messages held');
    expect(await deliver(url, ids[1]!)).toMatchObject({ kind: 'accepted', reference: 'INC-000002' });
    expect(await deliver(url, randomUUID())).toMatchObject({ kind: 'accepted', reference: 'INC-000004' });
    expect((await received(url)).count).toBe(4);
    expect(storedIds(file)).toHaveLength(4);
    second.child.kill('SIGTERM');
    await new Promise((r) => second.child.once('exit', r));
  });
});

describe('the fault proxy', () => {
  it('drops, answers 500, loses answers, duplicates and delays by its seed; the receiver still holds each once', async () => {
    const file = tempFile('faulty.ndjson');
    const receiver = new FhirReceiver({ kind: 'ambulance', name: 'A', storeFile: file });
    const url = await receiver.start();
    const proxy = new FaultProxy(url, {
      seed: 42,
      rates: {
        drop: 0.15,
        error500: 0.15,
        resetAfterForward: 0.15,
        duplicate: 0.15,
        delay: 0.15,
        maxDelayMs: 20,
      },
    });
    const front = await proxy.start();
    try {
      const ids = Array.from({ length: 60 }, () => randomUUID());
      const outcomes = new Map<string, string>();
      for (const id of ids) outcomes.set(id, (await deliver(front, id)).kind);
      // Every fault happened at least once with these rates and this seed.
      for (const fault of ['drop', 'error500', 'resetAfterForward', 'duplicate', 'delay', 'none'] as const)
        expect(proxy.counts[fault], fault).toBeGreaterThan(0);
      const retried = ids.filter((id) => outcomes.get(id) === 'retry');
      expect(retried.length).toBe(proxy.counts.drop + proxy.counts.error500 + proxy.counts.resetAfterForward);
      // What the sender was told was accepted is held; a lost answer's message may be held too.
      const held = new Set((await received(url)).messages.map((m) => m.id));
      for (const id of ids) if (outcomes.get(id) === 'accepted') expect(held.has(id)).toBe(true);
      expect(held.size).toBe(60 - proxy.counts.drop - proxy.counts.error500);
      // Retried until accepted: still one record per id, and duplicates were seen but not held twice.
      for (const id of retried) {
        let kind = 'retry';
        for (let i = 0; i < 20 && kind !== 'accepted'; i++) kind = (await deliver(front, id)).kind;
        expect(kind).toBe('accepted');
      }
      const after = await received(url);
      expect(after.count).toBe(60);
      expect(after.posts).toBeGreaterThan(60);
      expect(new Set(storedIds(file)).size).toBe(60);
      expect(storedIds(file)).toHaveLength(60);
    } finally {
      await proxy.stop();
      await receiver.stop();
    }
  });
});
