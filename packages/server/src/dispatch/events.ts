import { VEHICLE_STATUSES, VISIT_OUTCOMES, defineEventType } from '@holdfast/core';
import { z } from 'zod';

/**
 * Home visits and the cars that make them (C7). A car is its own subject (`vehicle:<id>`: registered,
 * retired, status), its positions another (`vehicle-position:<id>`: the newest report by its time
 * stands, so positions never refold the car). A visit is its own subject (`visit:<id>`): requested,
 * allocated, re-allocated, outcome, cancelled. Allocations name what the allocating node knew — the
 * visit's allocation and the car's latest allocation (`visitBasedOn`, `vehicleBasedOn`) — so two
 * allocations made on nodes that could not see each other are found by their common predecessor on
 * every node alike (see allocations.ts), and a person decides (`visit.allocation_decided`).
 */
const ms = z.number().int().min(0).max(8_640_000_000_000_000);
const uuid = z.string().uuid();
const words = (max: number) => z.string().trim().min(1).max(max);
const lat = z.number().min(-90).max(90);
const lon = z.number().min(-180).max(180);

export const vehicleRegistered = defineEventType({
  type: 'vehicle.registered',
  v: 1,
  description: 'A car was added for home visits, with its call sign, registration and base.',
  schema: z.strictObject({
    vehicleId: uuid,
    callSign: words(40),
    registration: words(20),
    baseSiteId: uuid,
    baseLat: lat,
    baseLon: lon,
  }),
  subjectOf: (p) => `vehicle:${p.vehicleId}`,
});

export const vehicleRetired = defineEventType({
  type: 'vehicle.retired',
  v: 1,
  description: 'A car was taken out of service, with the reason.',
  schema: z.strictObject({ vehicleId: uuid, reason: words(2000) }),
  subjectOf: (p) => `vehicle:${p.vehicleId}`,
});

export const vehicleStatusChanged = defineEventType({
  type: 'vehicle.status_changed',
  v: 1,
  description:
    "A car's status (available, allocated, travelling, on scene, leaving, back at base, off duty), with its time.",
  schema: z.strictObject({
    vehicleId: uuid,
    status: z.enum(VEHICLE_STATUSES),
    visitId: uuid.nullable(),
    atMs: ms,
  }),
  subjectOf: (p) => `vehicle:${p.vehicleId}`,
});

export const vehiclePositionReported = defineEventType({
  type: 'vehicle.position_reported',
  v: 1,
  description:
    "A car's position from the crew's phone (at most one per car per 15 s unless it moved more than 200 m).",
  schema: z.strictObject({
    vehicleId: uuid,
    lat,
    lon,
    accuracyM: z.number().min(0).max(100_000),
    atMs: ms,
  }),
  subjectOf: (p) => `vehicle-position:${p.vehicleId}`,
});

/** A car's new position as the live stream carries it (no one's identity, no patient data). */
export interface LivePosition {
  vehicleId: string;
  lat: number;
  lon: number;
  accuracyM: number;
  positionAtMs: number;
}

/**
 * The position a `vehicle.position_reported` event's stored payload gives, for the live stream's
 * `dispatch` message, so the dispatcher's board moves the car without reading it back. Only the car
 * and where and when it was, picked field by field; null when the payload is not such a position.
 * Who may receive it is the stream's to decide (readers of the cars: `visits.read`).
 */
export function livePosition(payloadJson: string): LivePosition | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payloadJson);
  } catch {
    return null;
  }
  const p = vehiclePositionReported.schema.safeParse(parsed);
  if (!p.success) return null;
  const { vehicleId, lat, lon, accuracyM, atMs } = p.data;
  return { vehicleId, lat, lon, accuracyM, positionAtMs: atMs };
}

