import {
  ACCOUNT_EVENT_TYPES,
  CASE_FACT_EVENT_TYPES,
  CASE_LIFECYCLE_EVENT_TYPES,
  createEventRegistry,
  PATIENT_EVENT_TYPES,
  RECONCILIATION_EVENT_TYPES,
  MESSAGING_EVENT_TYPES,
  INBOUND_EVENT_TYPES,
  TELEPHONY_EVENT_TYPES,
  REPORTING_EVENT_TYPES,
  DIRECTORY_EVENT_TYPES,
  type EventRegistry,
} from '@holdfast/core';
import { BOOKING_EVENT_TYPES } from '../booking/events.ts';
import { DISPATCH_EVENT_TYPES } from '../dispatch/events.ts';
import { PRESCRIBING_EVENT_TYPES } from '../prescribing/events.ts';
import { REFERRAL_EVENT_TYPES } from '../referrals/events.ts';
import { ROTA_EVENT_TYPES } from '../rota/events.ts';

/**
 * Every event type the server's modules define. In a module of its own (event definitions only),
 * so import's worker threads can build the same registry (node.ts names it as the registry's source).
 */
export function createServerRegistry(): EventRegistry {
  return createEventRegistry().register(
    ...ACCOUNT_EVENT_TYPES,
    ...PATIENT_EVENT_TYPES,
    ...CASE_FACT_EVENT_TYPES,
    ...CASE_LIFECYCLE_EVENT_TYPES,
    ...RECONCILIATION_EVENT_TYPES,
    ...MESSAGING_EVENT_TYPES,
    ...INBOUND_EVENT_TYPES,
    ...REFERRAL_EVENT_TYPES,
    ...PRESCRIBING_EVENT_TYPES,
    ...BOOKING_EVENT_TYPES,
    ...TELEPHONY_EVENT_TYPES,
    ...REPORTING_EVENT_TYPES,
    ...DIRECTORY_EVENT_TYPES,
    ...ROTA_EVENT_TYPES,
    ...DISPATCH_EVENT_TYPES,
  );
}
