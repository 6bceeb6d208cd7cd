import { rmSync } from 'node:fs';
import { canonicalJson } from '@holdfast/core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyStore } from '../../src/ledger/verify.ts';
import { ledgerCrypto } from '../../src/node/crypto.ts';
import { ledgerRows } from '../support/nodes.ts';
import {
  projectionDump,
  simulationTmpDir,
  startClinicalNode,
  type ClinicalNode,
} from './simulation/cluster.ts';
import {
  bookingScenarioArb,
  NODE_NAMES,
  overCapacity,
  runBookingScenario,
  slotLoad,
  withBooking,
  type BookingCommand,
  type BookingNode,
  type BookingRunOutcome,
  type BookingScenario,
} from './simulation/booking-model.ts';
import { bookingDb } from '../../src/booking/projection.ts';

/**
 * Acceptance (issue 16): the deterministic multi-node simulation gains bookings. A hub, an NHS 111
 * site and two treatment centres, real SQLite nodes in one process, on the in-memory network that
 * drops, delays, duplicates, replays late and partitions; the centres hand slots to the 111 site and
 * take them back at the cut-off; bookings, refusals, cancellations and rebookings at all three sites;
 * nodes crash with bookings in flight. At every step no node holds a slot over capacity; after healing
 * every acknowledged booking (and cancellation) is on every node, all ledgers verify, projections are
 * identical everywhere, and core's custody fold over the whole ledger in ledger order finds no booking
 * by a non-owner and none beyond capacity. The totals prove partitions, crashes with work in flight,
 * refusals and bookings made while cut off really happened.
 *
 * HOLDFAST_SIM_RUNS sets the number of runs. The default, 60, is what CI runs (about 1.5–2 minutes on
 * the two-core machine: a run sets up four nodes' enrolment, centres and sessions; 40 runs took 53 s
 * at a load average of 20). The
 * acceptance's 200 seeds (and more) is the full command, run before a merge:
 *   TZ=UTC HOLDFAST_SIM_RUNS=200 npx vitest run packages/server/test/sync/booking-simulation.test.ts
 * HOLDFAST_SIM_SEED (and HOLDFAST_SIM_PATH) replay a failed run. Runs use fast-check seed 16 unless
 * HOLDFAST_SIM_SEED is given, so CI's 60 runs are the first 60 of the 200.
 */
const RUNS = Number(process.env.HOLDFAST_SIM_RUNS ?? 60);
const SEED = process.env.HOLDFAST_SIM_SEED === undefined ? undefined : Number(process.env.HOLDFAST_SIM_SEED);
const PATH = process.env.HOLDFAST_SIM_PATH;
const DAY = 86_400_000;
/** 08:00 UTC on a December day (GMT): the sessions are that evening. */
const BASE_MS = Date.parse('2026-12-01T08:00:00Z');
/**
 * A run's morning: a day later for each run, from 1 December, and back to 1 December after 100 runs
 * (each run has a provider of its own), so every run is in winter (GMT), as the fixed-schedule runs'
 * times assume. Without the wrap the 200-seed form's later runs fell in British Summer Time, and the
 * cut-off run after them returned a session's slots an hour early by the UTC times it ticks to.
 */
const runMorningMs = (run: number) => BASE_MS + (run % 100) * DAY;

const BOOKING_TABLES = [
  'booking_centres',
  'booking_templates',
  'booking_sessions',
  'booking_slots',
  'booking_allocations',
  'booking_policies',
  'booking_appointments',
] as const;

/**
 * A column's value for comparison: JSON text is compared as data (its canonical form), because the
 * writer stores the payload as it built it and an importer as canonical JSON, so key order differs.
 */
function normalised(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && (v.startsWith('{') || v.startsWith('['))) {
    try {
      return canonicalJson(JSON.parse(v) as unknown);
    } catch {
      return v;
    }
  }
  return v;
}

