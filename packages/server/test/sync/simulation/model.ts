import { randomUUID } from 'node:crypto';
import {
  ConflictError,
  DECISIONS_BY_KIND,
  DomainError,
  type CaseCommand,
  type CaseState,
} from '@holdfast/core';
import fc from 'fast-check';
import type { ReconciliationDecision } from '@holdfast/core';
import { SyncUnreachableError } from '../../../src/sync/memory-transport.ts';
import { createSite, ctxFor, killAndReopen, syncOnce, type ClinicalNode } from './cluster.ts';
import { registerPeerKey } from '../../../src/sync/engine.ts';
import { mulberry32 } from '../../../src/simulate/simulator.ts';
import { SimNetwork } from './network.ts';

/**
 * The simulation's commands and its model. The model knows, independently of any projection,
 * which cases collided: a collision is made on purpose by two partitioned sites acting on one case
 * that both see in the same state (the case's home site and another), and counted when both
 * commands were acknowledged. Every other command on a case runs at its home site only, so it can
 * never collide. After healing, each counted collision must have produced exactly one item.
 */

export const SITES = 3;

export type Variant = 'claims' | 'outcomes' | 'prescribe_vs_refer' | 'close_vs_release';

export type Command =
  | { k: 'open'; site: number }
  | { k: 'work'; site: number; pick: number; action: number }
  | { k: 'collide'; site: number; other: number; pick: number; variant: Variant }
  | { k: 'sync'; sites: number[] }
  | { k: 'partition'; site: number }
  | { k: 'heal'; site: number }
  | { k: 'crash'; node: number }
  | { k: 'resolve'; site: number; pick: number }
  | { k: 'tick'; site: number; ms: number };

const site = fc.integer({ min: 0, max: SITES - 1 });
export const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ k: fc.constant('open' as const), site }) },
  {
    weight: 6,
    arbitrary: fc.record({ k: fc.constant('work' as const), site, pick: fc.nat(), action: fc.nat(9) }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('collide' as const),
      site,
      other: fc.integer({ min: 1, max: SITES - 1 }),
      pick: fc.nat(),
      variant: fc.constantFrom<Variant>('claims', 'outcomes', 'prescribe_vs_refer', 'close_vs_release'),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('sync' as const),
      sites: fc.uniqueArray(site, { minLength: 1, maxLength: SITES }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('partition' as const), site }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('heal' as const), site }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('crash' as const), node: fc.integer({ min: 0, max: SITES }) }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('resolve' as const), site, pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant('tick' as const), site, ms: fc.integer({ min: 0, max: 120_000 }) }),
  },
);

export interface Scenario {
  netSeed: number;
  /** Each site's clock offset from the hub's (skewed clocks). */
  skewMs: number[];
  commands: Command[];
}

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  netSeed: fc.integer(),
  skewMs: fc.array(fc.integer({ min: -5_000, max: 5_000 }), { minLength: SITES, maxLength: SITES }),
  commands: fc.array(commandArb, { minLength: 6, maxLength: 18 }),
});

interface ModelCase {
  caseId: string;
  home: number;
  /** Collided (or part of an attempted collision): no more commands on it. */
  frozen: boolean;
}

export interface RunOutcome {
  collisions: number;
  /** The case of each collision, one entry per collision. */
  collidedCases: string[];
  acked: { node: string; seq: number; hash: string }[];
  stats: SimNetwork['stats'];
  /** Kills: whether the event in flight was in the files the node reopened from. */
  kills: { kept: number; lost: number };
}

/** What a node reads of a case's state (its own projection) to choose a valid command. */
async function localState(n: ClinicalNode, tenant: string, caseId: string): Promise<CaseState | null> {
  try {
    return JSON.parse((await n.cases.get({ tenant }, caseId)).state) as CaseState;
  } catch {
    return null;
  }
}

/** True when the command was refused by the node's rules (a normal answer, not a failure). */
function refused(error: unknown): boolean {
  return error instanceof DomainError;
}

/**
 * Runs one scenario on the cluster (hub = nodes[0], sites = nodes[1..]) under a fresh tenant, then
 * heals, syncs to quiescence and returns what the model expects.
 */
