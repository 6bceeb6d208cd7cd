import { describe, expect, it } from 'vitest';
import { caseReference } from '../src/index.ts';

describe('caseReference', () => {
  it('is the first eight hex digits of the case id, upper case, in two groups of four', () => {
    expect(caseReference('3f2a9c1b-7d4e-4a1b-9c2d-0e1f2a3b4c5d')).toBe('3F2A-9C1B');
    // Stable: the same id always gives the same reference.
    expect(caseReference('3f2a9c1b-0000-4000-8000-000000000000')).toBe('3F2A-9C1B');
    expect(caseReference('00000000-7d4e-4a1b-9c2d-0e1f2a3b4c5d')).toBe('0000-0000');
  });
});