async function bookingDump(n: BookingNode, tenant: string) {
  const db = n.node.store.db as unknown as {
    selectFrom(t: string): {
      selectAll(): {
        where(c: string, op: string, v: string): { execute(): Promise<Record<string, unknown>[]> };
      };
    };
  };
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const table of BOOKING_TABLES) {
    out[table] = (await db.selectFrom(table).selectAll().where('tenant', '=', tenant).execute())
      .map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, normalised(v)])))
      .map((r) => JSON.stringify(r))
      .sort()
      .map((r) => JSON.parse(r) as Record<string, unknown>);
  }
  return out;
}

describe('deterministic simulation: bookings on a hub, a 111 site and two centres', () => {
  let dir: string;
  let nodes: BookingNode[];
  let run = 0;
  const totals: BookingRunOutcome['counts'] & { runs: number; calls: number; faults: number } = {
    runs: 0,
    calls: 0,
    faults: 0,
    booked: 0,
    bookedWhileCut: 0,
    bookedBy111WhileCut: 0,
    refusedNotOwned: 0,
    refusedFull: 0,
    refusedOther: 0,
    cancelled: 0,
    rebooked: 0,
    returned: 0,
    allocated: 0,
    partitions: 0,
    crashes: 0,
    crashesWithWorkInFlight: 0,
    inFlightLost: 0,
  };

  beforeAll(async () => {
    dir = simulationTmpDir();
    const started: ClinicalNode[] = [];
    for (const [i, name] of NODE_NAMES.entries()) {
      started.push(
        await startClinicalNode('sqlite', name, 'bsim', {
          role: i === 0 ? 'hub' : 'site',
          dir,
          checkpointEvery: 7,
        }),
      );
    }
    nodes = started.map(withBooking);
  });
  afterAll(async () => {
    for (const n of nodes ?? []) await n.node.close().catch(() => undefined);
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (totals.runs > 0) console.log(`booking simulation: ${JSON.stringify(totals)}`);
  });

  /** One run under its own tenant: nodes are reused across runs and runs cannot see each other. */
  async function property(s: BookingScenario): Promise<BookingRunOutcome & { tenant: string }> {
    run++;
    const tenant = `bsim-${run}`;
    const outcome = await runBookingScenario(nodes, tenant, runMorningMs(run), s);
    totals.runs++;
    totals.calls += outcome.stats.calls;
    totals.faults += outcome.stats.dropped + outcome.stats.answersLost + outcome.stats.duplicated;
    for (const [k, v] of Object.entries(outcome.counts)) totals[k as keyof BookingRunOutcome['counts']] += v;

    // Every node holds the same ledger, and every ledger verifies.
    const rows = await ledgerRows(nodes[0]!.node, tenant);
    for (const n of nodes.slice(1)) expect(await ledgerRows(n.node, tenant), n.name).toEqual(rows);
    for (const n of nodes) {
      const report = await verifyStore(n.node.store, ledgerCrypto, { tenant });
      expect(report.faults, n.name).toEqual([]);
      expect(report.ok).toBe(true);
    }
    // Identical projections everywhere (bookings and the cases they touch).
    const dump = await bookingDump(nodes[0]!, tenant);
    const cases = await projectionDump(nodes[0]!, tenant);
    for (const n of nodes.slice(1)) {
      expect(await bookingDump(n, tenant), n.name).toEqual(dump);
      expect(await projectionDump(n, tenant), n.name).toEqual(cases);
    }
    // No acknowledged booking lost, none acknowledged as cancelled left standing.
    const { booked } = await slotLoad(nodes[0]!, tenant);
    const byId = new Map(booked.map((b) => [b.booking_id, b]));
    for (const a of outcome.acked) {
      const b = byId.get(a.bookingId);
      expect(b, `acknowledged booking ${a.bookingId} by ${a.node}`).toBeDefined();
      expect(b!.slot_id).toBe(a.slotId);
      expect(b!.status).toBe(outcome.ackedCancels.includes(a.bookingId) ? 'cancelled' : 'booked');
    }
    // No slot over capacity anywhere, and the scheme held at every point of ledger order.
    for (const n of nodes) {
      expect(await overCapacity(n, tenant), n.name).toEqual([]);
      expect(await n.booking.custodyViolations(tenant), n.name).toEqual([]);
    }
    return { ...outcome, tenant };
  }

  const prop = fc.asyncProperty(bookingScenarioArb, async (s) => {
    await property(s);
  });

  it(
    `${RUNS} seeded runs: no double booking, no acknowledged booking lost, ledgers and projections agree`,
    async () => {
      const details = await fc.check(prop, {
        numRuns: SEED === undefined ? RUNS : 1,
        ...(SEED === undefined ? { seed: 16 } : { seed: SEED }),
        ...(PATH === undefined ? {} : { path: PATH }),
        endOnFailure: true,
      });
      if (details.failed) {
        throw new Error(
          `booking simulation failed at seed ${details.seed} (path ${details.counterexamplePath ?? '-'}).\n` +
            `Re-run it: HOLDFAST_SIM_SEED=${details.seed} HOLDFAST_SIM_PATH=${details.counterexamplePath ?? ''} ` +
            `TZ=UTC npx vitest run packages/server/test/sync/booking-simulation.test.ts\n` +
            `Counterexample: ${JSON.stringify(details.counterexample)}\n` +
            `Error: ${details.errorInstance instanceof Error ? (details.errorInstance.stack ?? details.errorInstance.message) : String(details.errorInstance)}`,
        );
      }
      // The run exercised what it claims (only meaningful for a full run, not a single replay).
      if (SEED === undefined && RUNS >= 40) {
        expect(totals.booked, 'bookings made').toBeGreaterThan(RUNS);
        expect(
          totals.bookedBy111WhileCut,
          'the 111 site booked its allocation while cut off',
        ).toBeGreaterThan(0);
        expect(totals.bookedWhileCut, 'bookings while partitioned').toBeGreaterThan(0);
        expect(totals.refusedNotOwned, 'refusals of slots owned elsewhere').toBeGreaterThan(0);
        expect(totals.refusedFull, 'refusals of full slots').toBeGreaterThan(0);
        expect(totals.partitions, 'partitions').toBeGreaterThan(0);
        expect(totals.crashesWithWorkInFlight, 'crashes with bookings in flight').toBeGreaterThan(0);
        expect(totals.allocated, 'allocations handed over').toBeGreaterThan(0);
        expect(totals.returned, 'allocations given back').toBeGreaterThan(0);
        expect(totals.cancelled + totals.rebooked, 'cancellations and rebookings').toBeGreaterThan(0);
        expect(totals.faults, 'network faults').toBeGreaterThan(0);
      }
      // A run takes 1–5 s by the machine's load; the limit grows with the runs asked for.
    },
    Math.max(900_000, RUNS * 10_000),
  );

  /** Each slot of a run on a node: its centre, owner and standing bookings (the projection's count). */
  const slotsOn = (n: BookingNode, tenant: string) =>
    n.node.store.withTenant(tenant, (trx) =>
      bookingDb(trx)
        .selectFrom('booking_slots')
        .select(['slot_id', 'centre_id', 'owner_node', 'booked'])
        .where('tenant', '=', tenant)
        .orderBy('slot_id')
        .execute(),
    );
  /**
   * A scenario of the given steps, after rounds that carry the centres' allocations to the 111 site
   * (the run's setup syncs the 111 site before the centres have pushed them to the hub).
   */
  const fixed = (commands: BookingCommand[]): BookingScenario => ({
    netSeed: 16,
    skewMs: [0, 0, 0],
    patientsPerSlot: 1,
    commands: [
      { k: 'sync', sites: [2] },
      { k: 'sync', sites: [3] },
      { k: 'sync', sites: [1] },
      { k: 'sync', sites: [1] },
      ...commands,
    ],
  });
  const returnsBy = async (tenant: string) =>
    (
      await nodes[0]!.node.store.db
        .selectFrom('ledger_events')
        .select(['node', 'payload'])
        .where('tenant', '=', tenant)
        .where('type', '=', 'booking.slots_returned')
        .execute()
    ).map((r) => ({ node: r.node, ...(JSON.parse(r.payload) as { centreId: string; toNodeId: string }) }));

  // Issue 16 item 3 (hub gone), on the simulation's SQLite world only: its four nodes and network
  // are in-process SQLite nodes (the booking service is the same code on PostgreSQL, where
  // booking.test.ts and race.test.ts run it). About 2 s.
  it('with its hub gone, the 111 site books a slot allocated to it (and a centre its own); both reach the hub and the centre once the hub is back', async () => {
    const outcome = await property(
      fixed([
        // The hub is lost: no site can reach it, and its process dies and starts again meanwhile.
        { k: 'partition', site: 1 },
        { k: 'partition', site: 2 },
        { k: 'partition', site: 3 },
        { k: 'crash', node: 0, inFlight: 1 },
        { k: 'book', node: 1, pick: 0, ownOnly: true },
        { k: 'book', node: 2, pick: 0, ownOnly: true },
        // Trying to sync while it is gone changes nothing.
        { k: 'sync', sites: [1, 2, 3] },
      ]),
    );
    // (The run then heals every link and syncs until nothing moves: the hub is back.)
    expect(outcome.counts.bookedBy111WhileCut).toBe(1);
    expect(outcome.counts.bookedWhileCut).toBe(2);
    const by111 = outcome.acked.find((a) => a.node === 'nhs111')!;
    const slot = (await slotsOn(nodes[1]!, outcome.tenant)).find((x) => x.slot_id === by111.slotId)!;
    const centreNode = nodes.find((n) => n.name === slot.centre_id)!;
    for (const n of [nodes[0]!, centreNode]) {
      const { booked } = await slotLoad(n, outcome.tenant);
      expect(booked.find((b) => b.booking_id === by111.bookingId)?.status, n.name).toBe('booked');
      const there = (await slotsOn(n, outcome.tenant)).find((x) => x.slot_id === by111.slotId)!;
      expect([there.owner_node, Number(there.booked)], n.name).toEqual(['nhs111', 1]);
    }
  }, 60_000);

  // Issue 16 item 4: the cut-off return by the holder's timer (the policy's cut-off is 60 minutes
  // before the session; centre A's session is at 18:00, centre B's at 19:00, the runs start at 08:00).
  it("gives allocated slots back to the centre's node at the cut-off, by the holder's timer, and not before", async () => {
    // 16:59: a minute before centre A's cut-off, nothing goes back.
    const before = await property(
      fixed([
        { k: 'book', node: 1, pick: 0, ownOnly: true },
        { k: 'tick', node: 1, minutes: 8 * 60 + 59 },
      ]),
    );
    expect(before.counts.returned).toBe(0);
    expect(await returnsBy(before.tenant)).toEqual([]);
    const heldBefore = (await slotsOn(nodes[2]!, before.tenant)).filter((x) => x.owner_node === 'nhs111');
    expect(heldBefore.length).toBeGreaterThan(0);

    // 17:01: centre A's allocation (used or not) goes back to centre A's node, written by the 111 site;
    // centre B's (cut-off 18:00) stays with the 111 site.
    const after = await property(
      fixed([
        { k: 'book', node: 1, pick: 0, ownOnly: true },
        { k: 'tick', node: 1, minutes: 8 * 60 + 59 },
        { k: 'tick', node: 1, minutes: 2 },
      ]),
    );
    expect(after.counts.returned).toBe(1);
    expect(await returnsBy(after.tenant)).toEqual([
      expect.objectContaining({ node: 'nhs111', centreId: 'centre-a', toNodeId: 'centre-a' }),
    ]);
    for (const n of nodes) {
      const slots = await slotsOn(n, after.tenant);
      expect(
        slots.filter((x) => x.centre_id === 'centre-a' && x.owner_node !== 'centre-a'),
        n.name,
      ).toEqual([]);
      expect(
        slots.filter((x) => x.centre_id === 'centre-b' && x.owner_node === 'nhs111').length,
        n.name,
      ).toBeGreaterThan(0);
    }
    // The booking made on an allocated slot stands after its slot went back.
    const made = after.acked.find((a) => a.node === 'nhs111')!;
    const { booked } = await slotLoad(nodes[2]!, after.tenant);
    expect(booked.find((b) => b.booking_id === made.bookingId)?.status).toBe('booked');
  }, 60_000);
});
