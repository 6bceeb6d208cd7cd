/**
 * The sync benchmark's event types (bench/sync.ts): in a module of their own so that the hub's
 * import worker threads can build the same registry (initNode's registrySource).
 */
import { createEventRegistry, defineEventType, type EventRegistry } from '@holdfast/core';
import { z } from 'zod';

const caseId = z.string().regex(/^[0-9a-f-]{36}$/);
export const caseOpened = defineEventType({
  type: 'bench.case.opened',
  v: 1,
  schema: z.strictObject({
    caseId,
    site: z.string().min(1).max(64),
    priority: z.enum(['p1', 'p2', 'p3', 'p4']),
    presenting: z.string().min(1).max(200),
    callbackNumber: z.string().regex(/^0[0-9]{10}$/),
  }),
  subjectOf: (p) => `case:${p.caseId}`,
});
export const noteAdded = defineEventType({
  type: 'bench.case.note_added',
  v: 1,
  schema: z.strictObject({
    caseId,
    noteId: caseId,
    author: z.string().min(1).max(100),
    role: z.enum(['call_handler', 'clinician', 'dispatcher']),
    text: z.string().min(1).max(2000),
    codes: z.array(z.string().regex(/^[0-9]{6,18}$/)).max(10),
  }),
  subjectOf: (p) => `case:${p.caseId}`,
});
export const caseClosed = defineEventType({
  type: 'bench.case.closed',
  v: 1,
  schema: z.strictObject({ caseId, outcome: z.enum(['advice', 'referred', 'ambulance', 'gp']) }),
  subjectOf: (p) => `case:${p.caseId}`,
});

export function benchRegistry(): EventRegistry {
  return createEventRegistry().register(caseOpened, noteAdded, caseClosed);
}
