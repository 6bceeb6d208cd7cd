export * from './formulary.ts';
export * from './checks.ts';
export * from './quantity-words.ts';
export * from './prescription-id.ts';
