// Validation messages in plain words everywhere the core package is loaded (see plain-errors.ts).
export { plainMessage } from './plain-errors.ts';
export * from './ports.ts';
export * from './errors.ts';
export * from './ledger/canonical.ts';
export * from './ledger/envelope.ts';
export * from './ledger/hlc.ts';
export * from './ledger/registry.ts';
export * from './ledger/chain.ts';
export * from './ledger/system-events.ts';
export * from './accounts/roles.ts';
export * from './accounts/access.ts';
export * from './accounts/password-policy.ts';
export * from './accounts/events.ts';
export * from './patients/nhs-number.ts';
export * from './patients/events.ts';
export * from './patients/date-of-birth.ts';
export * from './cases/lifecycle.ts';
export * from './cases/facts.ts';
export * from './cases/callback-number.ts';
export * from './cases/reference.ts';
export * from './clinical/news2.ts';
export * from './cases/reconciliation.ts';
export * from './messaging/outbox.ts';
export * from './messaging/working-days.ts';
export * from './messaging/pem.ts';
export * from './messaging/inbound.ts';
export * from './telephony/events.ts';
export * from './telephony/measures.ts';
export * from './reporting/provider-settings.ts';
export * from './directory/types.ts';
export * from './directory/opening-times.ts';
export * from './directory/schema.ts';
export * from './directory/events.ts';
export * from './directory/search.ts';
// Directory files (CSV/JSON) are read with csv-parse, which needs Node's Buffer: import them from
// '@holdfast/core/directory/files' on the server, so the browser's bundle never loads them.
export * from './prescribing/formulary.ts';
export * from './prescribing/checks.ts';
export * from './prescribing/prescription-id.ts';
export * from './booking/time.ts';
export * from './booking/diary.ts';
export * from './booking/custody.ts';
export * from './booking/suggest.ts';
// The rota (C12) and home-visit dispatch (C7). Rota CSV files are read with csv-parse, like directory
// files: import parseRotaCsv from '@holdfast/core/rota/csv' on the server.
export * from './rota/shifts.ts';
export * from './dispatch/suggest.ts';
