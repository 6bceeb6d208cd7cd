import { sql, type RawBuilder } from 'kysely';

/**
 * What other modules may use of the telephony table. A SQL condition rather than a query: national
 * reporting groups cases by whether a telephony call is tied to them, in the same statement.
 */
export function caseHasTelephonyCall(tenant: RawBuilder<unknown>, caseId: RawBuilder<unknown>) {
  return sql<boolean>`exists (select 1 from telephony_calls t where t.tenant = ${tenant} and t.case_id = ${caseId})`;
}
