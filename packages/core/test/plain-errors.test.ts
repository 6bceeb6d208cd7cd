import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import '../src/index.ts';

/** Validation messages a call handler can read, for every limit a schema does not word itself. */
describe('plain-word validation messages', () => {
  const schema = z.strictObject({
    note: z.string().max(100),
    name: z.string().min(1),
    code: z.string().min(3),
    count: z.number().int().max(5),
    positive: z.number().gt(0),
    kind: z.enum(['self', 'relative']),
    id: z.string().uuid(),
    at: z.iso.datetime(),
    list: z.array(z.string()).min(1).max(2),
    worded: z.string().max(2, 'keeps its own words'),
  });
  const messages = (input: Record<string, unknown>) =>
    Object.fromEntries(
      (schema.safeParse(input).error?.issues ?? []).map((i) => [i.path.join('.') || '(body)', i.message]),
    );

  it('words limits, types, choices and formats plainly, never echoing the value', () => {
    expect(
      messages({
        note: 'x'.repeat(101),
        name: '',
        code: 'ab',
        count: 2.5,
        positive: 0,
        kind: 'friend',
        id: 'not-an-id',
        at: '29/11/2026',
        list: [],
        worded: 'abc',
        extra: true,
      }),
    ).toEqual({
      note: 'must be at most 100 characters (it has 101)',
      name: 'must not be empty',
      code: 'must be at least 3 characters',
      count: 'must be a whole number',
      positive: 'must be more than 0',
      kind: 'must be one of: self, relative',
      id: 'must be an id (a UUID)',
      at: 'must be a date and time in ISO 8601, e.g. 2026-11-29T03:04:05Z',
      list: 'must have at least one item',
      worded: 'keeps its own words',
      '(body)': 'has a field this does not accept: extra',
    });
  });

  it('says a missing field is required and names the type expected otherwise', () => {
    expect(messages({ note: 5 })).toMatchObject({
      note: 'must be text',
      name: 'is required',
      count: 'is required',
    });
    expect(messages({ count: 9 })).toMatchObject({ count: 'must be at most 5' });
    expect(messages({ list: ['a', 'b', 'c'] })).toMatchObject({ list: 'must have at most 2 items' });
  });
});
