import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import {
  createEventRegistry,
  defineEventType,
  UnknownEventTypeError,
  ValidationError,
} from '../src/index.ts';

describe('event registry', () => {
  const registry = createEventRegistry().register(
    defineEventType({
      type: 'case.opened',
      v: 1,
      schema: z.strictObject({ caseId: z.string().uuid(), complaint: z.string().max(10) }),
      subjectOf: (p) => `case:${p.caseId}`,
    }),
    defineEventType({
      type: 'case.opened',
      v: 2,
      schema: z.strictObject({ caseId: z.string().uuid(), complaint: z.string().max(20), site: z.string() }),
    }),
  );

  it('checks payloads against the schema of their version and names the failing field', () => {
    const error = (() => {
      try {
        registry.parsePayload('case.opened', 1, { caseId: 'not-a-uuid', complaint: 'x' });
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(ValidationError);
    expect((error as ValidationError).issues[0]!.path).toBe('payload.caseId');
    expect(() =>
      registry.parsePayload('case.opened', 1, {
        caseId: '0195e8a4-7c2d-7641-834d-a5418083a300',
        complaint: 'x',
        extra: 1,
      }),
    ).toThrow(ValidationError);
  });

  it('refuses unknown types and versions', () => {
    expect(() => registry.get('case.vanished', 1)).toThrow(UnknownEventTypeError);
    expect(() => registry.get('case.opened', 3)).toThrow(/case.opened version 3 is not registered/);
  });

  it('appends with the newest version and derives subjects', () => {
    expect(registry.latestVersion('case.opened')).toBe(2);
    expect(registry.subjectOf('case.opened', 1, { caseId: 'abc', complaint: '' })).toBe('case:abc');
    expect(registry.subjectOf('case.opened', 2, { caseId: 'abc', complaint: '', site: 's' })).toBeNull();
  });

  it('refuses registering a type version twice', () => {
    expect(() =>
      registry.register(defineEventType({ type: 'case.opened', v: 1, schema: z.object({}) })),
    ).toThrow(/registered twice/);
  });
});
