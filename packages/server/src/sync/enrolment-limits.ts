/**
 * How long an enrolment token lives (see enrolment.ts): on their own so that `holdfast nodes
 * enrol-token --help` can show them without loading the sync engine behind them.
 */
export const DEFAULT_TOKEN_TTL_MINUTES = 24 * 60;
export const MAX_TOKEN_TTL_MINUTES = 7 * 24 * 60;
