import { z } from 'zod';

/**
 * Validation messages in plain words. Without this, every limit a schema does not word itself is
 * reported in the library's words ("Too big: expected string to have <=100 characters"), which a
 * call handler should never have to decode. A schema's own message always wins; this words the
 * rest, the same for the API and the web app (both load it through the core package). Values are
 * never repeated back: only lengths, limits and the allowed choices.
 */
const FORMATS: Readonly<Record<string, string>> = {
  uuid: 'an id (a UUID)',
  guid: 'an id (a UUID)',
  email: 'an email address',
  url: 'a web address (URL)',
  datetime: 'a date and time in ISO 8601, e.g. 2026-11-29T03:04:05Z',
  date: 'a date as YYYY-MM-DD',
  time: 'a time as hh:mm',
};

const TYPES: Readonly<Record<string, string>> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'an object',
  array: 'a list',
  date: 'a date',
  bigint: 'a whole number',
};

type Issue = Parameters<z.core.$ZodErrorMap>[0];

export function plainMessage(issue: Issue): string | undefined {
  const i = issue as Issue & {
    origin?: string;
    maximum?: number | bigint;
    minimum?: number | bigint;
    inclusive?: boolean;
    expected?: string;
    format?: string;
    values?: readonly unknown[];
    keys?: readonly string[];
    divisor?: number;
  };
  const limit = String(i.maximum ?? i.minimum);
  switch (i.code) {
    case 'too_big':
      if (i.origin === 'string')
        return `must be at most ${limit} characters${typeof i.input === 'string' ? ` (it has ${[...i.input].length})` : ''}`;
      if (i.origin === 'array' || i.origin === 'set') return `must have at most ${limit} items`;
      return i.inclusive === false ? `must be less than ${limit}` : `must be at most ${limit}`;
    case 'too_small':
      if (i.origin === 'string')
        return Number(i.minimum) <= 1 ? 'must not be empty' : `must be at least ${limit} characters`;
      if (i.origin === 'array' || i.origin === 'set')
        return Number(i.minimum) <= 1 ? 'must have at least one item' : `must have at least ${limit} items`;
      return i.inclusive === false ? `must be more than ${limit}` : `must be at least ${limit}`;
    case 'invalid_type':
      if (i.input === undefined) return 'is required';
      return `must be ${TYPES[i.expected ?? ''] ?? i.expected}`;
    case 'invalid_value':
      if (i.values && i.values.length <= 12) return `must be one of: ${i.values.map(String).join(', ')}`;
      return 'is not one of the allowed values';
    case 'invalid_format':
      return i.format && FORMATS[i.format] ? `must be ${FORMATS[i.format]}` : 'is not in the expected form';
    case 'unrecognized_keys':
      return `has ${i.keys && i.keys.length === 1 ? 'a field' : 'fields'} this does not accept: ${(i.keys ?? []).join(', ')}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(i.divisor)}`;
    case 'invalid_union':
      return 'is not in any of the forms accepted here';
    // Refinements word their own messages; a bad element or key is reported at its own path.
    case 'custom':
    case 'invalid_element':
    case 'invalid_key':
    default:
      return undefined;
  }
}

z.config({ customError: plainMessage });
