import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatNhsNumber, normaliseNhsNumber } from '../src/patients/nhs-number.ts';

/** The ISB 0149 Modulus 11 rule, written out independently of the code under test. */
function modulus11Check(prefix: string): number | 'impossible' {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += Number(prefix[i]) * (10 - i);
  const check = 11 - (sum % 11);
  if (check === 11) return 0;
  if (check === 10) return 'impossible';
  return check;
}

const valid = (input: string) => normaliseNhsNumber(input).ok;
const messageOf = (input: string) => {
  const r = normaliseNhsNumber(input);
  if (r.ok) throw new Error(`expected ${input} to be refused`);
  return r.message;
};

describe('NHS number: the reference vectors', () => {
  it('943 476 5919 is valid (sum 299, 299 mod 11 = 2, 11 − 2 = 9)', () => {
    expect(normaliseNhsNumber('9434765919')).toEqual({ ok: true, value: '9434765919' });
    expect(modulus11Check('943476591')).toBe(9);
  });

  it('9990000018 is valid', () => {
    expect(normaliseNhsNumber('9990000018')).toEqual({ ok: true, value: '9990000018' });
  });

  it.each([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])('999123456%d is impossible: the check digit would be 10', (x) => {
    expect(modulus11Check('999123456')).toBe('impossible');
    expect(messageOf(`999123456${x}`)).toMatch(
      /not a valid NHS number \(no number with these first nine digits/,
    );
  });

  it('a wrong check digit is refused as such', () => {
    for (const x of [0, 1, 2, 3, 4, 5, 6, 7, 8]) {
      expect(messageOf(`943476591${x}`)).toMatch(/check digit does not match/);
    }
  });

  it('a check result of 11 means a check digit of 0', () => {
    // 000000014 sums to a multiple of 11: 11 − 0 = 11 → 0
    expect(modulus11Check('000000014')).toBe(0);
    expect(valid('0000000140')).toBe(true);
    expect(valid('0000000141')).toBe(false);
  });

  it.each(['0000000000', '1111111111', '2222222222', '5555555555', '999 999 9999'])(
    'refuses %j: ten identical digits pass the check but are never issued',
    (input) => {
      expect(messageOf(input)).toBe('is not a valid NHS number (ten identical digits are never issued)');
    },
  );
});

describe('NHS number: input forms', () => {
  it.each(['943 476 5919', '943-476-5919', ' 9434765919 ', '943 476-5919', '943\t476\t5919'])(
    'accepts %j and returns the bare ten digits',
    (input) => {
      expect(normaliseNhsNumber(input)).toEqual({ ok: true, value: '9434765919' });
    },
  );

  it.each([
    ['Arabic-Indic', '٩٤٣٤٧٦٥٩١٩'],
    ['Extended Arabic-Indic', '۹۴۳۴۷۶۵۹۱۹'],
    ['full-width', '９４３４７６５９１９'],
    ['full-width, spaced', '９４３ ４７６ ５９１９'],
    ['Devanagari', '९४३४७६५९१९'],
    ['one full-width digit among ASCII', '943476591９'],
    ['mathematical bold', '𝟗𝟒𝟑𝟒𝟕𝟔𝟓𝟗𝟏𝟗'],
  ])('refuses %s digits with a clear message', (_, input) => {
    expect(messageOf(input)).toBe(
      "must use the digits 0-9 only (other scripts' digits and full-width digits are not accepted)",
    );
  });

  it.each(['', '943476591', '94347659190', '943 476 591', '943 476 59190'])(
    'refuses %j: not ten digits',
    (input) => {
      expect(messageOf(input)).toBe('must be 10 digits, e.g. 943 476 5919');
    },
  );

  it.each([
    ['943476591X', '"X" at character 10'],
    ['abcdefghij', '"a" at character 1'],
    ['+449434765919', 'a plus sign (U+002B) at character 1'],
    ['943.476.5919', 'a full stop (U+002E) at character 4'],
    ['943\u2013476\u20135919', 'an en dash (U+2013) at character 4'],
    ['943 476\u200b5919', 'an invisible zero-width space (U+200B) at character 8'],
    ['943\u00a0476 5919', 'a non-breaking space (U+00A0) at character 4'],
    ['943\u2212476\u22125919', 'a minus sign (U+2212) at character 4'],
  ])('refuses %j, naming the character that is wrong and where', (input, named) => {
    expect(messageOf(input)).toBe(`contains ${named}: use the digits 0-9, spaced as in 943 476 5919`);
  });

  it.each([
    '-9434765919',
    '9434765919-',
    '94-34765919',
    '9 4 3 4 7 6 5 9 1 9',
    '943--476-5919',
    '9434 765 919',
  ])('refuses %j: separators only between the 3-3-4 groups', (input) => {
    expect(messageOf(input)).toBe(
      'has a space or hyphen in the wrong place: write it as 943 476 5919, 943-476-5919 or 9434765919',
    );
  });

  it('formats as 3-3-4, and the formatted form reads back', () => {
    expect(formatNhsNumber('9434765919')).toBe('943 476 5919');
    expect(normaliseNhsNumber(formatNhsNumber('9990000018'))).toEqual({ ok: true, value: '9990000018' });
  });

  it('never echoes the input in its messages (no patient data in errors)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{10}$/), (n) => {
        const r = normaliseNhsNumber(n);
        if (!r.ok) expect(r.message).not.toContain(n.slice(0, 3));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('NHS number: Modulus 11 over the 9-digit prefixes', () => {
  // 10^9 prefixes are too many to walk; a large random sample, with the edges always included.
  const prefix = fc.oneof(
    {
      weight: 1,
      arbitrary: fc.constantFrom('000000000', '999999999', '999123456', '943476591', '999000001'),
    },
    {
      weight: 50,
      arbitrary: fc.integer({ min: 0, max: 999_999_999 }).map((n) => String(n).padStart(9, '0')),
    },
  );

  it('exactly one check digit 0–9 is valid, unless the Modulus 11 result is 10 and none is', () => {
    let impossible = 0;
    fc.assert(
      fc.property(prefix, (p) => {
        const validDigits = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].filter((d) => valid(`${p}${d}`));
        const check = modulus11Check(p);
        // Ten identical digits are refused whatever the check says.
        if (/^(\d)\1{8}$/.test(p) && check === Number(p[0])) {
          expect(validDigits).toEqual([]);
          return;
        }
        if (check === 'impossible') {
          impossible++;
          expect(validDigits).toEqual([]);
        } else {
          expect(validDigits).toEqual([check]);
        }
      }),
      { numRuns: 100_000 },
    );
    // About one prefix in eleven has no valid number; the sample must have met plenty.
    expect(impossible).toBeGreaterThan(5_000);
  });

  it('every valid number survives formatting and re-reading; spacing never changes validity', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9]{10}$/), (n) => {
        expect(valid(formatNhsNumber(n))).toBe(valid(n));
        expect(valid(`${n.slice(0, 3)}-${n.slice(3, 6)}-${n.slice(6)}`)).toBe(valid(n));
      }),
      { numRuns: 5000 },
    );
  });
});
