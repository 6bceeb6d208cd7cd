import { z } from 'zod';
import { defineEventType } from '../ledger/registry.ts';
import { capacitySchema, directoryServiceDefinitionSchema, SERVICE_ID } from './schema.ts';

/**
 * The provider's directory as facts. A service's subject is `directory-service:<serviceId>`.
 * - `service_set`: the whole service as staff defined it (everything but capacity), with its version
 *   (1 when added, one more at each change), so every change is a complete record.
 * - `service_removed`: no longer offered, with why.
 * - `capacity_set`: green, amber or red, set by staff; who and when come from the event's envelope.
 */
export const directoryServiceSet = defineEventType({
  type: 'directory.service_set',
  v: 1,
  description: 'A service of the provider’s directory added or changed (its whole definition).',
  schema: z.strictObject({
    version: z.number().int().min(1),
    service: directoryServiceDefinitionSchema,
  }),
  subjectOf: (p) => `directory-service:${p.service.serviceId}`,
});

export const directoryServiceRemoved = defineEventType({
  type: 'directory.service_removed',
  v: 1,
  description: 'A service was taken out of the provider’s directory, with the reason.',
  schema: z.strictObject({
    serviceId: z.string().regex(SERVICE_ID),
    reason: z.string().trim().min(3).max(2000),
  }),
  subjectOf: (p) => `directory-service:${p.serviceId}`,
});

export const directoryCapacitySet = defineEventType({
  type: 'directory.capacity_set',
  v: 1,
  description: 'Staff set a service’s capacity: green, amber or red (with an optional note).',
  schema: capacitySchema.extend({ serviceId: z.string().regex(SERVICE_ID) }),
  subjectOf: (p) => `directory-service:${p.serviceId}`,
});

export type DirectoryServiceSet = z.infer<typeof directoryServiceSet.schema>;
export type DirectoryServiceRemoved = z.infer<typeof directoryServiceRemoved.schema>;
export type DirectoryCapacitySet = z.infer<typeof directoryCapacitySet.schema>;

export const DIRECTORY_EVENT_TYPES = [directoryServiceSet, directoryServiceRemoved, directoryCapacitySet];
