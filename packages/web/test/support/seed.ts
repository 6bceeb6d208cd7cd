import { randomUUID } from 'node:crypto';
import { walk } from '@holdfast/core/triage/engine';
import type { TriageAnswer } from '@holdfast/core/triage/engine';
import { simulateAnswers } from '@holdfast/core/triage/simulation';
import { AccountsService } from '../../../server/src/accounts/service.ts';
import { SessionStore } from '../../../server/src/auth/sessions.ts';
import { CaseService } from '../../../server/src/cases/service.ts';
import { TriageService } from '../../../server/src/cases/triage.ts';
import { DEMO_TENANT, seedDemoProvider } from '../../../server/src/demo.ts';
import type { RequestContext } from '../../../server/src/http/context.ts';
import type { EventDraft } from '../../../server/src/ledger/ledger.ts';
import { initNode, type HoldfastNode } from '../../../server/src/node/node.ts';
import { deriveSeed, mulberry32 } from '../../../server/src/simulate/simulator.ts';
import { requireProtocolPack, SAMPLE_PACK_DIR } from '../../../server/src/triage/packs.ts';
import { DEMO } from './server.ts';

/**
 * A data directory for `holdfast serve` with the demo provider (as `holdfast start` seeds it) and
 * any number of cases waiting in the CAS queue, written straight through the node's services and
 * ledger rather than thousands of HTTP flows.
 *
 * A few template cases are run through the real services (call, triage walk of the shipped pack to a
 * speak-to-primary-care disposition, which queues the case); their ledger events are then copied
 * under fresh case ids, call times and callers, and appended in large batches. Every copy is a
 * complete, valid event history: the cases projection folds it as it folds the templates.
 */

const TEMPLATES = 6;
const CASES_PER_APPEND = 250;
const CALLERS = [
  'Sam Okafor',
  'Priya Shah',
  'Tom Evans',
  'Aisha Begum',
  'Joe Price',
  'Mei Chen',
  'Ola Nowak',
];

export interface SeededProvider {
  node: HoldfastNode;
  demoPassword: string;
  siteIds: string[];
  /** Case ids in the queue, in the order they were written. */
  caseIds: string[];
}

/** Seeded walks of the shipped pack that end at a speak-to-primary-care disposition. */
async function primaryCareWalks(count: number): Promise<{ pathwayId: string; answers: TriageAnswer[] }[]> {
  const loaded = await requireProtocolPack(SAMPLE_PACK_DIR);
  const pathways = loaded.pack.manifest.pathways.map((p) => p.id);
  const walks: { pathwayId: string; answers: TriageAnswer[] }[] = [];
  for (let i = 0; walks.length < count; i++) {
    if (i > count * 500) throw new Error('the pack hardly ever reaches a speak-to-primary-care disposition');
    const random = mulberry32(deriveSeed(20_261_129, 11, i));
    const pathwayId = pathways[i % pathways.length]!;
    const protocol = loaded.protocols.get(pathwayId)!;
    const answers = simulateAnswers(protocol, random);
    const result = walk(protocol, answers);
    if (result.status === 'disposition' && result.disposition.kind === 'speak_to_primary_care')
      walks.push({ pathwayId, answers });
  }
  return walks;
}

/**
 * Initialises a node in `dataDir` (tenant northshire-iuc, node-1, SQLite, as `holdfast start` would),
 * seeds the demo provider and `cases` queued cases whose calls came in over the last `spreadMinutes`.
 * The node is left open; close it before `holdfast serve` opens the same store.
 */
