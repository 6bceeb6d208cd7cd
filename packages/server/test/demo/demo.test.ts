import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  crewOf,
  normaliseNhsNumber,
  SPECIAL_NOTE_KINDS,
  type PatientRecord,
  type Shift,
} from '@holdfast/core';
import { afterAll, describe, expect, it } from 'vitest';
import { DEMO_TENANT, seedDemoProvider } from '../../src/demo.ts';
import { DEMO_CARS } from '../../src/dispatch/demo.ts';
import { initNode, openNode, type HoldfastNode } from '../../src/node/node.ts';
import { holdfastArgs } from '../support/cli-entry.ts';
import { freePort } from '../support/postgres.ts';
import { checkProjections, describeProjectionCheck } from '../../src/projections/check.ts';
import { freshStore } from '../support/databases.ts';

/** What `holdfast start` seeds at the first start: the demo provider, its users, made-up patients. */
describe('the demo provider', () => {
  let node: HoldfastNode;
  let cleanup: () => Promise<void>;

  afterAll(async () => {
    await node.close();
    await cleanup();
  });

  it('has made-up patients with special notes of every kind and NHS numbers from the never-issued 999 range', async () => {
    const fresh = await freshStore('sqlite');
    cleanup = fresh.cleanup;
    node = await initNode(fresh.config, { tenant: DEMO_TENANT, node: 'node-1', role: 'single' });
    const demo = await seedDemoProvider(node);
    expect(demo.users.length).toBeGreaterThan(0);
    const rows = await node.store.db
      .selectFrom('ledger_events')
      .select('payload')
      .where('type', '=', 'patient.registered')
      .execute();
    const records = rows.map((r) => (JSON.parse(r.payload) as { record: PatientRecord }).record);
    expect(records.length).toBeGreaterThanOrEqual(24);
    for (const r of records) {
      expect(r.nhsNumber).toMatch(/^999\d{7}$/);
      expect(normaliseNhsNumber(r.nhsNumber!).ok).toBe(true);
    }
    expect(new Set(records.map((r) => r.nhsNumber)).size).toBe(records.length);
    const kinds = new Set(records.flatMap((r) => r.specialNotes.map((n) => n.kind)));
    for (const kind of SPECIAL_NOTE_KINDS) expect(kinds.has(kind), kind).toBe(true);
    expect(records.filter((r) => r.specialNotes.length === 0).length).toBeGreaterThan(0);
    for (const r of records) for (const n of r.specialNotes) expect(n.text).toMatch(/^Made-up demo note/);
    // What was folded as the events were appended is what a fold of the ledger gives: a restarted
    // node's projection check finds nothing to refuse (patient records were once stored in the
    // key order of the append, which a rebuild does not reproduce).
    const check = await checkProjections(node.store, node.projections.projections, node.registry);
    expect(check.ok, describeProjectionCheck(check)).toBe(true);
  });

  it('has sample home-visit cars on the board: two with a made-up driver and clinician on shift now, one not offered', async () => {
    const now = node.clock.nowMs();
    const cars = (
      await node.store.db
        .selectFrom('ledger_events')
        .select('payload')
        .where('type', '=', 'vehicle.registered')
        .execute()
    ).map((r) => JSON.parse(r.payload) as { vehicleId: string; callSign: string; registration: string });
    expect(cars).toHaveLength(DEMO_CARS.length);
    for (const car of cars) {
      expect(car.callSign).toMatch(/\(sample\)$/);
      expect(car.registration).toMatch(/^SAMPLE /);
    }
    const shifts = (
      await node.store.db
        .selectFrom('ledger_events')
        .select('payload')
        .where('type', '=', 'rota.shift_planned')
        .execute()
    ).map((r) => JSON.parse(r.payload) as Shift);
    for (const s of shifts) expect(s.userName).toMatch(/\(demo, not a real person\)$/);
    // Crewed now and for the next days (the demo is started again on later days).
    const crewed = (at: number) => cars.filter((c) => crewOf(c.vehicleId, shifts, at).available).length;
    expect(crewed(now)).toBe(2);
    expect(crewed(now + 3 * 24 * 3_600_000)).toBe(2);
    // The board the dispatcher opens: the cars with their positions, two offered.
    const rows = await node.store.db
      .withTables<{ dispatch_positions: { vehicle_id: string } }>()
      .selectFrom('dispatch_positions')
      .select('vehicle_id')
      .execute();
    expect(rows.map((r) => r.vehicle_id).sort()).toEqual(cars.map((c) => c.vehicleId).sort());
  });
});

/** `holdfast start` as a real process until it listens; returns what it printed, then stops it. */
async function startOnce(dataDir: string): Promise<{ output: string; seq: number }> {
  const port = await freePort();
  const child = spawn(process.execPath, holdfastArgs('-d', dataDir, 'start', '--port', String(port)), {
    env: {
      ...process.env,
      CI: '1',
      NO_COLOR: '1',
      TZ: 'UTC',
      HOLDFAST_OPERATOR_TOKEN_SHA256: createHash('sha256').update('demo-test-operator').digest('hex'),
    },
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  try {
    const deadline = Date.now() + 60_000;
    while (!output.includes('listening on') && Date.now() < deadline && child.exitCode === null)
      await new Promise((r) => setTimeout(r, 100));
    expect(output).toContain(`listening on http://localhost:${port}`);
    const health = (await (
      await fetch(`http://127.0.0.1:${port}/health`, {
        headers: { authorization: 'Bearer demo-test-operator' },
      })
    ).json()) as {
      ledger: { seq: number };
    };
    return { output, seq: health.ledger.seq };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

describe('holdfast start', () => {
  it('seeds the made-up patients at the first start only: a second start adds nothing', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'holdfast-demo-start-'));
    try {
      const first = await startOnce(dataDir);
      expect(first.output).toContain('first start: created node node-1 and the demo provider');
      const second = await startOnce(dataDir);
      expect(second.output).not.toContain('first start');
      expect(second.output).not.toMatch(/all with the password/);
      // Nothing appended by the second start: the chain ends where the first left it.
      expect(second.seq).toBe(first.seq);

      const node = await openNode({ store: 'sqlite', dataDir, checkpointEvery: 100 });
      try {
        const rows = await node.store.db
          .selectFrom('ledger_events')
          .select('payload')
          .where('type', '=', 'patient.registered')
          .execute();
        const numbers = rows.map(
          (r) => (JSON.parse(r.payload) as { record: PatientRecord }).record.nhsNumber,
        );
        expect(numbers).toHaveLength(30);
        expect(new Set(numbers).size).toBe(30);
        for (const n of numbers) expect(n).toMatch(/^999\d{7}$/);
      } finally {
        await node.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 180_000);
});