export const visitRequested = defineEventType({
  type: 'visit.requested',
  v: 1,
  description:
    "A clinician's home visit: the patient's address and access instructions as they stood, the reason, the deadline and priority.",
  schema: z.strictObject({
    visitId: uuid,
    caseId: uuid,
    patientId: uuid,
    siteId: uuid,
    address: z.strictObject({
      text: words(300).nullable(),
      postcode: words(10).nullable(),
      lat: lat.nullable(),
      lon: lon.nullable(),
    }),
    /** How to get in (key safe, entry arrangements): shown only to the allocated car's crew and clinicians. */
    accessInstructions: words(1000).nullable(),
    reason: words(1000),
    withinHours: z.number().int().min(1).max(72),
    deadlineMs: ms,
    priority: z.number().int().min(1).max(3),
    requestedBy: uuid,
    atMs: ms,
  }),
  subjectOf: (p) => `visit:${p.visitId}`,
});

const allocation = {
  visitId: uuid,
  allocationId: uuid,
  vehicleId: uuid,
  byUserId: uuid,
  /** The visit's allocation the allocating node knew (null: none). */
  visitBasedOn: uuid.nullable(),
  /** The car's latest allocation the allocating node knew (null: none). */
  vehicleBasedOn: uuid.nullable(),
  atMs: ms,
};

export const visitAllocated = defineEventType({
  type: 'visit.allocated',
  v: 1,
  description: 'A dispatcher sent a car to a visit.',
  schema: z.strictObject(allocation),
  subjectOf: (p) => `visit:${p.visitId}`,
});

export const visitReallocated = defineEventType({
  type: 'visit.reallocated',
  v: 1,
  description: 'A dispatcher sent another car to a visit instead, with the reason.',
  schema: z.strictObject({ ...allocation, fromVehicleId: uuid, reason: words(2000) }),
  subjectOf: (p) => `visit:${p.visitId}`,
});

export const visitOutcomeRecorded = defineEventType({
  type: 'visit.outcome_recorded',
  v: 1,
  description: "The crew's outcome of a visit: seen, not at home, converted to ambulance, admitted.",
  schema: z.strictObject({
    visitId: uuid,
    outcome: z.enum(VISIT_OUTCOMES),
    note: z.string().trim().max(2000),
    vehicleId: uuid.nullable(),
    byUserId: uuid,
    atMs: ms,
  }),
  subjectOf: (p) => `visit:${p.visitId}`,
});

export const visitCancelled = defineEventType({
  type: 'visit.cancelled',
  v: 1,
  description: 'A visit no longer needed, with the reason.',
  schema: z.strictObject({ visitId: uuid, reason: words(2000), atMs: ms }),
  subjectOf: (p) => `visit:${p.visitId}`,
});

export const allocationDecided = defineEventType({
  type: 'visit.allocation_decided',
  v: 1,
  description:
    'A shift manager decided a double allocation (a car or a visit allocated twice on nodes apart): which allocation stands.',
  schema: z.strictObject({
    itemId: z.string().regex(/^rec-[0-9a-f-]{36}$/),
    keepAllocationId: uuid,
    reason: words(2000),
  }),
  subjectOf: (p) => `dispatch-item:${p.itemId}`,
});

export const DISPATCH_EVENT_TYPES = [
  vehicleRegistered,
  vehicleRetired,
  vehicleStatusChanged,
  vehiclePositionReported,
  visitRequested,
  visitAllocated,
  visitReallocated,
  visitOutcomeRecorded,
  visitCancelled,
  allocationDecided,
];

export type VehicleRegistered = z.infer<typeof vehicleRegistered.schema>;
export type VehicleStatusChanged = z.infer<typeof vehicleStatusChanged.schema>;
export type VehiclePositionReported = z.infer<typeof vehiclePositionReported.schema>;
export type VisitRequested = z.infer<typeof visitRequested.schema>;
export type VisitAllocated = z.infer<typeof visitAllocated.schema>;
export type VisitReallocated = z.infer<typeof visitReallocated.schema>;
export type VisitOutcomeRecorded = z.infer<typeof visitOutcomeRecorded.schema>;
export type AllocationDecided = z.infer<typeof allocationDecided.schema>;