export async function seedQueuedCases(
  dataDir: string,
  cases: number,
  options: { spreadMinutes?: number; onProgress?: (done: number) => void } = {},
): Promise<SeededProvider> {
  const node = await initNode(
    { store: 'sqlite', dataDir, checkpointEvery: 100 },
    { tenant: DEMO_TENANT, node: 'node-1', role: 'single' },
  );
  const demo = await seedDemoProvider(node);
  const accounts = new AccountsService(
    node.store,
    node.ledger,
    new SessionStore(node.store, node.clock),
    node.providerKeys,
  );
  const siteIds = (await accounts.sites(DEMO_TENANT)).map((s) => s.siteId);
  const adviser = await accounts.findForSignIn(DEMO.adviser);
  if (!adviser) throw new Error(`the demo provider has no ${DEMO.adviser}`);
  const ctx: RequestContext = {
    tenant: DEMO_TENANT,
    userId: adviser.userId,
    username: adviser.username,
    roles: adviser.roles,
    siteIds: adviser.siteIds,
    sessionId: 'seed',
    address: '127.0.0.1',
  };
  const caseService = new CaseService(node.store, node.ledger, node.clock, accounts);
  const triage = new TriageService(caseService, await requireProtocolPack(SAMPLE_PACK_DIR));

  // Templates through the real services.
  const templates: { caseId: string; events: { type: string; actor: string; payload: string }[] }[] = [];
  for (const [i, plan] of (await primaryCareWalks(Math.min(TEMPLATES, cases))).entries()) {
    const caseId = await caseService.open(ctx, {
      siteId: siteIds[i % siteIds.length]!,
      answered: true,
      caller: { name: CALLERS[i % CALLERS.length]!, relationship: 'self', callbackNumber: '07700 900001' },
      location: 'Home address',
      presentingComplaint: `Template call ${i + 1}`,
    });
    await triage.start(ctx, caseId, plan.pathwayId);
    let last = null;
    for (const a of plan.answers) last = await triage.answer(ctx, caseId, a.nodeId, a.value, false);
    if (last?.status !== 'disposition') throw new Error(`template ${i} did not reach a disposition`);
    // The adviser confirms the proposed disposition: only then is the case queued.
    await triage.confirm(ctx, caseId, last.disposition.dxCode);
    const rows = await node.store.db
      .selectFrom('ledger_events')
      .select(['type', 'actor', 'payload'])
      .where('tenant', '=', DEMO_TENANT)
      .where('subject', '=', `case:${caseId}`)
      .where('type', 'like', 'case.%')
      .orderBy('pos')
      .execute();
    templates.push({ caseId, events: rows.map((r) => ({ ...r, payload: String(r.payload) })) });
  }

  const caseIds = templates.map((t) => t.caseId);
  const spreadMs = (options.spreadMinutes ?? 90) * 60_000;
  const now = node.clock.nowMs();
  let drafts: EventDraft[] = [];
  for (let n = templates.length; n < cases; n++) {
    const template = templates[n % templates.length]!;
    const caseId = randomUUID();
    caseIds.push(caseId);
    // Calls spread evenly over the last spreadMinutes: the queue holds on-time, at-risk and breached cases.
    const receivedAt = new Date(now - Math.round((spreadMs * (cases - n)) / cases)).toISOString();
    for (const e of template.events) {
      const payload = JSON.parse(e.payload.replaceAll(template.caseId, caseId)) as Record<string, unknown>;
      if (e.type === 'case.opened') {
        payload.receivedAt = receivedAt;
        payload.caller = {
          name: `${CALLERS[n % CALLERS.length]} ${n}`,
          relationship: 'self',
          callbackNumber: `07700 9${String(n % 100_000).padStart(5, '0')}`,
        };
        payload.presentingComplaint = `Seeded call ${n}`;
      }
      drafts.push({ tenant: DEMO_TENANT, type: e.type, actor: e.actor, payload });
    }
    if ((n + 1) % CASES_PER_APPEND === 0 || n === cases - 1) {
      await node.ledger.append(drafts);
      drafts = [];
      options.onProgress?.(n + 1);
    }
  }
  await node.ledger.checkpointNow(DEMO_TENANT);
  return { node, demoPassword: demo.password, siteIds, caseIds };
}
