export * from './ports.ts';
export * from './errors.ts';
export * from './ledger/canonical.ts';
export * from './ledger/envelope.ts';
export * from './ledger/hlc.ts';
export * from './ledger/registry.ts';
export * from './ledger/chain.ts';
export * from './ledger/system-events.ts';