export async function runScenario(
  nodes: ClinicalNode[],
  tenant: string,
  baseMs: number,
  s: Scenario,
): Promise<RunOutcome> {
  const hub = nodes[0]!;
  const sites = nodes.slice(1);
  const net = new SimNetwork(mulberry32(s.netSeed));
  const random = mulberry32(s.netSeed ^ 0x5eed);
  // Its own stream, so the kept seeds' scenarios and clocks are what they were before kills.
  const killTurns = mulberry32(s.netSeed ^ 0x4b1);
  hub.clock.set(baseMs);
  sites.forEach((n, i) => n.clock.set(baseMs + s.skewMs[i]!));

  // Enrolment as the real thing does it: the hub vouches for each site, each site pins the hub.
  await hub.node.ledger.registerSelf(tenant, 'hub');
  const siteIds: string[] = [];
  for (const n of sites) {
    await n.node.ledger.registerSelf(tenant, 'site');
    await registerPeerKey(hub.node, tenant, n.node.identity.node, n.node.identity.signer.publicKey, 'site');
    await registerPeerKey(n.node, tenant, hub.node.identity.node, hub.node.identity.signer.publicKey, 'hub');
    siteIds.push(await createSite(n, tenant, `Site ${n.name}`));
  }
  const clinicians = sites.map(() => [randomUUID(), randomUUID()]);
  // Each site's first clinician works at that site only; its second covers every site (a CAS
  // clinician assigned to several), so two partitioned sites can both act on one case: a collision.
  const sitesOf = new Map<string, string[]>(
    clinicians.flatMap(([own, covering], i) => [
      [own!, [siteIds[i]!]],
      [covering!, [...siteIds]],
    ]),
  );
  const adviser = randomUUID();
  const manager = randomUUID();
  const cases: ModelCase[] = [];
  const acked: RunOutcome['acked'] = [];
  let collisions = 0;
  const collidedCases: string[] = [];
  const kills = { kept: 0, lost: 0 };

  const ack = async (n: ClinicalNode) => {
    const head = await n.node.ledger.head(tenant);
    acked.push({ node: n.node.identity.node, seq: head.seq, hash: await headHash(n, tenant, head.seq) });
  };
  const act = async (
    n: ClinicalNode,
    userId: string,
    caseId: string,
    command: CaseCommand | CaseCommand[],
  ) => {
    n.clock.advance(1 + Math.floor(random() * 1500));
    try {
      await n.cases.command(ctxFor(tenant, userId, ['clinician'], sitesOf.get(userId)), caseId, command);
      await ack(n);
      return true;
    } catch (error) {
      if (refused(error)) return false;
      throw error;
    }
  };
  const syncSite = async (i: number) => {
    const n = sites[i]!;
    try {
      await syncOnce(n, () => hub, tenant, net.link(n.name, hub.name));
    } catch (error) {
      // Lost requests and answers, partitions: the next round resumes from what is stored.
      if (!(error instanceof SyncUnreachableError)) throw error;
    }
  };

  /** A new call at a site, triaged to a call-back: a queued case whose home is that site. */
  const openCase = async (i: number): Promise<ModelCase> => {
    const n = sites[i]!;
    n.clock.advance(1 + Math.floor(random() * 1500));
    const caseId = await n.cases.open(ctxFor(tenant, adviser, ['health_adviser']), {
      siteId: siteIds[i]!,
      answered: true,
      caller: { name: 'Sam Caller', relationship: 'self', callbackNumber: '07700 900123' },
      location: 'At home',
      presentingComplaint: 'Feeling unwell',
    });
    await ack(n);
    const m: ModelCase = { caseId, home: i, frozen: false };
    cases.push(m);
    await act(n, adviser, caseId, [
      { type: 'start_triage' },
      { type: 'reach_disposition', kind: 'speak_to_primary_care', timeframeMinutes: 120 },
      { type: 'queue_for_clinician' },
    ]);
    return m;
  };

  // Everyone learns the sites and keys before the calls start.
  for (let i = 0; i < sites.length; i++) await syncSite(i);

  for (const c of s.commands) {
    switch (c.k) {
      case 'open':
        await openCase(c.site);
        break;
      case 'work': {
        const mine = cases.filter((m) => m.home === c.site && !m.frozen);
        if (mine.length === 0) break;
        const m = mine[c.pick % mine.length]!;
        const n = sites[c.site]!;
        const state = await localState(n, tenant, m.caseId);
        if (!state) break;
        const who = state.claimantId ?? clinicians[c.site]![c.action % 2]!;
        if (state.status === 'queued') await act(n, who, m.caseId, { type: 'claim', clinicianId: who });
        else if (state.status === 'claimed') {
          const command: CaseCommand =
            c.action < 2
              ? { type: 'release', clinicianId: who }
              : c.action < 4
                ? { type: 'record_callback_attempt', clinicianId: who, outcome: 'no_answer' }
                : { type: 'start_consultation', clinicianId: who };
          await act(n, who, m.caseId, command);
        } else if (state.status === 'in_consultation') {
          const outcome = (['advice_and_close', 'refer', 'prescribe', 'book_appointment'] as const)[
            c.action % 4
          ]!;
          await act(n, who, m.caseId, { type: 'record_outcome', clinicianId: who, outcome });
        } else if (state.status === 'referral_pending' || state.status === 'follow_up_arranged') {
          await act(n, who, m.caseId, c.action < 5 ? { type: 'close' } : { type: 'queue_for_clinician' });
        }
        break;
      }
      case 'collide': {
        const home = c.site;
        const other = (c.site + c.other) % SITES;
        const [a, b] = [sites[home]!, sites[other]!];
        const want = c.variant === 'claims' ? 'queued' : 'in_consultation';
        // A case of the home site already in the wanted state, or a new one brought there.
        let m: ModelCase | undefined;
        const candidates = cases.filter((x) => x.home === home && !x.frozen);
        for (let i = 0; i < candidates.length && !m; i++) {
          const x = candidates[(c.pick + i) % candidates.length]!;
          if ((await localState(a, tenant, x.caseId))?.status === want) m = x;
        }
        m ??= await openCase(home);
        // Bring the case to the wanted state at its home and let both sites sync (through the faulty
        // network: a lost round or a partition leaves the sites apart and the collision is not tried).
        // An earlier collision's partition of these two sites is over by now.
        net.heal(a.name);
        net.heal(b.name);
        const prepared = await localState(a, tenant, m.caseId);
        if (want === 'in_consultation' && prepared?.status === 'queued') {
          const x = clinicians[home]![c.pick % 2]!;
          await act(a, x, m.caseId, [
            { type: 'claim', clinicianId: x },
            { type: 'start_consultation', clinicianId: x },
          ]);
        }
        await syncSite(home);
        await syncSite(other);
        const [sa, sb] = [await localState(a, tenant, m.caseId), await localState(b, tenant, m.caseId)];
        if (!sa || !sb || sa.status !== want || sb.status !== want || sa.claimantId !== sb.claimantId) break;
        if (JSON.stringify(sa) !== JSON.stringify(sb)) break;
        // Both sites are cut off before acting, so neither can see the other's command.
        net.partition(a.name);
        net.partition(b.name);
        m.frozen = true;
        let okA: boolean;
        let okB: boolean;
        if (c.variant === 'claims') {
          const [x, y] = [clinicians[home]![0]!, clinicians[other]![1]!];
          okA = await act(a, x, m.caseId, { type: 'claim', clinicianId: x });
          okB = await act(b, y, m.caseId, { type: 'claim', clinicianId: y });
        } else {
          const x = sa.claimantId!;
          const first = c.variant === 'prescribe_vs_refer' ? 'prescribe' : ('advice_and_close' as const);
          okA = await act(a, x, m.caseId, { type: 'record_outcome', clinicianId: x, outcome: first });
          okB = await act(
            b,
            x,
            m.caseId,
            c.variant === 'close_vs_release'
              ? { type: 'release', clinicianId: x }
              : { type: 'record_outcome', clinicianId: x, outcome: 'refer' },
          );
        }
        if (okA && okB) {
          collisions++;
          collidedCases.push(m.caseId);
        }
        break;
      }
      case 'sync':
        // Rounds of several sites with the hub at once: delays interleave them (reordering).
        await Promise.all(c.sites.map((i) => syncSite(i)));
        break;
      case 'partition':
        net.partition(sites[c.site]!.name);
        break;
      case 'heal':
        net.heal(sites[c.site]!.name);
        break;
      case 'crash': {
        // Killed while appending an event nobody is told about: the copy taken 0-2 turns of the
        // event loop later holds it or not, and the node must open and carry on either way.
        const n = nodes[c.node]!;
        const before = (await n.node.ledger.head(tenant)).seq;
        const turns = Math.floor(killTurns() * 3);
        await killAndReopen(n, (x) => createSite(x, tenant, 'Site added as the node was killed'), turns);
        if ((await n.node.ledger.head(tenant)).seq > before) kills.kept++;
        else kills.lost++;
        break;
      }
      case 'resolve': {
        const n = sites[c.site]!;
        const ctx = ctxFor(tenant, manager, ['shift_manager']);
        const open = await n.reconciliation.list(ctx, { status: 'open' });
        if (open.length === 0) break;
        const item = open[c.pick % open.length]!;
        const action = DECISIONS_BY_KIND[item.kind][c.pick % DECISIONS_BY_KIND[item.kind].length]!;
        const decision: ReconciliationDecision =
          action === 'keep_claim'
            ? { action, clinicianId: item.claimants[c.pick % 2]! }
            : action === 'keep_outcome'
              ? { action, outcomeEventId: item.outcomes[c.pick % 2]!.eventId }
              : { action };
        n.clock.advance(1 + Math.floor(random() * 1500));
        try {
          await n.reconciliation.resolve(ctx, item.itemId, { decision, reason: 'simulated decision' });
          await ack(n);
        } catch (error) {
          // The case moved on on this node since the item was raised: the decision is refused.
          if (!(error instanceof ConflictError)) throw error;
        }
        break;
      }
      case 'tick':
        sites[c.site]!.clock.advance(c.ms);
        break;
    }
  }

  // Heal: no more faults, every link up, rounds until nothing moves anywhere.
  net.heal();
  net.calm();
  for (let pass = 0; ; pass++) {
    let moved = 0;
    for (const n of sites) {
      const r = await syncOnce(n, () => hub, tenant, net.link(n.name, hub.name));
      moved += r.pulled + r.pushed;
    }
    if (moved === 0 && pass > 0) break;
    if (pass > 20) throw new Error('no quiescence after 20 healed sync passes');
  }
  return { collisions, collidedCases, acked, stats: net.stats, kills };
}

async function headHash(n: ClinicalNode, tenant: string, seq: number): Promise<string> {
  const [e] = await n.node.ledger.readChain(tenant, n.node.identity.node, seq, seq);
  return e!.hash;
}
