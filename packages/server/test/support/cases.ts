import { walk, type WalkResult } from '@holdfast/core/triage/engine';
import type { TriageProtocol } from '@holdfast/core/triage/pack';
import { expect } from 'vitest';
import type { Client } from './http.ts';

type Answer = { nodeId: string; value: string | string[] | number };

/**
 * Answers that walk `protocol` to a disposition matching `want`, found by depth-first search over
 * the engine itself (so the test follows whatever the shipped content says).
 */
export function answersTo(
  protocol: TriageProtocol,
  want: (d: Extract<WalkResult, { status: 'disposition' }>['disposition']) => boolean,
): Answer[] | null {
  const search = (answers: Answer[], depth: number): Answer[] | null => {
    if (depth > 40) return null;
    const r = walk(protocol, answers);
    if (r.status === 'disposition') return want(r.disposition) ? answers : null;
    const node = r.node;
    const candidates: Answer['value'][] = [];
    if (node.type === 'single_choice') for (const o of node.options) candidates.push(o.id);
    else if (node.type === 'multi_choice') {
      candidates.push([]);
      for (const o of node.options) candidates.push([o.id]);
    } else if (node.type === 'numeric') {
      for (const range of node.ranges) {
        const lo = range.min ?? node.min;
        const hi = range.max ?? node.max;
        const v = node.integer ? Math.ceil((lo + hi) / 2) : (lo + hi) / 2;
        candidates.push(Math.min(hi, Math.max(lo, v)));
      }
    }
    for (const value of candidates) {
      try {
        const found = search([...answers, { nodeId: node.id, value }], depth + 1);
        if (found) return found;
      } catch {
        // a value the question refuses: try the next
      }
    }
    return null;
  };
  return search([], 0);
}

/** Opens a call as the adviser and triages it to a disposition of the given kind; returns the case id. */
export async function caseAt(
  adviser: Client,
  protocols: Map<string, TriageProtocol>,
  siteId: string,
  kind: string,
  options: {
    patientId?: string;
    /** For a patient whose record says they have died: the adviser confirmed the call is about them. */
    deceasedConfirmed?: boolean;
    receivedAt?: string;
    pathwayId?: string;
    confirm?: boolean;
  } = {},
): Promise<{ caseId: string; last: WalkResult }> {
  const opened = await adviser.request('POST', '/api/v1/calls', {
    siteId,
    ...(options.receivedAt ? { receivedAt: options.receivedAt } : {}),
    caller: {
      name: 'Sam Caller',
      relationship: 'self',
      callbackNumber: '0113 496 0123',
      callbackNumberReadBack: true,
    },
    ...(options.patientId ? { patientId: options.patientId } : {}),
    ...(options.deceasedConfirmed ? { deceasedConfirmed: true } : {}),
    location: 'At home',
    presentingComplaint: 'Feeling unwell',
  });
  expect(opened.statusCode, opened.body).toBe(201);
  const caseId = (opened.json() as { caseId: string }).caseId;
  let chosen: { pathwayId: string; answers: Answer[] } | null = null;
  // Pathways for any age first: the patient's age must not rule the chosen one out.
  const byAge = [...protocols].sort(
    ([, a], [, b]) => Number(a.content.ageYears !== null) - Number(b.content.ageYears !== null),
  );
  for (const [pathwayId, protocol] of byAge) {
    if (options.pathwayId && pathwayId !== options.pathwayId) continue;
    const answers = answersTo(protocol, (d) => d.kind === kind);
    if (answers) {
      chosen = { pathwayId, answers };
      break;
    }
  }
  if (!chosen) throw new Error(`no shipped pathway reaches a ${kind} disposition`);
  const started = await adviser.request('POST', `/api/v1/cases/${caseId}/triage`, {
    pathwayId: chosen.pathwayId,
  });
  expect(started.statusCode, started.body).toBe(200);
  let last = started.json() as WalkResult;
  for (const a of chosen.answers) {
    const r = await adviser.request('POST', `/api/v1/cases/${caseId}/triage/answers`, a);
    expect(r.statusCode, r.body).toBe(200);
    last = r.json() as WalkResult;
  }
  // A disposition is only proposed until the adviser confirms it; then it is acted on.
  if (last.status === 'disposition' && options.confirm !== false) {
    const confirmed = await adviser.request('POST', `/api/v1/cases/${caseId}/disposition/confirm`, {
      dxCode: last.disposition.dxCode,
    });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
  }
  return { caseId, last };
}
